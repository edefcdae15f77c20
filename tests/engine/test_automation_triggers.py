"""C8 triggers and scheduled rules, on SQLite and PostgreSQL: on change of fields (the default
pack's ticket_priority_change), on entering a state (C6 opportunity_proposal_task), on a schedule
(task_due_reminder), the initial state's `set`/`on_enter` on create (A5), and E5 e-mail actions
(ticket_satisfaction_request) written to the transactional outbox: rendered per recipient
language, and gone with a transaction that fails (tests/fixtures/config/auto_flow).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from engine import clock
from engine.errors import RuleError, ValidationFailed
from tests.engine.test_automation_kit import (FIXTURES, automation_templates, company_zone,  # noqa: F401
                                              copy_config, naive_utc, sh, stack)

MONDAY = sh("2026-11-23 10:00")


@pytest.fixture
def pack(stack, company_zone):
    s = stack()
    s.agent = s.user("agent", ["service_agent"])
    s.desk = s.user("desk", ["staff"])
    with s.at(MONDAY):
        s.customer = s.store.create("customer", {"name": "Acme", "phone": "021-5555"}, s.admin)
    return s


def new_ticket(s, when=MONDAY, **values):
    with s.at(when):
        return s.store.create("ticket", {"subject": "Printer down", "customer": s.customer["id"], **values}, s.desk)


# ---- on change ----------------------------------------------------------------------------------
def test_changing_the_priority_notifies_the_assignee_and_other_fields_do_not(pack):
    t = new_ticket(pack)
    assert t["assignee"] == pack.agent.id
    with pack.at(sh("2026-11-23 10:05")):
        pack.store.update("ticket", t["id"], {"description": "It smokes"}, pack.desk)
        pack.store.update("ticket", t["id"], {"priority": "p3"}, pack.desk)        # the value it had
    assert pack.notes(user_id=pack.agent.id) == []
    with pack.at(sh("2026-11-23 10:10")):
        pack.store.update("ticket", t["id"], {"priority": "p1"}, pack.desk)
    [note] = pack.notes(user_id=pack.agent.id)
    assert note["message"] == f"Ticket {t['code']}: priority is now p1"
    assert (note["entity"], note["record_id"]) == ("ticket", t["id"])
    assert pack.notes(user_id=pack.desk.id) == []


def test_a_priority_change_of_an_unassigned_ticket_notifies_no_one(pack):
    pack.deactivate(pack.agent)
    t = new_ticket(pack)
    assert t["assignee"] is None
    with pack.at(sh("2026-11-23 10:10")):
        after = pack.store.update("ticket", t["id"], {"priority": "p2"}, pack.desk)
    assert after["priority"] == "p2"
    assert pack.notes() == []


# ---- on enter -------------------------------------------------------------------------------------
def test_an_opportunity_reaching_proposal_gets_a_task_for_its_owner(pack):
    rep = pack.user("rep", ["sales"])
    with pack.at(MONDAY):
        opp = pack.store.create("opportunity", {"name": "Pumps for Acme", "customer": pack.customer["id"]}, rep)
    assert (opp["stage"], opp["owner"]) == ("potential", rep.id)
    pack.move("opportunity", opp["id"], "show_intent", rep, sh("2026-11-23 11:00"))
    assert pack.tasks("opportunity", opp["id"]) == []                   # intent: no task
    with pytest.raises(ValidationFailed) as refused:                     # propose needs expected_close
        pack.move("opportunity", opp["id"], "propose", rep, sh("2026-11-23 11:30"))
    assert "expected_close" in refused.value.fields
    assert pack.tasks("opportunity", opp["id"]) == []
    with pack.at(sh("2026-11-23 11:40")):
        pack.store.update("opportunity", opp["id"], {"expected_close": "2026-12-31"}, rep)
    after = pack.move("opportunity", opp["id"], "propose", rep, sh("2026-11-24 07:30"))  # Tuesday 07:30 Shanghai
    assert (after["stage"], after["probability"]) == ("proposal", Decimal("50.00"))
    [task] = pack.tasks("opportunity", opp["id"])
    assert task["title"] == "Prepare the proposal for Pumps for Acme"
    assert (task["assignee"], task["status"]) == (rep.id, "open")
    # three days after today in Shanghai (Tuesday 24th; it is still Monday 23:30 in UTC)
    assert task["due_on"] == dt.date(2026, 11, 27)


# ---- on a schedule ------------------------------------------------------------------------------------
def test_tasks_due_today_in_shanghai_are_reminded_once_after_0830(pack):
    u1, u2 = pack.user("u1", ["staff"]), pack.user("u2", ["staff"])
    with pack.at(sh("2026-11-23 15:00")):
        for title, who, due, status in [("Call Acme", u1, "2026-11-24", "open"),
                                        ("Send quote", u2, "2026-11-24", "in_progress"),
                                        ("Old news", u1, "2026-11-24", "done"),
                                        ("Tomorrow", u2, "2026-11-25", "open"),
                                        ("No date", u2, None, "open")]:
            pack.store.create("task", {"title": title, "assignee": who.id, "due_date": due, "status": status}, who)
    pack.auto.sweep(sh("2026-11-24 08:00"))               # plans today's 08:30 run
    [timer] = [x for x in pack.timers("_schedule", status="running") if x["name"] == "schedule:task_due_reminder"]
    assert timer["due_at"] == naive_utc("2026-11-24 08:30")
    assert pack.auto.sweep(sh("2026-11-24 08:29")).fired == 0
    assert pack.notes() == []

    result = pack.auto.sweep(sh("2026-11-24 08:31"))
    assert result.failed == []
    got = sorted((n["user_id"], n["message"]) for n in pack.notes())
    assert got == sorted([(u1.id, "Task due today: Call Acme"), (u2.id, "Task due today: Send quote")])
    # the next run is planned for tomorrow 08:30 Shanghai
    [nxt] = [x for x in pack.timers("_schedule", status="running") if x["name"] == "schedule:task_due_reminder"]
    assert nxt["due_at"] == naive_utc("2026-11-25 08:30")
    again = pack.auto.sweep(sh("2026-11-24 08:31"))
    assert again.fired == 0 and len(pack.notes()) == 2
    # tomorrow the other task's turn comes
    pack.auto.sweep(sh("2026-11-25 08:31"))
    assert [n["message"] for n in pack.notes()][2:] == ["Task due today: Tomorrow"]


@pytest.fixture
def utc_company():
    """A server whose company time zone (CRM_TIMEZONE) is UTC; restored afterwards."""
    clock.set_timezone("UTC")
    yield
    clock.set_timezone(None)


def test_today_in_a_scheduled_rule_is_the_date_in_the_rules_time_zone(stack, utc_company):
    s = stack(FIXTURES / "auto_timers")
    owner = s.user("olga", ["staff"])
    with s.at(sh("2026-11-23 12:00")):
        s.store.create("account", {"name": "Fresh", "revenue": 1, "since": "2026-11-24"}, owner)
    s.auto.sweep(sh("2026-11-24 06:00"))                   # plans the 07:00 Shanghai run
    ran = s.auto.sweep(sh("2026-11-24 07:00"))
    assert (ran.fired, ran.failed) == (1, [])               # the rule did run at 07:00 Shanghai
    assert [n["message"] for n in s.notes(user_id=owner.id)] == ["Customer since today: Fresh"]


# ---- the initial state on create ----------------------------------------------------------------------
def test_the_initial_states_suggestion_fills_an_empty_field_on_create_and_keeps_a_sent_value(pack):
    rep = pack.user("rep", ["sales"])
    with pack.at(MONDAY):
        plain = pack.store.create("opportunity", {"name": "A", "customer": pack.customer["id"]}, rep)
        sent = pack.store.create("opportunity", {"name": "B", "customer": pack.customer["id"], "probability": 40}, rep)
    # potential: {suggest: {probability: "10"}} — a proposal on create, never over a value the user gave
    assert plain["probability"] == Decimal("10.00")
    assert sent["probability"] == Decimal("40.00")
    assert pack.store.get("opportunity", sent["id"], rep)["probability"] == Decimal("40.00")
    assert sent["version"] == 1


def test_computed_fields_of_a_new_record_see_the_initial_states_set(pack):
    rep = pack.user("rep", ["sales"])
    with pack.at(MONDAY):
        product = pack.store.create("product", {"name": "Pump", "code": "P-1", "price": 100}, pack.admin)
        opp = pack.store.create("opportunity", {"name": "Pumps", "customer": pack.customer["id"],
                                                "lines": [{"product": product["id"], "quantity": 10,
                                                           "unit_price": 100}]}, rep)
    assert (opp["amount"], opp["probability"]) == (Decimal("1000.00"), Decimal("10.00"))
    assert opp["weighted"] == Decimal("100.00")


@pytest.fixture
def offers(stack):
    s = stack(FIXTURES / "auto_flow")
    s.seller = s.user("sam", ["staff"], email="sam@corp.test")
    s.ann = s.user("ann", ["approver"], email="ann@corp.test", language="en")
    s.wang = s.user("wang", ["approver"], email="wang@corp.test", language="zh")
    s.nomail = s.user("nomail", ["approver"])                                  # no address: no e-mail
    s.gone = s.user("gone", ["approver"], email="gone@corp.test", active=False)
    return s


def test_the_initial_states_on_enter_runs_on_create_as_part_of_it(offers):
    s = offers
    with s.at(MONDAY):
        offer = s.store.create("offer", {"name": "Pumps", "amount": 100, "discount": 20}, s.seller)
    assert offer["discount"] == Decimal("5.00") and offer["version"] == 1
    [task] = s.tasks("offer", offer["id"])
    assert (task["title"], task["assignee"]) == ("Complete the offer Pumps", s.seller.id)


# ---- e-mail through the outbox ------------------------------------------------------------------------
def satisfaction_ticket(s, contact_email):
    with s.at(MONDAY):
        contact = s.store.create("contact", {"name": "Li", "customer": s.customer["id"], "email": contact_email},
                                 s.admin)
    t = new_ticket(s, contact=contact["id"])
    s.move("ticket", t["id"], "start", s.agent, sh("2026-11-23 10:05"))
    with s.at(sh("2026-11-23 10:30")):
        s.store.update("ticket", t["id"], {"resolution": "New toner"}, s.agent)
    return t


def test_resolving_a_ticket_mails_its_contact_once(pack):
    t = satisfaction_ticket(pack, "li@acme.test")
    assert pack.outbox() == []
    pack.move("ticket", t["id"], "resolve", pack.agent, sh("2026-11-23 11:00"))
    [row] = pack.outbox()
    assert (row["kind"], row["status"], row["entity"], row["record_id"]) == ("email", "pending", "ticket", t["id"])
    assert row["payload"]["to"] == "li@acme.test"
    assert row["payload"]["subject"] == f"How did we do? Ticket {t['code']}"
    assert row["payload"]["body"] == (f"Your ticket {t['code']} (Printer down) has been resolved. "
                                      f"Please reply with a rating from 1 to 5.")
    assert row["payload"]["lang"] == "en"
    assert row["created_at"] == naive_utc("2026-11-23 11:00")
    # closing afterwards sends nothing more
    pack.move("ticket", t["id"], "close", pack.agent, sh("2026-11-23 12:00"))
    assert len(pack.outbox()) == 1


def test_the_satisfaction_mail_is_written_in_the_language_of_whoever_resolves(pack):
    zh_agent = pack.user("xiaoming", ["service_agent"], language="zh")
    t = satisfaction_ticket(pack, "li@acme.test")
    pack.move("ticket", t["id"], "resolve", zh_agent, sh("2026-11-23 11:00"))
    [row] = pack.outbox()
    assert row["payload"]["subject"] == f"请评价我们的服务：工单 {t['code']}"
    assert row["payload"]["lang"] == "zh"


def test_no_contact_email_no_mail(pack):
    t = satisfaction_ticket(pack, None)
    bare = new_ticket(pack)
    pack.move("ticket", bare["id"], "start", pack.agent, sh("2026-11-23 10:05"))
    with pack.at(sh("2026-11-23 10:30")):
        pack.store.update("ticket", bare["id"], {"resolution": "Done"}, pack.agent)
    pack.move("ticket", t["id"], "resolve", pack.agent, sh("2026-11-23 11:00"))
    pack.move("ticket", bare["id"], "resolve", pack.agent, sh("2026-11-23 11:00"))
    assert pack.outbox() == []
    assert pack.store.get("ticket", t["id"], pack.admin)["status"] == "resolved"


def test_mail_to_a_role_goes_to_each_active_member_with_an_address_in_their_language(offers):
    s = offers
    with s.at(MONDAY):
        offer = s.store.create("offer", {"name": "Pumps", "amount": 1200}, s.seller)
    s.move("offer", offer["id"], "send", s.seller, sh("2026-11-23 10:30"))
    mails = {r["payload"]["to"]: r["payload"] for r in s.outbox("email")}
    assert set(mails) == {"buyer@example.test", "ann@corp.test", "wang@corp.test"}
    assert mails["ann@corp.test"]["subject"] == "Offer Pumps was sent"
    assert mails["ann@corp.test"]["body"] == "Amount: 1200.00"
    assert (mails["wang@corp.test"]["subject"], mails["wang@corp.test"]["lang"]) == ("报价 Pumps 已发送", "zh")
    assert mails["wang@corp.test"]["body"] == "金额：1200.00"
    assert mails["buyer@example.test"]["subject"] == "Your offer Pumps"            # the seller's language
    [hook] = s.outbox("webhook")
    assert hook["payload"]["url"] == "https://hooks.example.test/offer"
    assert hook["payload"]["body"]["event"] == "offer.automation" and hook["payload"]["body"]["id"] == offer["id"]
    assert [n["message"] for n in s.notes(user_id=s.seller.id)] == ["Offer Pumps is going out"]


def test_a_transition_refused_after_its_actions_ran_leaves_no_mail_webhook_or_notification(offers):
    s = offers
    with s.at(MONDAY):
        offer = s.store.create("offer", {"name": "Pumps"}, s.seller)        # no amount: may not be sent
    with pytest.raises(ValidationFailed) as refused:
        s.move("offer", offer["id"], "send", s.seller, sh("2026-11-23 10:30"))
    assert "amount" in refused.value.fields
    assert s.outbox() == [] and s.notes() == []
    after = s.store.get("offer", offer["id"], s.seller)
    assert (after["stage"], after["version"]) == ("draft", offer["version"])
    assert s.history("offer", offer["id"], event="transition") == []


def test_a_failing_trigger_rolls_back_the_resolve_with_its_mail(stack, tmp_path, company_zone):
    cfg = copy_config(tmp_path)
    (cfg / "automations" / "zz_resolved_audit.yaml").write_text(
        "automation: zz_resolved_audit\n"
        "entity: ticket\n"
        "label: {en: \"Tell the assignee, then notify a text (fails at run time)\"}\n"
        "on: enter\n"
        "state: resolved\n"
        "actions:\n"
        "  - notify: assignee\n"
        "    message: {en: \"Resolved {code}\"}\n"
        "  - notify: subject\n", encoding="utf-8")
    s = stack(cfg)
    s.agent = s.user("agent", ["service_agent"])
    s.desk = s.user("desk", ["staff"])
    with s.at(MONDAY):
        s.customer = s.store.create("customer", {"name": "Acme", "phone": "021-5555"}, s.admin)
    t = satisfaction_ticket(s, "li@acme.test")
    with pytest.raises(RuleError) as failed:
        s.move("ticket", t["id"], "resolve", s.agent, sh("2026-11-23 11:00"))
    assert "not a user id" in failed.value.message
    assert s.outbox() == []                                    # the satisfaction mail went with it
    assert s.notes(contains="Resolved") == []
    after = s.store.get("ticket", t["id"], s.admin)
    assert (after["status"], after["resolved_at"]) == ("in_progress", None)
    assert s.sla("ticket", t["id"], sh("2026-11-23 11:00"))["resolution"]["status"] == "running"


# ---- a trigger that corrects the change that fired it ------------------------------------------------
def test_a_change_trigger_may_correct_the_change_that_fired_it_once(offers):
    s = offers
    with s.at(MONDAY):
        offer = s.store.create("offer", {"name": "Pumps", "amount": 100}, s.seller)
        s.store.update("offer", offer["id"], {"discount": 20}, s.seller)           # within the cap
    assert s.notes() == []
    with s.at(sh("2026-11-23 10:10")):
        s.store.update("offer", offer["id"], {"discount": 45}, s.seller)
    stored = s.store.get("offer", offer["id"], s.seller)
    assert stored["discount"] == Decimal("30.00")
    assert [n["message"] for n in s.notes(user_id=s.seller.id)] == ["The discount of Pumps was capped at 30%"]


def test_the_record_returned_by_an_update_includes_what_its_triggers_changed(offers):
    s = offers
    with s.at(MONDAY):
        offer = s.store.create("offer", {"name": "Pumps", "amount": 100}, s.seller)
        returned = s.store.update("offer", offer["id"], {"discount": 45}, s.seller)
        assert (returned["discount"], returned["version"]) == (Decimal("30.00"), 3)
        s.store.update("offer", offer["id"], {"name": "Pumps (2)", "version": returned["version"]}, s.seller)
