"""The admin studio in a real browser: add a field, see the plan, apply, use it, roll it back.

Runs its own server on a copy of the UI test pack, so no config folder of the repo changes."""
from __future__ import annotations

import shutil

import pytest

from tests.conftest import ROOT

from .conftest import ADMIN, serving

PACK = ROOT / "tests" / "ui" / "config"


@pytest.fixture(scope="module")
def studio_live(tmp_path_factory, chromium_path):
    tmp = tmp_path_factory.mktemp("studio")
    folder = tmp / "config"
    shutil.copytree(PACK, folder)
    with serving(tmp, folder, "studio") as (base, _app):
        yield base, folder


@pytest.fixture
def spage(browser, studio_live):
    base = studio_live[0]
    ctx = browser.new_context(viewport={"width": 1366, "height": 860}, locale="en-US",
                              extra_http_headers={"Accept-Language": "en"})
    ctx.set_default_timeout(15_000)
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(base + "/login")
    pg.fill("#username", ADMIN[0])
    pg.fill("#password", ADMIN[1])
    pg.click("form button[type=submit]")
    pg.wait_for_url(base + "/")
    pg.base = base
    yield pg
    ctx.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def no_horizontal_scroll(pg):
    pg.wait_for_load_state("load")
    assert pg.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), pg.url


def test_add_a_field_apply_use_it_and_roll_back(spage, studio_live):
    pg, folder = spage, studio_live[1]
    pg.click("header summary:has-text('Ada Admin')")          # the user menu, admin part
    pg.click("header a[href='/admin']")
    pg.wait_for_url(pg.base + "/admin")
    no_horizontal_scroll(pg)
    pg.click("a[href='/admin/entities/org']")
    pg.wait_for_url(pg.base + "/admin/entities/org")          # the page has replaced the admin home
    no_horizontal_scroll(pg)

    form = pg.locator("#add-field form")
    form.locator("input[name=id]").fill("wechat_id")
    form.locator("select[name=type]").select_option("string")
    form.locator("input[name=label_en]").fill("WeChat ID")
    form.locator("input[name=label_zh]").fill("微信号")
    form.locator("button[type=submit]").click()
    pg.wait_for_selector("#field-wechat_id")
    assert "wechat_id" not in (folder / "entities" / "org.yaml").read_text(encoding="utf-8")   # a draft only

    pg.click(".studio-tabs >> text=Changes")
    steps = pg.locator("#plan-steps").inner_text()
    assert "add_column" in steps and "e_org.wechat_id" in steps
    no_horizontal_scroll(pg)
    pg.fill("#apply-form input[name=message]", "WeChat ID on organisations")
    pg.click("#apply-button")
    pg.wait_for_url(pg.base + "/admin/versions")
    assert "Version" in pg.locator("#flashes").inner_text()
    assert "WeChat ID on organisations" in pg.locator("#versions").inner_text()

    pg.goto(pg.base + "/e/org/new")
    assert pg.locator("label", has_text="WeChat ID").count() >= 1

    # roll back: History → Restore the version before, with its plan
    pg.goto(pg.base + "/admin/versions")
    pg.locator("#versions tbody tr").nth(1).locator("text=Restore").click()
    plan = pg.locator("#plan-steps").inner_text()
    assert "remove_field" in plan and "wechat_id" in plan
    assert pg.locator("#plan-steps li.destructive").count() >= 1
    assert pg.locator("#restore-button").is_disabled()          # destructive: confirm first
    pg.check("input[name=allow_destructive]")
    assert pg.locator("#restore-button").is_enabled()
    pg.click("#restore-button")
    pg.wait_for_url(pg.base + "/admin/versions")
    assert "restored" in pg.locator("#flashes").inner_text()
    pg.goto(pg.base + "/e/org/new")
    assert pg.locator("label", has_text="WeChat ID").count() == 0
    assert "wechat_id" not in (folder / "entities" / "org.yaml").read_text(encoding="utf-8")

    for path in ("/admin/forms/deal", "/admin/workflows/deal_flow", "/admin/versions/compare?a=1&b=2",
                 "/admin/versions/1", "/admin/files/entities/deal.yaml"):
        pg.goto(pg.base + path)
        no_horizontal_scroll(pg)
    pg.goto(pg.base + "/admin/workflows/deal_flow")
    assert pg.locator("#diagram svg g[data-state]").count() == 3


def test_yaml_editor_checks_while_typing(spage):
    pg = spage
    pg.goto(pg.base + "/admin/files/entities/org.yaml")
    area = pg.locator("textarea[name=text]")
    text = area.input_value()
    area.fill(text.replace("  phone:", "  bad: {type: strin}\n  phone:"))
    area.press("End")                                   # a keyup: htmx checks after the pause
    pg.wait_for_selector("#yaml-check .studio-problems")
    assert "line " in pg.locator("#yaml-check").inner_text()
    assert "'strin' is not one of" in pg.locator("#yaml-check").inner_text()
