"""A5/A12 in a real browser: contract approval (C3) across three users, and a ticket's lifecycle (E1/E2)."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import ARGS, shot  # noqa: F401  (ARGS documents the launch flags)

pytestmark = pytest.mark.e2e

PEOPLE = {"e2e_sales": ["sales"], "e2e_boss": ["sales_manager"], "e2e_cfo": ["finance"], "e2e_agent": ["service_agent"]}


@pytest.fixture(scope="module")
def crm(live):
    base, app, _roles, cfg = live
    if not {"contract", "ticket", "customer"} <= set(cfg.entities):
        pytest.skip("the default pack does not load; these scenarios need its contract and ticket workflows")
    from engine.actor import Actor
    from platform_.auth import create_user, find_user
    rt = app.extensions["crm"]
    actors = {}
    for name, roles in PEOPLE.items():
        if not find_user(rt.engine, name):
            create_user(rt.engine, name, f"{name}-Passw0rd", roles, language="en")
        row = find_user(rt.engine, name)
        actors[name] = Actor(id=row["id"], username=name, roles=tuple(roles))
    return base, rt, actors


def login(browser, base, name):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US",
                              extra_http_headers={"Accept-Language": "en"})
    ctx.set_default_timeout(10_000)
    pg = ctx.new_page()
    pg.goto(base + "/login")
    pg.fill("#username", name)
    pg.fill("#password", f"{name}-Passw0rd")
    pg.click("form button[type=submit]")
    pg.wait_for_url(base + "/")
    return pg


def click_transition(pg, label, comment=None):
    form = pg.locator("form.transition", has=pg.locator(f"button:has-text('{label}')")).first
    if comment is not None:
        form.locator("input[name=comment]").fill(comment)
    form.locator("button").click()
    pg.wait_for_load_state("networkidle")


def current_stage(pg) -> str:
    return pg.locator(".stage-bar [aria-current=step]").inner_text().strip()


def test_c3_contract_approval_in_the_browser(browser, crm):
    base, rt, a = crm
    cust = rt.store.create("customer", {"name": "宁波海天 E2E", "email": "e2e@haitian.example.cn"}, a["e2e_sales"])
    k = rt.store.create("contract", {"name": "年度供货合同 E2E", "customer": cust["id"], "amount": 250000,
                                     "start_date": "2026-01-01", "end_date": "2026-12-31"}, a["e2e_sales"])
    url = f"{base}/e/contract/{k['id']}"

    sales = login(browser, base, "e2e_sales")
    sales.goto(url)
    assert current_stage(sales) == "Draft"
    click_transition(sales, "Submit for approval")
    assert current_stage(sales) == "In review"
    click_transition(sales, "Approve")
    assert "Sent for approval" in sales.content()
    # while the request is pending, the transitions say why they are disabled
    assert "waiting for approval" in sales.locator(".transitions").inner_text()

    boss = login(browser, base, "e2e_boss")
    boss.goto(base + "/inbox")
    row = boss.locator("tr", has_text="年度供货合同 E2E")
    # what the approver decides on is in the row: the customer, the amount, who asked
    assert "宁波海天 E2E" in row.inner_text() and "250,000.00" in row.inner_text()
    assert "e2e_sales" in row.inner_text()
    row.locator("button:has-text('Approve')").click()
    boss.wait_for_selector("text=Approved.")
    assert boss.locator("tr", has_text="年度供货合同 E2E").count() == 0

    cfo = login(browser, base, "e2e_cfo")                 # over 100,000: finance approves too
    cfo.goto(base + "/inbox")
    shot(cfo, "inbox")
    cfo.locator("tr", has_text="年度供货合同 E2E").locator("button:has-text('Approve')").click()
    cfo.wait_for_selector("text=Approved.")

    sales.goto(url)
    assert current_stage(sales) == "Approved"
    trail = sales.locator(".approval-trail")
    trail.locator("summary").click()                       # the finished trail is folded
    assert "e2e_boss" in trail.inner_text() and "e2e_cfo" in trail.inner_text()
    click_transition(sales, "Mark signed")
    assert current_stage(sales) == "Signed"
    shot(sales, "contract-approval")
    for pg in (sales, boss, cfo):
        pg.context.close()


def test_e1_ticket_lifecycle_in_the_browser(browser, crm):
    base, rt, a = crm
    agent = a["e2e_agent"]
    cust = rt.store.create("customer", {"name": "杭州尚祈 E2E 工单", "phone": "+86 571 1234 5678"}, agent)
    t = rt.store.create("ticket", {"subject": "水泵异响 E2E", "customer": cust["id"], "priority": "p2",
                                   "assignee": agent.id}, agent)
    url = f"{base}/e/ticket/{t['id']}"
    pg = login(browser, base, "e2e_agent")
    pg.goto(url)
    assert current_stage(pg) == "New"
    click_transition(pg, "Assign")
    click_transition(pg, "Start work")
    assert current_stage(pg) == "In progress"
    click_transition(pg, "Wait on customer", comment="请提供现场照片")
    click_transition(pg, "Customer replied")
    resolve = pg.locator("form.transition", has=pg.locator("button:has-text('Resolve')")).locator("button")
    assert resolve.is_disabled() and "Resolution" in (resolve.get_attribute("title") or "")
    current = rt.store.get("ticket", t["id"], agent)
    rt.store.update("ticket", t["id"], {"resolution": "更换轴承", "version": current["version"]}, agent)
    pg.goto(url)
    click_transition(pg, "Resolve")
    assert current_stage(pg) == "Resolved"
    click_transition(pg, "Close")
    click_transition(pg, "Reopen", comment="客户反馈仍有异响")
    assert rt.store.get("ticket", t["id"], agent)["status"] == "in_progress"
    events = [h["to_state"] for h in rt.workflows.history("ticket", t["id"])]
    assert events == ["assigned", "in_progress", "waiting_customer", "in_progress", "resolved", "closed", "in_progress"]
    pg.context.close()
