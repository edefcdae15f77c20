"""Dates in forms read YYYY-MM-DD whatever the browser's locale (seed 003): typed, or picked from the
browser's calendar through the button beside the field; a date typed the US way is refused with a
message and nothing is saved."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def date_field(live):
    """(entity, a date field on its form, the entity's title field) of the pack the browser tests run on."""
    _base, _app, _roles, cfg = live
    from tests.e2e.test_browser import form_fields, title_field
    for e in cfg.entities.values():
        if e.table_fields or e.state_field is not None:
            continue
        fields = form_fields(cfg, e)
        tf = title_field(e)
        date = next((f for f in fields if f.value_type == "date" and not f.computed), None)
        others_required = [f for f in fields if f.required and f is not tf and f.value_type not in ("select", "user")
                           and f.default is None]
        if date is not None and tf is not None and tf.value_type == "string" and not others_required:
            return e, date, tf
    pytest.skip("no simple entity with a date field in this pack")


def test_a_date_is_typed_or_picked_as_yyyy_mm_dd_in_an_en_us_browser(page, live):
    e, date, tf = date_field(live)
    rt = live[1].extensions["crm"]
    page.goto(page.base + f"/e/{e.id}/new")
    box = page.locator(f'input[name="{date.id}"]')
    assert box.get_attribute("type") == "text"
    expect(box).to_have_attribute("placeholder", "YYYY-MM-DD")
    page.locator(f"#{tf.id}").fill("日期 E2E")

    box.fill("12/24/2026")                       # the US order is not taken for a date
    page.locator("#record-form .form-actions button[type=submit]").click()
    expect(page.locator(f"#err-{date.id}")).not_to_have_text("")
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(box).to_have_value("12/24/2026")      # what was typed is kept to fix
    from engine.query import ListRequest
    from platform_.auth import find_user, get_actor
    admin = get_actor(rt.engine, find_user(rt.engine, "admin")["id"])
    assert rt.store.list(e.id, ListRequest(filters=[], q="日期 E2E"), admin)["items"] == []

    # the calendar button hands the day the browser's picker returns back as YYYY-MM-DD
    page.locator(f'input[name="{date.id}"] ~ [data-date-pick]').click()
    native = page.locator(f'input[name="{date.id}"] ~ input.date-native')
    expect(native).to_have_attribute("type", "date")
    native.evaluate("n => { n.value = '2026-12-25'; n.dispatchEvent(new Event('change', {bubbles: true})); }")
    expect(box).to_have_value("2026-12-25")
    page.locator("#record-form .form-actions button[type=submit]").click()
    page.wait_for_url(re.compile(rf".*/e/{e.id}/\d+$"))
    rid = int(page.url.rsplit("/", 1)[1])
    assert str(rt.store.get(e.id, rid, admin)[date.id]) == "2026-12-25"
    expect(page.locator("main")).to_contain_text("2026-12-25")
