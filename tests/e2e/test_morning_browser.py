"""A salesperson's morning in a real browser, in Chinese (issue 9's story, default pack): the home page
says what is due and what is overdue; a customer is found by a fragment of its address; a call is
logged from its page with a confirmation; an opportunity for it gets two product lines whose prices
fill in from the products; the opportunity is dragged one stage on the board."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import shot
from tests.e2e.test_board_browser import card, drag

pytestmark = pytest.mark.e2e

SALES = ("xiaowang", "Morning-Passw0rd")


@pytest.fixture(scope="module")
def morning(live):
    base, app, roles, cfg = live
    if roles["customer"] != "customer" or "product" not in cfg.entities or "task" not in cfg.entities:
        pytest.skip("the morning story drives the default pack (customer, product, task, opportunity)")
    rt = app.extensions["crm"]
    from platform_.auth import create_user, find_user, get_actor
    uid = create_user(rt.engine, SALES[0], SALES[1], roles=("sales",), full_name="王小明", language="zh")
    admin = get_actor(rt.engine, find_user(rt.engine, "admin")["id"])
    s, today = rt.store, dt.date.today()
    cust = s.create("customer", {"name": "晨光贸易 Morning", "address": "杭州市西湖区文三路 90 号",
                                 "email": "morning@example.cn", "owner": uid}, admin)
    s.create("product", {"name": "晨光水泵", "code": "MN-1", "spec": "DN50", "price": "120.00"}, admin)
    s.create("product", {"name": "晨光阀门", "code": "MN-2", "spec": "DN80", "price": "180.00"}, admin)
    s.create("task", {"title": "回电确认需求", "assignee": uid, "due_date": today.isoformat(),
                      "customer": cust["id"]}, admin)
    s.create("task", {"title": "发送报价单", "assignee": uid, "due_date": (today - dt.timedelta(days=2)).isoformat(),
                      "customer": cust["id"]}, admin)
    return rt, admin, uid, cust


@pytest.fixture
def zh_page(browser, live):
    base = live[0]
    ctx = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN",
                              extra_http_headers={"Accept-Language": "zh"}, bypass_csp=True)
    ctx.set_default_timeout(10_000)
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(base + "/login")
    pg.fill("#username", SALES[0])
    pg.fill("#password", SALES[1])
    pg.click("form button[type=submit]")
    pg.wait_for_url(base + "/")
    pg.base = base
    yield pg
    ctx.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def test_a_salespersons_morning(zh_page, morning):
    page, (rt, admin, uid, cust) = zh_page, morning

    # 1. home: my day, the overdue to-do marked as such
    tasks = page.locator("#home-tasks")
    expect(tasks).to_contain_text("回电确认需求")
    overdue = tasks.locator("li.overdue")
    expect(overdue).to_have_count(1)
    expect(overdue).to_contain_text("发送报价单")
    expect(overdue.locator(".overdue-days")).to_contain_text("2")
    shot(page, "morning-home-zh")

    # 2. find the customer by a fragment of its address, from the header search
    search = page.locator(".global-search input[name=q]")
    search.fill("西湖区")
    search.press("Enter")
    page.wait_for_url(re.compile(r".*/search\?q="))
    page.get_by_role("link", name=re.compile("晨光贸易")).first.click()
    page.wait_for_url(re.compile(rf".*/e/customer/{cust['id']}$"))
    expect(page.locator("h1")).to_contain_text("晨光贸易")

    # 3. log a call from the customer's page: the dialog closes, a confirmation shows, the call is listed
    page.locator(".quick-actions a", has_text="电话").first.click()
    dialog = page.locator("#dialog[open] #record-form")
    dialog.wait_for()
    expect(dialog.locator('input[type=hidden][name="customer"]')).to_have_value(str(cust["id"]))
    dialog.locator('[name="subject"]').fill("晨间回访电话")
    dialog.locator(".form-actions button[type=submit]").click()
    expect(page.locator("#flashes .flash-success")).to_contain_text("晨间回访电话")
    expect(page.locator("#dialog")).not_to_have_attribute("open", "")
    expect(page.locator("#related")).to_contain_text("晨间回访电话")
    from engine.query import ListRequest
    calls = rt.store.list("activity", ListRequest(filters=[("customer", "eq", str(cust["id"]))]), admin)["items"]
    assert [(c["subject"], c["kind"]) for c in calls] == [("晨间回访电话", "call")]

    # 4. a new opportunity for this customer with two product lines: the prices fill in
    page.goto(page.base + f"/e/opportunity/new?customer={cust['id']}")
    expect(page.locator('input[type=hidden][name="customer"]')).to_have_value(str(cust["id"]))
    page.locator("#name").fill("晨光 水泵改造")
    rows = page.locator("#rows-lines tr")
    for n, (typed, title, price) in enumerate([("晨光水泵", "晨光水泵 · MN-1 · DN50", "120.00"),
                                               ("晨光阀门", "晨光阀门 · MN-2 · DN80", "180.00")], start=1):
        page.locator('button[hx-get$="/row/lines"]').click()
        expect(rows).to_have_count(n)
        row = rows.nth(n - 1)
        product = row.locator('input[data-link-text][name$="-product"]')
        product.click()
        product.fill(typed)
        with page.expect_response(lambda r: "/fetch/product" in r.url):
            row.locator(f'[data-pick-title="{title}"]').click()
        expect(row.locator('input[name$="-unit_price"]')).to_have_value(price)
    rows.nth(0).locator('input[name$="-quantity"]').fill("2")
    page.locator("h1").click()
    expect(page.locator("#cf-amount")).to_have_text(re.compile(r"420\.00"))
    page.locator("#record-form .form-actions button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/e/opportunity/\d+$"))
    deal_id = int(page.url.rsplit("/", 1)[1])
    deal = rt.store.get("opportunity", deal_id, admin)
    assert (deal["customer"], str(deal["amount"]), deal["stage"]) == (cust["id"], "420.00", "potential")
    assert sorted(str(line["unit_price"]) for line in deal["lines"]) == ["120.00", "180.00"]

    # 5. drag it one stage on the board
    page.goto(page.base + "/e/opportunity/board?owner=me")
    page.wait_for_load_state("networkidle")
    with page.expect_response(lambda r: r.request.method == "GET" and "/board" in r.url):
        drag(page, deal_id, "intent")
    page.wait_for_selector(f"[data-column='intent'] .board-card[data-id='{deal_id}']")
    assert rt.store.get("opportunity", deal_id, admin)["stage"] == "intent"
    expect(page.locator("#board-message")).to_contain_text("意向")
    shot(page, "morning-board-zh")
