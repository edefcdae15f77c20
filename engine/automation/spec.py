"""The automation part of the config language: calendars, SLA policies, assignment rules and
triggers/scheduled rules, as frozen dataclasses built from checked YAML documents.

The JSON Schemas (engine/schemas/{calendar,sla,assignment,automation}.json) check each file's
shape; `check_automation` checks what a schema cannot see: that entities, fields, states,
transitions, calendars and rules named exist and parse, and that cron lines are valid, each
problem at its file:line.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from types import MappingProxyType

from ..errors import Problem, RuleError
from ..model import norm_label

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([mhd])$")
TARGETS = ("response", "resolution")


def duration_seconds(text: str) -> int:
    """`90m`, `1h`, `1.5h`, `2d` (a day of working time is 8 working hours for SLAs: see docs)."""
    n, unit = DURATION.match(text).groups()
    return int(round(float(n) * {"m": 60, "h": 3600, "d": 8 * 3600}[unit]))


@dataclass(frozen=True)
class CalendarSpec:
    id: str
    label: dict
    raw: MappingProxyType                  # timezone, week, makeup_day as written
    holiday_entity: str | None = None
    holiday_date: str = "date"
    holiday_working: str = "working"
    file: str = ""


@dataclass(frozen=True)
class SlaTarget:
    name: str
    label: dict
    met_by: tuple
    reset_by: tuple = ()


@dataclass(frozen=True)
class SlaPolicy:
    name: str
    when: str | None
    seconds: MappingProxyType              # target name -> working seconds


@dataclass(frozen=True)
class SlaSpec:
    id: str
    entity: str
    label: dict
    calendar: str
    targets: tuple                         # SlaTarget, in TARGETS order
    policies: tuple                        # SlaPolicy, first match wins
    when: str | None = None
    pause_states: tuple | None = None      # None: the workflow's states marked `paused: true`
    warn_before: str | None = None         # "30m" or "20%"
    on_warning: tuple = ()
    on_breach: tuple = ()
    file: str = ""


@dataclass(frozen=True)
class AssignmentSpec:
    id: str
    entity: str
    label: dict
    field: str
    strategy: str
    on: tuple = ("create",)
    when: str | None = None
    role: str | None = None
    value: str | None = None               # by_field: expression giving a user id
    user: str | None = None                # fixed: a user name
    fallback: str | None = None
    open_states: tuple = ()
    position: int = 0
    file: str = ""


@dataclass(frozen=True)
class AutomationSpec:
    id: str
    entity: str
    label: dict
    on: str                                # create | change | enter | schedule
    actions: tuple
    fields: tuple = ()
    state: str | None = None
    cron: str | None = None
    timezone: str | None = None
    when: str | None = None
    enabled: bool = True
    file: str = ""
    line: int = 0


@dataclass(frozen=True)
class AutomationConfig:
    calendars: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    slas: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    assignments: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    automations: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    def slas_for(self, entity: str) -> list[SlaSpec]:
        return [s for s in self.slas.values() if s.entity == entity]

    def assignments_for(self, entity: str, event: str) -> list[AssignmentSpec]:
        return sorted((a for a in self.assignments.values() if a.entity == entity and event in a.on),
                      key=lambda a: (a.position, a.id))

    def automations_for(self, entity: str, on: str) -> list[AutomationSpec]:
        return [a for a in self.automations.values() if a.entity == entity and a.on == on and a.enabled]


# ---- builders (documents already passed their JSON Schema) ----------------------------------
def build_calendar(doc) -> CalendarSpec:
    raw = doc.data
    hol = raw.get("holidays") or {}
    return CalendarSpec(id=raw["calendar"], label=norm_label(raw.get("label"), raw["calendar"]),
                        raw=MappingProxyType({k: raw[k] for k in ("timezone", "week", "makeup_day") if k in raw}),
                        holiday_entity=hol.get("entity"), holiday_date=hol.get("date", "date"),
                        holiday_working=hol.get("working", "working"), file=doc.file)


def build_sla(doc) -> SlaSpec:
    raw = doc.data
    targets = tuple(SlaTarget(name=n, label=norm_label(t.get("label"), n), met_by=tuple(t["met_by"]),
                              reset_by=tuple(t.get("reset_by", ())))
                    for n in TARGETS if (t := raw["targets"].get(n)) is not None)
    policies = tuple(SlaPolicy(name=p.get("name", f"policy_{i + 1}"), when=p.get("when"),
                               seconds=MappingProxyType({n: duration_seconds(p[n]) for n in TARGETS if n in p}))
                     for i, p in enumerate(raw["policies"]))
    return SlaSpec(id=raw["sla"], entity=raw["entity"], label=norm_label(raw.get("label"), raw["sla"]),
                   calendar=raw["calendar"], targets=targets, policies=policies, when=raw.get("when"),
                   pause_states=tuple(raw["pause_states"]) if "pause_states" in raw else None,
                   warn_before=raw.get("warn_before"), on_warning=tuple(raw.get("on_warning", ())),
                   on_breach=tuple(raw.get("on_breach", ())), file=doc.file)


def build_assignment(doc) -> AssignmentSpec:
    raw = doc.data
    return AssignmentSpec(id=raw["assignment"], entity=raw["entity"],
                          label=norm_label(raw.get("label"), raw["assignment"]), field=raw["field"],
                          strategy=raw["strategy"], on=tuple(raw.get("on", ("create",))), when=raw.get("when"),
                          role=raw.get("role"), value=raw.get("value"), user=raw.get("user"),
                          fallback=raw.get("fallback"), open_states=tuple(raw.get("open_states", ())),
                          position=raw.get("position", 0), file=doc.file)


def build_automation(doc) -> AutomationSpec:
    raw = doc.data
    line, _ = doc.where(())
    return AutomationSpec(id=raw["automation"], entity=raw["entity"],
                          label=norm_label(raw.get("label"), raw["automation"]), on=raw["on"],
                          actions=tuple(raw["actions"]), fields=tuple(raw.get("fields", ())), state=raw.get("state"),
                          cron=raw.get("cron"), timezone=raw.get("timezone"), when=raw.get("when"),
                          enabled=raw.get("enabled", True), file=doc.file, line=line or 1)


BUILDERS = {"calendar": build_calendar, "sla": build_sla, "assignment": build_assignment,
            "automation": build_automation}


# ---- reference checks -----------------------------------------------------------------------
def check_automation(built: dict, entities: dict, workflows: dict, docs: dict) -> list[Problem]:
    """built: {kind: {id: spec}}; docs: {(kind, id): Document}. Returns every problem found."""
    from .. import rules
    from ..schemas import suggest

    def suggest_name(word, choices):
        return suggest(word, list(choices))

    problems: list[Problem] = []

    def add(kind, oid, path, message):
        problems.append(docs[(kind, oid)].problem(path, message))

    def need_entity(kind, oid, name):
        if name not in entities:
            add(kind, oid, ("entity",), f"{name!r} is not an entity{suggest_name(name, entities)}")
            return None
        return entities[name]

    def need_rule(kind, oid, path, expr):
        try:
            rules.parse(expr)
        except RuleError as e:
            add(kind, oid, path, f"the rule does not parse: {e.message}")

    def need_recipients(kind, oid, path, expr):
        """A rule giving user ids (or e-mail addresses), or `role:NAME`."""
        if expr.startswith("role:"):
            if not re.fullmatch(r"role:\s*[a-z][a-z0-9_]*", expr):
                add(kind, oid, path, f"{expr!r}: write role:NAME with a role id")
        else:
            need_rule(kind, oid, path, expr)

    def need_field(kind, oid, path, entity, name, types=None):
        f = entity.fields.get(name)
        if f is None:
            add(kind, oid, path, f"{entity.id} has no field {name!r}{suggest_name(name, entity.fields)}")
        elif types and f.value_type not in types:
            add(kind, oid, path, f"{entity.id}.{name} is a {f.type} field; expected {' or '.join(types)}")
        return f

    def workflow_of(entity):
        sf = entity.state_field
        return workflows.get(sf.workflow) if sf else None

    def check_actions(kind, oid, path, actions, entity, allow_transition):
        wf = workflow_of(entity)
        for i, a in enumerate(actions):
            if "set" in a:
                for k in a["set"]:
                    need_field(kind, oid, path + (i, "set", k), entity, k)
            if "transition" in a:
                if not allow_transition:
                    add(kind, oid, path + (i, "transition"), "a transition action is allowed in automations only")
                elif wf is None or a["transition"] not in wf.transitions:
                    have = list(wf.transitions) if wf else []
                    add(kind, oid, path + (i, "transition"), f"{a['transition']!r} is not a transition of "
                        f"{entity.id}{suggest_name(a['transition'], have)}")
            if "start_timer" in a and a.get("calendar") not in (None, "calendar", "workdays") \
                    and a["calendar"] not in built["calendar"]:
                add(kind, oid, path + (i, "calendar"), f"{a['calendar']!r} is not a calendar")
            if isinstance(a.get("notify"), str):
                need_recipients(kind, oid, path + (i, "notify"), a["notify"])
            if "email" in a and not EMAIL.match(a["email"]["to"].strip()):
                need_recipients(kind, oid, path + (i, "email", "to"), a["email"]["to"])

    for cid, c in built["calendar"].items():
        from .calendar import calendar_from_config
        try:
            calendar_from_config(cid, dict(c.raw))
        except ValueError as e:
            text = str(e)
            day = next((d for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun") if f"'{d}'" in text
                        or f" {d}:" in text or f" {d} " in text), None)
            path = (("timezone",) if "time zone" in text else ("makeup_day",) if "makeup" in text
                    else ("week", day) if day else ("week",))
            add("calendar", cid, path, text)
        if c.holiday_entity:
            e = entities.get(c.holiday_entity)
            if e is None:
                add("calendar", cid, ("holidays", "entity"), f"{c.holiday_entity!r} is not an entity"
                                                              f"{suggest_name(c.holiday_entity, entities)}")
            else:
                need_field("calendar", cid, ("holidays", "date"), e, c.holiday_date, ("date",))
                need_field("calendar", cid, ("holidays", "working"), e, c.holiday_working, ("boolean",))

    for sid, s in built["sla"].items():
        e = need_entity("sla", sid, s.entity)
        if s.calendar not in built["calendar"]:
            add("sla", sid, ("calendar",), f"{s.calendar!r} is not a calendar{suggest_name(s.calendar, built['calendar'])}")
        if s.when:
            need_rule("sla", sid, ("when",), s.when)
        for i, p in enumerate(s.policies):
            if p.when:
                need_rule("sla", sid, ("policies", i, "when"), p.when)
            for t in s.targets:
                if t.name not in p.seconds:
                    add("sla", sid, ("policies", i), f"the policy sets no time for the target {t.name!r}")
        if e is None:
            continue
        wf = workflow_of(e)
        if wf is None:
            add("sla", sid, ("entity",), f"{e.id} has no workflow; an SLA is measured on its state changes")
            continue
        names = set(wf.transitions) | set(wf.states)
        for t in s.targets:
            for key in ("met_by", "reset_by"):
                for j, n in enumerate(getattr(t, key)):
                    if n not in names:
                        add("sla", sid, ("targets", t.name, key, j), f"{n!r} is neither a transition nor a state of "
                            f"{wf.id}{suggest_name(n, names)}")
        for j, st in enumerate(s.pause_states or ()):
            if st not in wf.states:
                add("sla", sid, ("pause_states", j), f"{st!r} is not a state of {wf.id}{suggest_name(st, wf.states)}")
        check_actions("sla", sid, ("on_warning",), s.on_warning, e, False)
        check_actions("sla", sid, ("on_breach",), s.on_breach, e, False)

    for aid, a in built["assignment"].items():
        e = need_entity("assignment", aid, a.entity)
        if e is None:
            continue
        need_field("assignment", aid, ("field",), e, a.field, ("user",))
        if a.when:
            need_rule("assignment", aid, ("when",), a.when)
        wf = workflow_of(e)
        for j, ev in enumerate(a.on):
            if ev != "create" and (wf is None or ev not in wf.transitions):
                add("assignment", aid, ("on", j), f"{ev!r} is neither 'create' nor a transition of {e.id}")
        if a.strategy in ("round_robin", "least_open") or a.fallback:
            if not a.role:
                add("assignment", aid, ("role",), f"strategy {a.strategy} needs `role:` (the users to choose from)")
        if a.strategy == "by_field":
            if not a.value:
                add("assignment", aid, ("value",), "strategy by_field needs `value:` (a rule giving a user id)")
            else:
                need_rule("assignment", aid, ("value",), a.value)
        if a.strategy == "fixed" and not a.user:
            add("assignment", aid, ("user",), "strategy fixed needs `user:` (a user name)")

    for aid, a in built["automation"].items():
        e = need_entity("automation", aid, a.entity)
        if a.when:
            need_rule("automation", aid, ("when",), a.when)
        if a.on == "schedule":
            if not a.cron:
                add("automation", aid, ("cron",), "a scheduled rule needs `cron:` (five fields, e.g. '0 8 * * 1-5')")
            else:
                from croniter import croniter
                if len(a.cron.split()) != 5 or not croniter.is_valid(a.cron):
                    add("automation", aid, ("cron",), f"{a.cron!r} is not a valid cron line (five fields: minute "
                                                      f"hour day-of-month month day-of-week)")
            if a.timezone:
                try:
                    from zoneinfo import ZoneInfo
                    ZoneInfo(a.timezone)
                except Exception:  # noqa: BLE001 - any failure is an unknown zone
                    add("automation", aid, ("timezone",), f"{a.timezone!r} is not a time zone (e.g. Asia/Shanghai)")
        elif a.cron:
            add("automation", aid, ("cron",), f"`cron:` belongs to `on: schedule`, not `on: {a.on}`")
        if e is None:
            continue
        if a.on == "change":
            if not a.fields:
                add("automation", aid, ("fields",), "`on: change` needs `fields:` (the fields whose change triggers)")
            for j, f in enumerate(a.fields):
                need_field("automation", aid, ("fields", j), e, f)
        if a.on == "enter":
            wf = workflow_of(e)
            if not a.state:
                add("automation", aid, ("state",), "`on: enter` needs `state:`")
            elif wf is None or a.state not in wf.states:
                add("automation", aid, ("state",), f"{a.state!r} is not a state of {e.id}"
                                                   f"{suggest_name(a.state, wf.states if wf else {})}")
        check_actions("automation", aid, ("actions",), a.actions, e, True)
    return problems


def today_in(zone: str | None) -> dt.date:
    from .. import clock
    from zoneinfo import ZoneInfo
    aware = clock.now().replace(tzinfo=dt.timezone.utc)
    return aware.astimezone(ZoneInfo(zone)).date() if zone else clock.today()
