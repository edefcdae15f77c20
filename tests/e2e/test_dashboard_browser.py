"""A dashboard in a real browser with the Content-Security-Policy enforced: the vendored ECharts
draws every chart (canvases present, no console error), and clicking a bar — or the drill-down link
of a table row — opens the list of the records behind it."""
from __future__ import annotations

import datetime as dt
import re
import threading
from decimal import Decimal

import pytest

from engine import clock
from platform_ import auth
from tests.conftest import ROOT


@pytest.fixture
def crm_live(tmp_path, monkeypatch, chromium_path):
    from werkzeug.serving import make_server
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/dash.db")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(ROOT / "config"))
    monkeypatch.setenv("ATTACHMENTS_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("SECRET_KEY", "dash")
    from app import create_app
    app = create_app({"TESTING": False, "CRM_BACKGROUND": False})
    rt = app.extensions["crm"]
    rt.ensure_schema()
    admin = auth.create_user(rt.engine, "admin", "admin-Passw0rd", ["admin"], language="en")
    s = rt.store
    t = {e: s.table(e) for e in ("customer", "opportunity")}
    close = clock.today().replace(day=10)
    with rt.engine.begin() as c:
        c.execute(t["customer"].insert(), [{"id": 1, "name": "上海甲公司", "owner": admin, "version": 1}])
        c.execute(t["opportunity"].insert(), [
            {"name": n, "customer": 1, "stage": st, "amount": Decimal(a), "owner": admin, "version": 1,
             "expected_close": close, "created_at": dt.datetime.now()}
            for n, st, a in (("Deal P1", "proposal", "100"), ("Deal P2", "proposal", "250"),
                             ("Deal W1", "won", "1000"), ("Deal N1", "potential", "40"))])
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    rt.engine.dispose()


@pytest.mark.e2e
def test_dashboard_charts_and_drill_down(browser, crm_live):
    from playwright.sync_api import expect
    base = crm_live
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")   # CSP enforced
    ctx.set_default_timeout(10_000)
    pg = ctx.new_page()
    problems = []
    pg.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: problems.append(str(e)))
    pg.goto(base + "/login")
    pg.fill("#username", "admin")
    pg.fill("#password", "admin-Passw0rd")
    pg.click("form button[type=submit]")
    pg.wait_for_url(base + "/")

    # the sales dashboard: KPI tiles and one drawn chart per chart widget
    pg.click("header nav a:has-text('Reports')")
    pg.click("a.report-card:has-text('Sales')")
    expect(pg.locator("h1")).to_have_text("Sales")
    expect(pg.locator(".kpi").first).to_contain_text("Won this month")
    expect(pg.locator(".kpi").first).to_contain_text("1,000.00")
    charts = pg.locator(".chart[data-chart]")
    assert charts.count() >= 3
    for i in range(charts.count()):
        expect(charts.nth(i).locator("canvas, svg").first).to_be_attached()

    # the drill-down link of a table row opens the filtered list
    pg.locator(".widget", has_text="Open pipeline by stage").locator("summary").click()
    pg.locator(".widget", has_text="Open pipeline by stage").locator("tr", has_text="Proposal / quote") \
        .locator("a.drill").click()
    pg.wait_for_url("**/e/opportunity?*stage=proposal*")
    rows = pg.locator("#results tbody tr")
    expect(rows).to_have_count(2)
    expect(pg.locator("#results")).to_contain_text("Deal P1")
    expect(pg.locator("#results")).not_to_contain_text("Deal W1")

    # clicking a bar of a report's chart opens the records behind that bar
    pg.goto(base + "/reports/pipeline_by_stage")
    chart = pg.locator(".chart[data-chart]")
    expect(chart.locator("canvas").first).to_be_attached()
    expect(pg.locator(".chart[data-ready]")).to_have_count(1)       # the bars have grown to their height
    categories = chart.evaluate("el => JSON.parse(el.getAttribute('data-chart')).categories")
    index = categories.index("Proposal / quote")
    x, y = chart.evaluate(
        "(el, i) => echarts.getInstanceByDom(el).convertToPixel({seriesIndex: 0}, [i, 175])", index)
    chart.click(position={"x": x, "y": y})
    pg.wait_for_url(re.compile(r".*/e/opportunity\?stage=proposal$"))
    expect(pg.locator("#results tbody tr")).to_have_count(2)
    expect(pg.locator("#results")).to_contain_text("Deal P2")
    ctx.close()
    assert problems == [], problems
