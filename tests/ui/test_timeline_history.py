"""The record timeline shows what happened by itself and who changed what (E1/C8 assignment, I2
e-mails, H6 field history from the audit trail), in English and Chinese, without hidden fields."""
from __future__ import annotations

from tests.ui.test_automation_ui import actor, app, customer, login, rt, text, uid  # noqa: F401 - fixtures


def test_timeline_shows_the_assignment_rule_and_field_changes(app, rt):
    cust = customer(rt)
    t = rt.store.create("ticket", {"subject": "Timeline pump", "customer": cust["id"], "priority": "p3"},
                        actor(rt, "admin"))
    assert t["assignee"] == uid(rt, "agent")                      # round robin to the only agent
    rt.store.update("ticket", t["id"], {"priority": "p1", "description": "漏水"}, actor(rt, "admin"))
    page = text(login(app, "admin").get(f"/e/ticket/{t['id']}"))
    assert "Assigned" in page
    assert "Changed" in page and "Priority: P3 normal → P1 critical" in page and "∅ → 漏水" in page
    zh = text(login(app, "admin").get(f"/e/ticket/{t['id']}?lang=zh"))
    assert "已分派" in zh and "已修改" in zh and "优先级: P3 普通 → P1 紧急" in zh and "p3 →" not in zh


def test_field_history_leaves_out_what_the_reader_may_not_see(app, rt):
    cust = customer(rt)
    k = rt.store.create("contract", {"name": "History deal", "customer": cust["id"], "amount": 777}, actor(rt, "admin"))
    rt.store.update("contract", k["id"], {"amount": 888, "notes": "renegotiated"}, actor(rt, "admin"))
    admin = text(login(app, "admin").get(f"/e/contract/{k['id']}"))
    assert "777" in admin and "888" in admin
    agent = text(login(app, "agent").get(f"/e/contract/{k['id']}"))
    assert "renegotiated" in agent and "777" not in agent and "888" not in agent
