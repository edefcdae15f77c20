"""C8/E3 the automation part of the config language (calendars, SLAs, assignments, automations):
every mistake is reported at its file:line with a message that says what to write instead, and
all of them at once. The YAML is written here, on a copy of tests/fixtures/config/mini (entities
account and deal; deal has the workflow deal_flow: open -> won | lost by win / lose); line numbers
are looked up in that YAML text.
"""
from __future__ import annotations

import textwrap

import pytest

from engine.errors import ConfigInvalid
from engine.loader import load_config
from tests.engine.test_automation_kit import line_of

CALENDAR = """\
calendar: office
label: {en: Office hours}
timezone: Asia/Shanghai
week:
  mon: ["09:00-12:00", "13:00-18:00"]
  tue: ["09:00-18:00"]
"""

SLA_OK = """\
sla: deal_speed
entity: deal
calendar: office
targets:
  response:
    met_by: [win]
  resolution:
    met_by: [win, lose]
policies:
  - {name: normal, response: 1h, resolution: 2d}
"""


def write(root, folder, name, text):
    d = root / folder
    d.mkdir(exist_ok=True)
    (d / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return textwrap.dedent(text)


def problems_of(root, folder, name):
    with pytest.raises(ConfigInvalid) as info:
        load_config(root)
    mine = [p for p in info.value.problems if p.file.replace("\\", "/").endswith(f"{folder}/{name}")]
    others = [str(p) for p in info.value.problems if p not in mine]
    assert others == [], "problems reported in other files"
    return mine


# (id, folder, file, YAML, the text on the reported line, its occurrence, the exact message)
CASES = [
    ("bad_cron", "automations", "nightly.yaml", """\
        automation: nightly
        entity: account
        on: schedule
        cron: "61 * * * *"
        actions:
          - notify: owner
            message: {en: Hello}
        """, "cron:", 1,
     "'61 * * * *' is not a valid cron line (five fields: minute hour day-of-month month day-of-week)"),
    ("cron_on_a_trigger", "automations", "on_change.yaml", """\
        automation: on_change
        entity: account
        on: change
        fields: [level]
        cron: "0 8 * * *"
        actions:
          - notify: owner
            message: {en: Level changed}
        """, "cron:", 1, "`cron:` belongs to `on: schedule`, not `on: change`"),
    ("unknown_timezone", "automations", "morning.yaml", """\
        automation: morning
        entity: account
        on: schedule
        cron: "30 8 * * 1-5"
        timezone: Asia/Shanghia
        actions:
          - notify: owner
            message: {en: Good morning}
        """, "timezone:", 1, "'Asia/Shanghia' is not a time zone (e.g. Asia/Shanghai)"),
    ("change_without_fields", "automations", "any_change.yaml", """\
        # tell the owner about every change
        automation: any_change
        entity: account
        on: change
        actions:
          - notify: owner
            message: {en: Changed}
        """, "automation:", 1, "`on: change` needs `fields:` (the fields whose change triggers)"),
    ("unknown_field_in_set", "automations", "double.yaml", """\
        automation: double
        entity: deal
        on: create
        actions:
          - notify: owner
            message: {en: New deal}
          - set: {probability: "50", amout: "1"}
        """, "- set:", 1, "deal has no field 'amout' (did you mean 'amount'?)"),
    ("rule_does_not_parse", "automations", "big_deal.yaml", """\
        automation: big_deal
        entity: deal
        on: enter
        state: won
        when: "amount >"
        actions:
          - notify: owner
            message: {en: Won}
        """, "when:", 1, None),
    ("bad_role", "automations", "tell_boss.yaml", """\
        automation: tell_boss
        entity: deal
        on: create
        actions:
          - notify: owner
            message: {en: New deal}
          - notify: "role:Bad Role"
            message: {en: New deal}
        """, "role:Bad Role", 1, "'role:Bad Role': write role:NAME with a role id"),
    ("round_robin_without_role", "assignments", "deals_in_turn.yaml", """\
        # new deals in turn
        assignment: deals_in_turn
        entity: deal
        field: owner
        strategy: round_robin
        """, "assignment:", 1, "strategy round_robin needs `role:` (the users to choose from)"),
    ("sla_unknown_calendar", "slas", "deal_speed.yaml", SLA_OK.replace("calendar: office", "calendar: ofice"),
     "calendar:", 1, "'ofice' is not a calendar (did you mean 'office'?)"),
    ("sla_unknown_transition", "slas", "deal_speed.yaml", SLA_OK.replace("met_by: [win, lose]", "met_by: [win, loose]"),
     "met_by: [win, loose]", 1, "'loose' is neither a transition nor a state of deal_flow (did you mean 'lose'?)"),
    ("sla_policy_without_a_target_time", "slas", "deal_speed.yaml", SLA_OK.replace(
        "  - {name: normal, response: 1h, resolution: 2d}",
        "  - {name: normal, response: 1h, resolution: 2d}\n  - {name: slow, when: \"amount > 100\", response: 4h}"),
     "name: slow", 1, "the policy sets no time for the target 'resolution'"),
    ("calendar_inverted_window", "calendars", "office.yaml", CALENDAR.replace('tue: ["09:00-18:00"]',
                                                                              'tue: ["18:00-09:00"]'),
     "week:", 1, "bad working window '18:00-09:00': end must be after start"),
    ("calendar_overlapping_windows", "calendars", "office.yaml", CALENDAR.replace(
        'mon: ["09:00-12:00", "13:00-18:00"]', 'mon: ["09:00-12:00", "11:30-18:00"]'),
     "mon:", 1, "calendar office: mon windows '09:00-12:00' and '11:30-18:00' overlap"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_each_mistake_is_reported_at_its_line(config_copy, case):
    _id, folder, name, yaml_text, needle, nth, message = case
    root = config_copy("mini")
    if folder == "slas" or name == "office.yaml":
        write(root, "calendars", "office.yaml", CALENDAR)
    text = write(root, folder, name, yaml_text)
    found = problems_of(root, folder, name)
    assert len(found) == 1, [str(p) for p in found]
    [p] = found
    assert p.line == line_of(text, needle, nth), str(p)
    if message is None:
        assert p.message.startswith("the rule does not parse: "), p.message
        assert len(p.message) > len("the rule does not parse: ")
    else:
        assert p.message == message
    assert f"{name}:{p.line}" in str(p)


def test_the_valid_files_load(config_copy):
    root = config_copy("mini")
    write(root, "calendars", "office.yaml", CALENDAR)
    write(root, "slas", "deal_speed.yaml", SLA_OK)
    cfg = load_config(root)
    assert list(cfg.auto.slas) == ["deal_speed"] and list(cfg.auto.calendars) == ["office"]
    assert cfg.auto.slas["deal_speed"].policies[0].seconds["resolution"] == 2 * 8 * 3600


def test_a_calendars_unknown_time_zone_is_named(config_copy):
    root = config_copy("mini")
    text = write(root, "calendars", "office.yaml", CALENDAR.replace("Asia/Shanghai", "Mars/Olympus_Mons"))
    [p] = problems_of(root, "calendars", "office.yaml")
    assert p.message == "calendar office: unknown time zone 'Mars/Olympus_Mons'"
    assert p.line in (line_of(text, "timezone:"), line_of(text, "week:"))


def test_a_calendars_unknown_time_zone_is_reported_at_the_timezone_line(config_copy):
    root = config_copy("mini")
    text = write(root, "calendars", "office.yaml", CALENDAR.replace("Asia/Shanghai", "Mars/Olympus_Mons"))
    [p] = problems_of(root, "calendars", "office.yaml")
    assert p.line == line_of(text, "timezone:")


def test_every_mistake_of_every_file_is_reported_at_once(config_copy):
    root = config_copy("mini")
    write(root, "calendars", "office.yaml", CALENDAR)
    texts = {}
    for _id, folder, name, yaml_text, needle, nth, message in CASES:
        if folder in ("automations", "assignments"):
            texts[(folder, name)] = (write(root, folder, name, yaml_text), needle, nth, message)
    with pytest.raises(ConfigInvalid) as info:
        load_config(root)
    got = {(p.file.replace("\\", "/").split("/")[-2], p.file.replace("\\", "/").split("/")[-1]): p
           for p in info.value.problems}
    assert set(got) == set(texts)
    for key, (text, needle, nth, message) in texts.items():
        assert got[key].line == line_of(text, needle, nth)
        if message:
            assert got[key].message == message
    # one line per problem in the exception's text, sorted by file
    assert info.value.message.count("\n") == len(texts)
