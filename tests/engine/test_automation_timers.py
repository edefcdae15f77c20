"""E3/E1 durable timers, on SQLite and PostgreSQL: SLA warning and breach timers of the default
pack's tickets fire once (also with two sweepers at the same instant, also long after the server
was down), a resolved or deleted ticket's timers stop, a holiday entered later or a pause after
the breach cause no false or repeated breach, and (C8) a scheduled rule whose effect fails is kept
with its error and retried while the other timers still fire; two sweepers planning the schedules
at once (tests/fixtures/config/auto_timers).
"""
from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from engine.automation import timers as durable
from engine.wftables import timers as timer_table
from tests.engine.test_automation_kit import (FIXTURES, automation_templates, naive_utc, sh,  # noqa: F401 - fixtures
                                              stack)

RESPONSE_WARN = "sla:ticket_service:response:warn"
RESPONSE_BREACH = "sla:ticket_service:response:breach"
RESOLUTION_WARN = "sla:ticket_service:resolution:warn"
RESOLUTION_BREACH = "sla:ticket_service:resolution:breach"
SLA_TIMERS = {RESPONSE_WARN, RESPONSE_BREACH, RESOLUTION_WARN, RESOLUTION_BREACH}


@pytest.fixture
def desk(stack):
    s = stack()
    s.agent = s.user("agent", ["service_agent"])
    s.manager = s.user("lead", ["service_manager"])
    s.other_manager = s.user("lead2", ["service_manager"], active=False)    # inactive: never notified
    with s.at(sh("2026-11-02 09:00")):
        s.customer = s.store.create("customer", {"name": "Acme", "phone": "021-5555"}, s.admin)
    return s


def p1_friday_evening(s, subject="Printer down"):
    """A P1 ticket opened Friday 17:30: response due Monday 09:30 (warning 09:15), resolution Monday 17:30
    (warning at 75% of 8h = 6h in: Monday 15:30)."""
    with s.at(sh("2026-11-20 17:30")):
        return s.store.create("ticket", {"subject": subject, "customer": s.customer["id"], "priority": "p1"}, s.agent)


def sla_timer_names(s, rid, status="running"):
    return sorted(t["name"] for t in s.timers("ticket", rid, status=status) if t["name"].startswith("sla:"))


def test_a_new_ticket_has_one_warning_and_one_breach_timer_per_target(desk):
    t = p1_friday_evening(desk)
    running = {x["name"]: x for x in desk.timers("ticket", t["id"], status="running")}
    assert set(running) == SLA_TIMERS
    assert running[RESPONSE_WARN]["due_at"] == naive_utc("2026-11-23 09:15")
    assert running[RESPONSE_BREACH]["due_at"] == naive_utc("2026-11-23 09:30")
    assert running[RESOLUTION_WARN]["due_at"] == naive_utc("2026-11-23 15:30")
    assert running[RESOLUTION_BREACH]["due_at"] == naive_utc("2026-11-23 17:30")
    # an unrelated edit does not duplicate them
    with desk.at(sh("2026-11-20 17:40")):
        desk.store.update("ticket", t["id"], {"description": "Paper jam"}, desk.agent)
    assert sla_timer_names(desk, t["id"]) == sorted(SLA_TIMERS)


def test_the_breach_timer_fires_once_and_notifies_the_service_leads_and_the_assignee(desk):
    t = p1_friday_evening(desk)
    assert t["assignee"] == desk.agent.id
    desk.auto.sweep(sh("2026-11-23 09:16"))                    # the warning, before the deadline
    assert desk.notes(contains="SLA breached") == []
    first = desk.auto.sweep(sh("2026-11-23 09:32"))
    assert first.failed == [] and first.fired == 1 and first.late == []
    resp = desk.sla("ticket", t["id"], sh("2026-11-23 09:32"))["response"]
    assert resp["status"] == "breached" and resp["breached_at"] == "2026-11-23T09:30:00+08:00"
    breached = desk.notes(contains="SLA breached")
    assert sorted(n["user_id"] for n in breached) == sorted([desk.manager.id, desk.agent.id])
    assert {n["message"] for n in breached} == {f"SLA breached: ticket {t['code']} Printer down"}
    assert {(n["entity"], n["record_id"]) for n in breached} == {("ticket", t["id"])}

    total = len(desk.notes())
    again = desk.auto.sweep(sh("2026-11-23 09:32"))
    assert (again.fired, again.late, again.failed) == (0, [], [])
    assert len(desk.notes()) == total
    # the response timers are done; the resolution ones still run
    assert sla_timer_names(desk, t["id"]) == sorted([RESOLUTION_WARN, RESOLUTION_BREACH])


def test_the_warning_notifies_the_assignee_once_before_the_deadline(desk):
    t = p1_friday_evening(desk)
    assert desk.auto.sweep(sh("2026-11-23 09:14")).fired == 0
    assert desk.notes(contains="SLA warning") == []
    assert desk.auto.sweep(sh("2026-11-23 09:16")).fired == 1
    warned = desk.notes(contains="SLA warning")
    assert [(n["user_id"], n["message"]) for n in warned] == [
        (desk.agent.id, f"SLA warning: ticket {t['code']} is close to its deadline")]
    assert desk.notes(user_id=desk.manager.id) == []
    resp = desk.sla("ticket", t["id"], sh("2026-11-23 09:16"))["response"]
    assert (resp["status"], resp["remaining_seconds"]) == ("running", 14 * 60)
    assert desk.clocks("ticket", t["id"])["response"]["warned_at"] == naive_utc("2026-11-23 09:16")
    assert desk.auto.sweep(sh("2026-11-23 09:17")).fired == 0
    assert len(desk.notes(contains="SLA warning")) == 1


def test_a_ticket_resolved_in_time_leaves_no_running_sla_timer_and_no_breach(desk):
    t = p1_friday_evening(desk)
    a = desk.agent
    desk.move("ticket", t["id"], "start", a, sh("2026-11-23 09:05"))
    assert sla_timer_names(desk, t["id"]) == sorted([RESOLUTION_WARN, RESOLUTION_BREACH])
    with desk.at(sh("2026-11-23 09:50")):
        desk.store.update("ticket", t["id"], {"resolution": "Restarted the spooler"}, a)
    desk.move("ticket", t["id"], "resolve", a, sh("2026-11-23 10:00"))
    assert sla_timer_names(desk, t["id"]) == []
    assert {x["status"] for x in desk.timers("ticket", t["id"])} == {"stopped"}
    result = desk.auto.sweep(sh("2026-11-30 12:00"))
    assert result.failed == []
    assert desk.notes(record_id=t["id"]) == []
    items = desk.sla("ticket", t["id"], sh("2026-11-30 12:00"))
    assert {k: v["status"] for k, v in items.items()} == {"response": "met", "resolution": "met"}


def test_a_sweep_long_after_the_deadline_fires_each_timer_once_and_reports_it_late(desk):
    t = p1_friday_evening(desk)
    # the server was down from Friday evening to Wednesday
    result = desk.auto.sweep(sh("2026-11-25 10:00"))
    assert result.failed == []
    late = [name for _id, name, _due in result.late]
    assert sorted(late) == sorted(SLA_TIMERS)
    due = {name: at for _id, name, at in result.late}
    assert due[RESPONSE_BREACH] == naive_utc("2026-11-23 09:30")
    assert due[RESOLUTION_BREACH] == naive_utc("2026-11-23 17:30")
    breached = desk.notes(contains="SLA breached")
    assert len(breached) == 4                          # 2 targets x (service lead + assignee)
    # a warning whose deadline has passed as well is not sent ("close to its deadline" would be false)
    assert desk.notes(contains="SLA warning") == []
    items = desk.sla("ticket", t["id"], sh("2026-11-25 10:00"))
    assert items["response"]["breached_at"] == "2026-11-23T09:30:00+08:00"
    assert items["resolution"]["breached_at"] == "2026-11-23T17:30:00+08:00"
    again = desk.auto.sweep(sh("2026-11-25 10:05"))
    assert (again.fired, again.late, again.failed) == (0, [], [])
    assert len(desk.notes(contains="SLA breached")) == 4


def test_two_sweepers_at_the_same_instant_fire_each_timer_exactly_once(desk):
    tickets = [p1_friday_evening(desk, f"Ticket {i}") for i in range(3)]
    desk.auto.sweep(sh("2026-11-20 18:00"))               # plans the scheduled rules; nothing due yet
    now = naive_utc("2026-11-23 09:32")
    due = {x["id"] for x in desk.timers(status="running") if x["due_at"] <= now}
    assert len(due) == 6 + 4      # response warning + breach of 3 tickets, 4 daily rules (weekend runs)
    results, errors = [], []
    gate = threading.Barrier(2)

    def sweeper():
        try:
            gate.wait(timeout=10)
            results.append(desk.auto.sweep(sh("2026-11-23 09:32")))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert errors == [] and len(results) == 2
    assert [r.failed for r in results] == [[], []]
    assert sum(r.fired for r in results) == len(due)
    for t in tickets:
        notes = desk.notes(record_id=t["id"])
        # one breach each for the lead and the assignee; no warning once the deadline itself has passed
        assert sorted((n["user_id"], n["message"].split(":")[0]) for n in notes) == sorted([
            (desk.agent.id, "SLA breached"), (desk.manager.id, "SLA breached")])
    fired = [x for x in desk.timers() if x["status"] == "fired"]
    assert {x["id"] for x in fired} == due and {x["attempts"] for x in fired} == {1}


def test_a_deleted_tickets_timers_are_stopped(desk):
    t = p1_friday_evening(desk)
    keep = p1_friday_evening(desk, "Another")
    with desk.at(sh("2026-11-20 17:45")):
        desk.store.delete("ticket", t["id"], desk.admin)
    assert sla_timer_names(desk, t["id"]) == []
    assert sla_timer_names(desk, t["id"], status="stopped") == sorted(SLA_TIMERS)
    desk.auto.sweep(sh("2026-11-23 18:00"))
    assert desk.notes(record_id=t["id"]) == []
    assert len(desk.notes(record_id=keep["id"], contains="SLA breached")) == 4


def test_a_restored_ticket_gets_its_sla_timers_back(desk):
    t = p1_friday_evening(desk)
    with desk.at(sh("2026-11-20 17:45")):
        desk.store.delete("ticket", t["id"], desk.admin)
    with desk.at(sh("2026-11-20 17:50")):
        desk.store.restore("ticket", t["id"], desk.admin)
    assert sla_timer_names(desk, t["id"]) == sorted(SLA_TIMERS)
    desk.auto.sweep(sh("2026-11-23 09:32"))
    assert len(desk.notes(record_id=t["id"], contains="SLA breached")) == 2


# ---- a scheduled rule whose effect fails -------------------------------------------------------
@pytest.fixture
def accounts(stack):
    s = stack(FIXTURES / "auto_timers")
    s.owner = s.user("olga", ["staff"])
    with s.at(sh("2026-11-02 09:00")):
        s.plain = s.store.create("account", {"name": "Plain", "revenue": 10}, s.owner)
        s.mailed = s.store.create("account", {"name": "Mailed", "email": "ap@mailed.test"}, s.owner)
    return s


def schedule_timer(s, automation, status="running"):
    rows = [x for x in s.timers("_schedule", status=status) if x["name"] == f"schedule:{automation}"]
    return rows


def test_a_failing_scheduled_rule_is_kept_with_its_error_and_retried_while_others_fire(accounts):
    s = accounts
    s.auto.sweep(sh("2026-11-23 08:00"))           # plans today's 09:00 runs
    result = s.auto.sweep(sh("2026-11-23 09:00"))
    assert [name for _id, name, _err in result.failed] == ["schedule:account_mail_check"]
    assert "not a user id" in result.failed[0][2]
    # the other rule at the same instant ran: each account's owner got the digest
    assert sorted(n["message"] for n in s.notes(user_id=s.owner.id)) == ["Digest: Mailed", "Digest: Plain"]
    assert s.notes(contains="Mail check") == []    # the failed effect rolled back whole
    [row] = schedule_timer(s, "account_mail_check")
    assert row["attempts"] == 1 and "not a user id" in row["last_error"]
    assert row["due_at"] == naive_utc("2026-11-23 09:00:30")              # retried 30 s later
    assert [p["id"] for p in durable.problems(s.eng)] == [row["id"]]

    assert s.auto.sweep(sh("2026-11-23 09:00:10")).fired == 0             # not before its retry instant
    # the data is fixed; the retry goes through
    with s.at(sh("2026-11-23 09:00:20")):
        s.store.update("account", s.mailed["id"], {"email": None, "revenue": 5}, s.owner)
    retry = s.auto.sweep(sh("2026-11-23 09:00:31"))
    assert (retry.fired, retry.failed) == (1, [])
    assert schedule_timer(s, "account_mail_check", status="fired")[0]["attempts"] == 2
    # and the schedule goes on: tomorrow 09:00 Shanghai
    [nxt] = schedule_timer(s, "account_mail_check")
    assert nxt["due_at"] == naive_utc("2026-11-24 09:00")
    assert len(s.notes(contains="Digest")) == 2


def test_a_timer_that_keeps_failing_is_given_up_and_can_be_retried_by_an_admin(accounts):
    s = accounts
    s.auto.sweep(sh("2026-11-23 08:00"))
    when = sh("2026-11-23 09:00")
    for attempt in range(1, durable.MAX_ATTEMPTS + 1):
        r = s.auto.sweep(when)
        assert [name for _id, name, _e in r.failed] == ["schedule:account_mail_check"], attempt
        when += dt.timedelta(hours=2)
    [dead] = schedule_timer(s, "account_mail_check", status="failed")
    assert dead["attempts"] == durable.MAX_ATTEMPTS and "not a user id" in dead["last_error"]
    assert dead["id"] in [p["id"] for p in durable.problems(s.eng)]
    with s.at(when):
        assert durable.retry(s.eng, dead["id"]) is True
    with s.eng.connect() as c:
        row = c.execute(sa.select(timer_table).where(timer_table.c.id == dead["id"])).mappings().one()
    assert (row["status"], row["attempts"]) == ("running", 0)


def test_two_sweepers_planning_the_schedules_at_once_run_each_rule_once(accounts, monkeypatch, request):
    """Two sweepers (two workers, or a worker and `flask crm timers run`) start on a fresh database
    at the same moment. Both are held inside plan_schedules, after reading which rules already have
    a timer, so their planning overlaps for certain (on SQLite the second waits for the first's
    write lock instead, which the short barrier timeout lets through)."""
    s = accounts
    from engine.automation import service as service_module
    real_next_run = service_module._next_run
    gate = threading.Barrier(2)

    def held_next_run(a, now):
        try:
            gate.wait(timeout=1)
        except threading.BrokenBarrierError:
            pass
        return real_next_run(a, now)

    monkeypatch.setattr(service_module, "_next_run", held_next_run)
    errors = []

    def sweeper():
        try:
            s.auto.sweep(sh("2026-11-23 08:00"))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    monkeypatch.setattr(service_module, "_next_run", real_next_run)
    assert errors == []
    with s.at(sh("2026-11-23 08:30")):
        s.store.update("account", s.mailed["id"], {"email": None, "revenue": 5}, s.owner)
    s.auto.sweep(sh("2026-11-23 09:00"))
    assert sorted(n["message"] for n in s.notes(contains="Digest")) == ["Digest: Mailed", "Digest: Plain"]
    assert len(schedule_timer(s, "account_digest")) == 1


# ---- calendars and pauses that change after the clock started -------------------------------------
def test_a_holiday_entered_after_the_ticket_was_opened_causes_no_false_breach(desk):
    t = p1_friday_evening(desk)                             # response due Monday 09:30
    with desk.at(sh("2026-11-21 10:00")):                   # Saturday: Monday becomes a day off
        desk.store.create("holiday", {"date": "2026-11-23", "working": False, "name": "Day off"}, desk.admin)
    monday = desk.auto.sweep(sh("2026-11-23 09:31"))
    assert monday.failed == []
    assert desk.notes(record_id=t["id"]) == []
    resp = desk.sla("ticket", t["id"], sh("2026-11-23 09:31"))["response"]
    assert (resp["status"], resp["due_at"]) == ("running", "2026-11-24T09:30:00+08:00")
    running = {x["name"]: x["due_at"] for x in desk.timers("ticket", t["id"], status="running")}
    assert running[RESPONSE_BREACH] == naive_utc("2026-11-24 09:30")
    desk.auto.sweep(sh("2026-11-24 09:31"))
    assert len(desk.notes(record_id=t["id"], contains="SLA breached")) == 2


def test_a_holiday_entered_later_moves_the_due_instant_shown(desk):
    t = p1_friday_evening(desk)
    with desk.at(sh("2026-11-21 10:00")):
        desk.store.create("holiday", {"date": "2026-11-23", "working": False, "name": "Day off"}, desk.admin)
    assert desk.sla("ticket", t["id"], sh("2026-11-21 10:05"))["response"]["due_at"] == "2026-11-24T09:30:00+08:00"


def test_waiting_on_the_customer_after_a_breach_does_not_breach_it_again(desk):
    a = desk.agent
    with desk.at(sh("2026-11-23 09:00")):
        t = desk.store.create("ticket", {"subject": "X", "customer": desk.customer["id"], "priority": "p1"}, a)
    desk.move("ticket", t["id"], "start", a, sh("2026-11-23 09:05"))
    desk.auto.sweep(sh("2026-11-23 18:01"))                 # resolution due Monday 18:00: breached
    assert len(desk.notes(contains="SLA breached")) == 2
    desk.move("ticket", t["id"], "wait_customer", a, sh("2026-11-24 09:30"), comment="Logs?")
    desk.move("ticket", t["id"], "customer_replied", a, sh("2026-11-24 10:30"))
    desk.auto.sweep(sh("2026-11-24 10:31"))
    res = desk.sla("ticket", t["id"], sh("2026-11-24 10:31"))["resolution"]
    assert len(desk.notes(contains="SLA breached")) == 2, "the breach was notified again"
    assert (res["status"], res["due_at"], res["breached_at"]) == (
        "breached", "2026-11-23T18:00:00+08:00", "2026-11-23T18:00:00+08:00")
