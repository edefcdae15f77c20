"""E3 SLA clocks of the default pack's tickets (config/slas/ticket_service.yaml), on SQLite and
PostgreSQL: due instants in the `standard` calendar (Mon-Fri 09-12 and 13-18 Asia/Shanghai) with
holidays and make-up days from the `holiday` entity, pauses in waiting_customer, met / met late,
a priority change after creation, reopen (reset_by) and the P4 policy. Also A5 (the ticket
lifecycle drives the clocks) and the `?sla=` list filter.

Every expected instant below is worked out by hand in the comment next to it.
"""
from __future__ import annotations

import pytest

from engine.actor import Actor
from engine.automation.calendar import calendar_from_config
from engine.errors import Forbidden
from engine.query import ListRequest
from tests.engine.test_automation_kit import automation_templates, iso, naive_utc, sh, stack  # noqa: F401 - fixtures

RUNNING, PAUSED, MET, BREACHED = "running", "paused", "met", "breached"


@pytest.fixture
def desk(stack):
    """The default pack with one service agent (who gets every new ticket), a service lead and a customer."""
    s = stack()
    s.agent = s.user("agent", ["service_agent"])
    s.manager = s.user("lead", ["service_manager"])
    with s.at(sh("2026-11-02 09:00")):
        s.customer = s.store.create("customer", {"name": "Acme", "phone": "021-5555"}, s.admin)
    return s


def ticket(s, when, priority="p1", **values):
    with s.at(when):
        return s.store.create("ticket", {"subject": "Printer down", "customer": s.customer["id"],
                                         "priority": priority, **values}, s.agent)


def holiday(s, day: str, working: bool, name="day"):
    with s.at(sh("2026-11-02 09:00")):
        return s.store.create("holiday", {"date": day, "working": working, "name": name}, s.admin)


def std_calendar(s):
    return calendar_from_config("standard", dict(s.cfg.auto.calendars["standard"].raw))


# ---- due instants ---------------------------------------------------------------------------
def test_p1_opened_friday_evening_is_due_monday(desk):
    # Friday 2026-11-20 17:30 Shanghai = 09:30 UTC
    t = ticket(desk, sh("2026-11-20 17:30"))
    items = desk.sla("ticket", t["id"], sh("2026-11-20 17:30"))
    resp, res = items["response"], items["resolution"]
    assert resp["policy"] == res["policy"] == "p1"
    assert (resp["target_seconds"], res["target_seconds"]) == (3600, 8 * 3600)
    # response 1h: 17:30-18:00 Friday (0.5h), the weekend is off, Monday 09:00-09:30
    assert resp["due_at"] == iso("2026-11-23 09:30") == "2026-11-23T09:30:00+08:00"
    # resolution 8h: 0.5h Friday + Monday 09-12 (3h) + 13:00-17:30 (4.5h) = Monday 17:30
    assert res["due_at"] == iso("2026-11-23 17:30")
    assert resp["started_at"] == iso("2026-11-20 17:30")
    assert (resp["status"], resp["remaining_seconds"]) == (RUNNING, 3600)
    assert (res["status"], res["remaining_seconds"]) == (RUNNING, 8 * 3600)

    # on Saturday nothing of the working time has gone
    assert desk.sla("ticket", t["id"], sh("2026-11-21 15:00"))["response"]["remaining_seconds"] == 1800
    # one minute before the deadline it still runs; at the deadline it is breached
    before = desk.sla("ticket", t["id"], sh("2026-11-23 09:29"))["response"]
    assert (before["status"], before["remaining_seconds"]) == (RUNNING, 60)
    assert desk.sla("ticket", t["id"], sh("2026-11-23 09:30"))["response"]["status"] == BREACHED
    late = desk.sla("ticket", t["id"], sh("2026-11-23 09:40"))["response"]
    assert (late["status"], late["remaining_seconds"]) == (BREACHED, -600)


def test_the_lunch_break_does_not_count(desk):
    # Monday 11:30: 11:30-12:00 (0.5h) then 13:00-13:30
    t = ticket(desk, sh("2026-11-23 11:30"))
    items = desk.sla("ticket", t["id"], sh("2026-11-23 11:30"))
    assert items["response"]["due_at"] == iso("2026-11-23 13:30")
    # 8h: 0.5h + 13-18 (5h) Monday, then Tuesday 09:00-11:30 (2.5h)
    assert items["resolution"]["due_at"] == iso("2026-11-24 11:30")
    # during lunch the remaining time stands still
    assert desk.sla("ticket", t["id"], sh("2026-11-23 12:00"))["response"]["remaining_seconds"] == 1800
    assert desk.sla("ticket", t["id"], sh("2026-11-23 12:59"))["response"]["remaining_seconds"] == 1800


def test_a_holiday_monday_moves_the_due_to_tuesday(desk):
    holiday(desk, "2026-11-23", working=False, name="Company day off")
    t = ticket(desk, sh("2026-11-20 17:30"))
    items = desk.sla("ticket", t["id"], sh("2026-11-20 17:30"))
    assert items["response"]["due_at"] == iso("2026-11-24 09:30")
    assert items["resolution"]["due_at"] == iso("2026-11-24 17:30")


def test_a_make_up_saturday_is_worked(desk):
    holiday(desk, "2026-11-21", working=True, name="调休")
    t = ticket(desk, sh("2026-11-20 17:30"))
    items = desk.sla("ticket", t["id"], sh("2026-11-20 17:30"))
    # Saturday is worked like a weekday: 09:00-09:30 and (3h + 4.5h) by 17:30
    assert items["response"]["due_at"] == iso("2026-11-21 09:30")
    assert items["resolution"]["due_at"] == iso("2026-11-21 17:30")


def test_p4_gets_16_and_80_working_hours(desk):
    t = ticket(desk, sh("2026-11-23 09:30"), priority="p4")
    items = desk.sla("ticket", t["id"], sh("2026-11-23 09:30"))
    assert {i["policy"] for i in items.values()} == {"p4"}
    assert (items["response"]["target_seconds"], items["resolution"]["target_seconds"]) == (16 * 3600, 80 * 3600)
    # 16h: Monday 7.5h + Tuesday 8h + Wednesday 09:00-09:30
    assert items["response"]["due_at"] == iso("2026-11-25 09:30")
    # 80h: Monday 7.5h + 9 full days (72h) = 79.5h by Friday 4 Dec, then Monday 7 Dec 09:00-09:30
    assert items["resolution"]["due_at"] == iso("2026-12-07 09:30")


# ---- pauses -----------------------------------------------------------------------------------
def test_waiting_on_the_customer_shifts_the_resolution_by_the_paused_working_time(desk):
    a = desk.agent
    t = ticket(desk, sh("2026-11-23 09:30"))
    # 8h from Monday 09:30: 2.5h + 5h Monday, Tuesday 09:00-09:30
    unpaused = desk.sla("ticket", t["id"], sh("2026-11-23 09:30"))["resolution"]["due_at"]
    assert unpaused == iso("2026-11-24 09:30")
    desk.move("ticket", t["id"], "start", a, sh("2026-11-23 09:40"))
    desk.move("ticket", t["id"], "wait_customer", a, sh("2026-11-23 10:00"), comment="Which printer?")

    during = desk.sla("ticket", t["id"], sh("2026-11-23 12:30"))
    assert during["resolution"]["status"] == PAUSED
    assert during["resolution"]["due_at"] is None and during["resolution"]["remaining_seconds"] is None
    assert during["response"]["status"] == MET and during["response"]["met_at"] == iso("2026-11-23 09:40")
    assert desk.clocks("ticket", t["id"])["resolution"]["paused"] is True

    desk.move("ticket", t["id"], "customer_replied", a, sh("2026-11-23 14:00"))
    after = desk.sla("ticket", t["id"], sh("2026-11-23 14:00"))["resolution"]
    # paused 10:00-12:00 and 13:00-14:00 = 3 working hours -> Tuesday 09:30 + 3h = 13:30 (lunch skipped)
    assert after["status"] == RUNNING
    assert after["due_at"] == iso("2026-11-24 13:30")
    cal = std_calendar(desk)
    assert cal.seconds_between(sh("2026-11-24 09:30"), sh("2026-11-24 13:30")) == 3 * 3600
    # it had 8h, used 09:30-10:00 (0.5h) before the pause: 7.5h remain
    assert after["remaining_seconds"] == int(7.5 * 3600)


def test_a_pause_over_the_weekend_counts_no_weekend_time(desk):
    a = desk.agent
    t = ticket(desk, sh("2026-11-20 09:00"))           # Friday; unpaused resolution due Friday 18:00
    desk.move("ticket", t["id"], "start", a, sh("2026-11-20 09:05"))
    desk.move("ticket", t["id"], "wait_customer", a, sh("2026-11-20 16:30"), comment="Send logs please")
    saturday = desk.sla("ticket", t["id"], sh("2026-11-21 12:00"))["resolution"]
    assert (saturday["status"], saturday["due_at"]) == (PAUSED, None)
    desk.move("ticket", t["id"], "customer_replied", a, sh("2026-11-23 10:00"))
    # paused working time: Friday 16:30-18:00 (1.5h) + Monday 09:00-10:00 (1h) = 2.5h
    # -> Friday 18:00 + 2.5h = Monday 11:30
    res = desk.sla("ticket", t["id"], sh("2026-11-23 10:00"))["resolution"]
    assert (res["status"], res["due_at"]) == (RUNNING, iso("2026-11-23 11:30"))
    assert res["remaining_seconds"] == int(1.5 * 3600)


# ---- met, met late ------------------------------------------------------------------------------
def test_response_is_met_by_start_and_stays_met_through_pauses(desk):
    a = desk.agent
    t = ticket(desk, sh("2026-11-23 09:00"))
    desk.move("ticket", t["id"], "start", a, sh("2026-11-23 09:20"))
    resp = desk.sla("ticket", t["id"], sh("2026-11-23 09:20"))["response"]
    assert (resp["status"], resp["met_at"], resp["remaining_seconds"]) == (MET, iso("2026-11-23 09:20"), None)
    desk.move("ticket", t["id"], "wait_customer", a, sh("2026-11-23 09:30"), comment="?")
    # long after the response deadline, while waiting on the customer: still met, not paused
    later = desk.sla("ticket", t["id"], sh("2026-11-25 15:00"))
    assert later["response"]["status"] == MET
    assert later["resolution"]["status"] == PAUSED
    desk.move("ticket", t["id"], "customer_replied", a, sh("2026-11-25 15:00"))
    assert desk.sla("ticket", t["id"], sh("2026-11-25 15:00"))["response"]["status"] == MET
    # the record's own first-response stamp (a transition action) agrees with the clock
    assert desk.store.get("ticket", t["id"], desk.admin)["first_response_at"] == naive_utc("2026-11-23 09:20")


def test_a_response_met_after_the_deadline_counts_as_breached(desk):
    t = ticket(desk, sh("2026-11-20 17:30"))           # response due Monday 09:30
    desk.move("ticket", t["id"], "start", desk.agent, sh("2026-11-23 10:00"))
    resp = desk.sla("ticket", t["id"], sh("2026-11-23 10:00"))["response"]
    assert resp["status"] == BREACHED
    assert resp["met_at"] == iso("2026-11-23 10:00") and resp["breached_at"] is not None
    assert resp["remaining_seconds"] is None
    # and it stays breached afterwards
    assert desk.sla("ticket", t["id"], sh("2026-11-30 10:00"))["response"]["status"] == BREACHED
    # a response on time on another ticket is simply met
    t2 = ticket(desk, sh("2026-11-20 17:30"))
    desk.move("ticket", t2["id"], "start", desk.agent, sh("2026-11-23 09:29"))
    assert desk.sla("ticket", t2["id"], sh("2026-11-30 10:00"))["response"]["status"] == MET


# ---- priority changes --------------------------------------------------------------------------
def test_raising_the_priority_recomputes_the_due_instants(desk):
    t = ticket(desk, sh("2026-11-23 09:00"), priority="p3")
    before = desk.sla("ticket", t["id"], sh("2026-11-23 09:00"))
    assert before["response"]["policy"] == "p3"
    assert before["response"]["due_at"] == iso("2026-11-23 18:00")       # 8h: the whole Monday
    assert before["resolution"]["due_at"] == iso("2026-11-27 18:00")     # 40h: Monday to Friday
    with desk.at(sh("2026-11-23 09:20")):
        desk.store.update("ticket", t["id"], {"priority": "p1"}, desk.agent)
    after = desk.sla("ticket", t["id"], sh("2026-11-23 09:20"))
    assert after["response"]["policy"] == after["resolution"]["policy"] == "p1"
    # counted from the creation, not from the change
    assert after["response"]["due_at"] == iso("2026-11-23 10:00")
    assert after["resolution"]["due_at"] == iso("2026-11-23 18:00")
    assert after["response"]["remaining_seconds"] == 40 * 60
    # the breach timer moved with it
    breach = [x for x in desk.timers("ticket", t["id"], status="running")
              if x["name"] == "sla:ticket_service:response:breach"]
    assert [x["due_at"] for x in breach] == [naive_utc("2026-11-23 10:00")]


def test_a_late_priority_raise_is_breached_at_once_and_notified_once(desk):
    t = ticket(desk, sh("2026-11-23 09:00"), priority="p3")
    with desk.at(sh("2026-11-23 11:00")):                 # a P1 response was due at 10:00
        desk.store.update("ticket", t["id"], {"priority": "p1"}, desk.agent)
    assert desk.sla("ticket", t["id"], sh("2026-11-23 11:00"))["response"]["status"] == BREACHED
    first = desk.auto.sweep(sh("2026-11-23 11:01"))
    second = desk.auto.sweep(sh("2026-11-23 11:01"))
    assert first.failed == [] and second.fired == 0
    breached = desk.notes(contains="SLA breached", record_id=t["id"])
    assert sorted(n["user_id"] for n in breached) == sorted([desk.manager.id, desk.agent.id])


def test_lowering_the_priority_after_a_breach_clears_it(desk):
    t = ticket(desk, sh("2026-11-20 17:30"))           # P1 response due Monday 09:30
    desk.auto.sweep(sh("2026-11-23 09:31"))
    assert desk.sla("ticket", t["id"], sh("2026-11-23 09:31"))["response"]["status"] == BREACHED
    with desk.at(sh("2026-11-23 09:40")):
        desk.store.update("ticket", t["id"], {"priority": "p4"}, desk.agent)
    resp = desk.sla("ticket", t["id"], sh("2026-11-23 09:40"))["response"]
    # P4: 16h from Friday 17:30 = 0.5h + Monday 8h + Tuesday 7.5h -> Tuesday 17:30
    assert (resp["status"], resp["due_at"], resp["breached_at"]) == (RUNNING, iso("2026-11-24 17:30"), None)


# ---- resolve and reopen --------------------------------------------------------------------------
def test_resolving_meets_the_resolution_and_reopening_runs_it_again(desk):
    a = desk.agent
    t = ticket(desk, sh("2026-11-23 09:00"))
    desk.move("ticket", t["id"], "start", a, sh("2026-11-23 09:10"))
    with desk.at(sh("2026-11-23 10:30")):
        desk.store.update("ticket", t["id"], {"resolution": "Replaced the toner"}, a)
    desk.move("ticket", t["id"], "resolve", a, sh("2026-11-23 11:00"))
    res = desk.sla("ticket", t["id"], sh("2026-11-23 11:00"))["resolution"]
    assert (res["status"], res["met_at"]) == (MET, iso("2026-11-23 11:00"))
    assert [x for x in desk.timers("ticket", t["id"], status="running")] == []
    desk.move("ticket", t["id"], "reopen", a, sh("2026-11-23 14:00"), comment="Still broken")
    res = desk.sla("ticket", t["id"], sh("2026-11-23 14:00"))["resolution"]
    assert res["status"] == RUNNING and res["met_at"] is None
    # the response is not reset by a reopen
    assert desk.sla("ticket", t["id"], sh("2026-11-23 14:00"))["response"]["status"] == MET
    names = {x["name"] for x in desk.timers("ticket", t["id"], status="running")}
    assert "sla:ticket_service:resolution:breach" in names


def test_reopening_a_week_later_restarts_the_resolution_clock(desk):
    a = desk.agent
    t = ticket(desk, sh("2026-11-23 09:00"))
    desk.move("ticket", t["id"], "start", a, sh("2026-11-23 09:10"))
    with desk.at(sh("2026-11-23 10:30")):
        desk.store.update("ticket", t["id"], {"resolution": "Replaced the toner"}, a)
    desk.move("ticket", t["id"], "resolve", a, sh("2026-11-23 11:00"))      # resolved on time
    desk.move("ticket", t["id"], "reopen", a, sh("2026-11-30 10:00"), comment="It jams again")
    res = desk.sla("ticket", t["id"], sh("2026-11-30 10:00"))["resolution"]
    # a fresh 8 working hours from Monday 30th 10:00: 2h + 5h Monday, Tuesday 09:00-10:00
    assert res["status"] == RUNNING, f"reopened ticket is {res['status']}, due {res['due_at']}"
    assert res["due_at"] == iso("2026-12-01 10:00")


# ---- the list filter ------------------------------------------------------------------------------
def test_the_sla_list_filter_finds_breached_and_paused_tickets(desk):
    a = desk.agent
    late = ticket(desk, sh("2026-11-20 17:30"))                    # due Monday 09:30
    waiting = ticket(desk, sh("2026-11-23 09:00"))
    fresh = ticket(desk, sh("2026-11-23 09:50"))
    desk.move("ticket", waiting["id"], "start", a, sh("2026-11-23 09:05"))
    desk.move("ticket", waiting["id"], "wait_customer", a, sh("2026-11-23 09:10"), comment="?")

    def ids(which):
        with desk.at(sh("2026-11-23 10:00")):
            return {r["id"] for r in desk.store.list("ticket", ListRequest(filters=[], sla=which), desk.admin)["items"]}

    assert ids("breached") == {late["id"]}
    assert ids("paused") == {waiting["id"]}
    # the filter matches clocks: the late ticket's resolution still runs, so it is in both lists
    assert ids("running") == {late["id"], fresh["id"]}
    assert ids("met") == {waiting["id"]}                          # its response was met
    with desk.at(sh("2026-11-23 10:00")):
        summary = desk.auto.sla_summary("ticket", [late["id"], waiting["id"], fresh["id"]])
    # the list column shows each ticket's most urgent clock
    assert {k: v["status"] for k, v in summary.items()} == {late["id"]: BREACHED, waiting["id"]: PAUSED,
                                                             fresh["id"]: RUNNING}


def test_a_user_without_access_to_the_ticket_cannot_read_its_sla(desk):
    t = ticket(desk, sh("2026-11-23 09:00"))
    anonymous = Actor(id=None, username="nobody", roles=())
    with pytest.raises(Forbidden):
        desk.auto.sla_items("ticket", t["id"], anonymous)


def test_a_breached_clock_stays_breached_while_waiting_on_the_customer(desk):
    a = desk.agent
    t = ticket(desk, sh("2026-11-23 09:00"))                # resolution due Monday 18:00
    desk.move("ticket", t["id"], "start", a, sh("2026-11-23 09:05"))
    desk.auto.sweep(sh("2026-11-23 18:01"))
    desk.move("ticket", t["id"], "wait_customer", a, sh("2026-11-24 09:30"), comment="Logs?")
    with desk.at(sh("2026-11-24 10:00")):
        listed = {r["id"] for r in desk.store.list("ticket", ListRequest(filters=[], sla="breached"),
                                                   desk.admin)["items"]}
    assert listed == {t["id"]}
    assert desk.sla("ticket", t["id"], sh("2026-11-24 10:00"))["resolution"]["status"] == BREACHED
