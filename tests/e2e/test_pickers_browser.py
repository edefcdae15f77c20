"""Pickers with context in a real browser (default pack): a contact picker offers only the chosen
customer's contacts, picking a product fills its price into the line, and a picked value is not
marked invalid."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from platform_.auth import find_user, get_actor

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def records(live):
    base, app, roles, cfg = live
    if roles["customer"] != "customer" or "product" not in cfg.entities:
        pytest.skip("needs the default pack (customer, contact, product)")
    rt = app.extensions["crm"]
    a = get_actor(rt.engine, find_user(rt.engine, "admin")["id"])
    s = rt.store
    acme = s.create("customer", {"name": "拾取 Acme 杭州", "email": "acme@example.cn"}, a)
    beta = s.create("customer", {"name": "拾取 Beta 上海", "email": "beta@example.cn"}, a)
    s.create("contact", {"name": "Alice 拾取", "customer": acme["id"]}, a)
    s.create("contact", {"name": "Bob 拾取", "customer": beta["id"]}, a)
    s.create("product", {"name": "拾取水泵", "code": "PK-1", "spec": "DN50", "price": "120.00"}, a)
    s.create("product", {"name": "拾取水泵", "code": "PK-2", "spec": "DN80", "price": "180.00"}, a)
    return {"acme": acme, "beta": beta}


def pick(page, input_id: str, typed: str, title: str):
    box = page.locator(f'[id="{input_id}"]')
    box.click()
    box.fill(typed)
    choice = page.locator(f'[id="{input_id}-options"] [data-pick-title="{title}"]')
    choice.click()
    return box


def test_contact_picker_offers_only_the_customers_contacts(page, records):
    page.goto(page.base + "/e/activity/new")
    pick(page, "customer", "拾取 Acme", "拾取 Acme 杭州")
    expect(page.locator('input[type=hidden][name="customer"]')).to_have_value(str(records["acme"]["id"]))
    contact = page.locator("#contact")
    contact.click()
    contact.fill("拾取")
    options = page.locator("#contact-options [data-pick-id]")
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("Alice 拾取")
    assert "Bob" not in page.locator("#contact-options").inner_text()


def test_a_picked_required_value_is_not_marked_invalid(page, records):
    page.goto(page.base + "/e/opportunity/new")
    page.locator(".form-actions button[type=submit]").click()      # saved empty: "is required"
    box = page.locator("#customer")
    expect(box).to_have_attribute("aria-invalid", "true")
    box.click()
    box.fill("拾取 Acme")
    with page.expect_response(lambda r: "/preview" in r.url):
        page.locator('#customer-options [data-pick-title="拾取 Acme 杭州"]').click()
    expect(box).not_to_have_attribute("aria-invalid", "true")
    with page.expect_response(lambda r: "/preview" in r.url):   # another round trip does not flip it
        page.locator("#name").fill("拾取 deal")
        page.locator("h1").click()
    expect(box).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#err-customer")).to_have_text("")


def test_picking_a_product_fills_its_price_and_keeps_a_typed_one(page, records):
    page.goto(page.base + "/e/opportunity/new")
    rows = page.locator("#rows-lines tr")
    page.locator('button[hx-get$="/row/lines"]').click()
    expect(rows).to_have_count(1)
    row = rows.first
    product = row.locator('input[data-link-text][name$="-product"]')
    product.click()
    product.fill("拾取水泵")
    choices = row.locator("[data-pick-id]")
    expect(choices).to_have_count(2)
    assert {c.get_attribute("data-pick-title") for c in choices.all()} == \
        {"拾取水泵 · PK-1 · DN50", "拾取水泵 · PK-2 · DN80"}
    row.locator('[data-pick-title="拾取水泵 · PK-2 · DN80"]').click()
    price = row.locator('input[name$="-unit_price"]')
    expect(price).to_have_value("180.00")
    expect(row.locator('output[id$="-amount"]')).to_have_text("180.00")
    expect(product).to_have_value("拾取水泵 · PK-2 · DN80")
    expect(product).not_to_have_attribute("aria-invalid", "true")
    # a price the user typed stays when another product is picked
    price.fill("99.00")
    product.fill("PK-1")
    with page.expect_response(lambda r: "/fetch/product" in r.url):
        row.locator('[data-pick-title="拾取水泵 · PK-1 · DN50"]').click()
    expect(product).to_have_value("拾取水泵 · PK-1 · DN50")
    expect(price).to_have_value("99.00")
