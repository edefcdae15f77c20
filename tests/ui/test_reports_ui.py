"""Report and dashboard pages of the default pack (config/reports, config/dashboards): labels in
English and Chinese (never ids), totals, drill-down links to the filtered list, CSV export, the
chart data the browser draws, roles and row scopes — on fixed data with hand-computed figures."""
from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import re
from decimal import Decimal

import pytest

from engine import clock
from platform_.auth import create_token, create_user, find_user
from tests.conftest import ROOT
from tests.ui.conftest import Client

PEOPLE = {"admin": ("admin",), "sam": ("sales",), "sue": ("sales",), "tim": ("service_agent",)}
NAMES = {"admin": "管理员", "sam": "王小明", "sue": "李小红", "tim": "张客服"}


@pytest.fixture
def crm(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/reports.db")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(ROOT / "config"))
    monkeypatch.setenv("ATTACHMENTS_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("SECRET_KEY", "reports-test")
    from app import create_app
    app = create_app({"TESTING": True})
    rt = app.extensions["crm"]
    assert rt.store is not None, rt.problems
    rt.ensure_schema()
    for name, roles in PEOPLE.items():
        create_user(rt.engine, name, f"{name}-Passw0rd!", roles=roles, full_name=NAMES[name],
                    language="en")
    seed(rt)
    yield app
    rt.engine.dispose()


def uid(rt, name):
    return find_user(rt.engine, name)["id"]


def seed(rt):
    """Two regions, three customers, five opportunities (amounts set directly: fixed figures)."""
    s = rt.store
    t = {e: s.table(e) for e in ("region", "customer", "opportunity", "sales_target")}
    sam, sue = uid(rt, "sam"), uid(rt, "sue")
    this_month = clock.today().replace(day=10)
    with rt.engine.begin() as c:
        c.execute(t["region"].insert(), [{"id": 1, "name": "华东", "version": 1}, {"id": 2, "name": "华南", "version": 1}])
        c.execute(t["customer"].insert(), [
            {"id": 1, "name": "上海甲公司", "region": 1, "owner": sam, "version": 1},
            {"id": 2, "name": "广州乙公司", "region": 2, "owner": sue, "version": 1},
            {"id": 3, "name": "无区域丙公司", "region": None, "owner": sam, "version": 1}])
        rows = [("O1", 1, "proposal", "100.00", sam), ("O2", 2, "proposal", "250.00", sue),
                ("O3", 1, "won", "1000.00", sam), ("O4", 2, "won", "500.00", sue), ("O5", 3, "potential", "40.00", sam)]
        c.execute(t["opportunity"].insert(), [
            {"name": n, "customer": cu, "stage": st, "amount": Decimal(a), "owner": o, "version": 1,
             "expected_close": this_month, "created_at": dt.datetime.now()} for n, cu, st, a, o in rows])
        first = this_month.replace(day=1)
        c.execute(t["sales_target"].insert(), [
            {"name": "月度目标", "owner": o, "month": first, "amount": Decimal(a), "version": 1}
            for o, a in ((sam, "2000"), (sue, "400"), (uid(rt, "admin"), "300"))]
            + [{"name": "上月目标", "owner": sam, "month": (first - dt.timedelta(days=1)).replace(day=1),
                "amount": Decimal("99999"), "version": 1}])


def login(app, name, lang=None):
    c = Client(app, name, f"{name}-Passw0rd!")
    if lang:
        c.get(f"/reports?lang={lang}")
    return c


def text(resp) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", resp.get_data(as_text=True)))


def test_report_page_in_english_with_labels_totals_and_drill_down(crm):
    admin = login(crm, "admin")
    r = admin.get("/reports/pipeline_by_stage")
    assert r.status_code == 200
    page, body = text(r), r.get_data(as_text=True)
    assert "Pipeline by stage" in page
    assert "Proposal / quote" in page and "Won" in page and "Potential" in page   # state labels, not ids
    assert re.search(r"Proposal / quote\s+2\s+350\.00", page)                       # 100 + 250
    assert re.search(r"Total\s+5\s+1,890\.00", page)                                  # the totals row
    assert 'href="/e/opportunity?stage=proposal"' in body                           # drill-down link
    listing = text(admin.get("/e/opportunity?stage=proposal"))
    assert "O1" in listing and "O2" in listing and "O3" not in listing
    chart = json.loads(html.unescape(re.search(r"data-chart='([^']+)'", body).group(1)))
    assert chart["type"] == "bar" and "Proposal / quote" in chart["categories"]
    assert chart["links"][0][chart["categories"].index("Proposal / quote")] == "/e/opportunity?stage=proposal"


def test_report_page_in_chinese_shows_no_ids(crm):
    admin = login(crm, "admin", "zh")
    page = text(admin.get("/reports/pipeline_by_stage"))
    assert "按阶段统计商机" in page and "方案报价" in page and "赢单" in page and "合计" in page
    assert "导出 CSV" in page
    for raw in ("proposal", "potential", "pipeline_by_stage"):
        assert raw not in page
    index = text(admin.get("/reports"))
    assert "按阶段统计商机" in index and "销售看板" in index and "报表" in index


def test_linked_group_by_shows_region_names(crm):
    admin = login(crm, "admin")
    page = text(admin.get("/reports/won_by_region"))
    assert "华东" in page and "华南" in page
    assert re.search(r"华东\s+1,000\.00\s+1", page)


def test_csv_export_has_labels_and_totals(crm):
    admin = login(crm, "admin", "zh")
    r = admin.get("/reports/pipeline_by_stage/export")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["阶段", "商机数", "金额"]
    assert ["方案报价", "2", "350.00"] in rows and rows[-1] == ["合计", "5", "1890.00"]


def test_row_scope_holds_in_reports(crm):
    sam = login(crm, "sam")                       # no team: sam sees his own opportunities only
    page = text(sam.get("/reports/pipeline_by_stage"))
    assert re.search(r"Proposal / quote\s+1\s+100\.00", page)
    assert re.search(r"Total\s+3\s+1,140\.00", page)   # O1 + O3 + O5


def test_sales_dashboard_kpis_and_charts(crm):
    admin = login(crm, "admin")
    r = admin.get("/dashboards/sales")
    assert r.status_code == 200
    page, body = text(r), r.get_data(as_text=True)
    assert "Won this month" in page and "1,500.00" in page            # O3 + O4, closing this month
    assert "Target 1,000,000.00" in page and "0% reached" in page
    assert body.count('class="chart"') >= 3
    assert "vendor/echarts/echarts.min.js" in body and "<script>" not in body
    zh = text(login(crm, "admin", "zh").get("/dashboards/sales"))
    assert "本月赢单金额" in zh and "在途商机漏斗" in zh and "方案报价" in zh


def test_dashboards_follow_roles(crm):
    sam = login(crm, "sam")
    assert sam.get("/dashboards/sales").status_code == 200
    r = sam.get("/dashboards/service")
    assert r.status_code == 403 and "not for your roles" in text(r)
    index = sam.get("/reports").get_data(as_text=True)
    assert 'href="/dashboards/sales"' in index and 'href="/dashboards/service"' not in index
    # a bad parameter is a 400 with a message, not a 500
    r = sam.get("/reports/won_revenue?since=not-a-date")
    assert r.status_code == 400 and "expected_close" in text(r)
    assert sam.get("/reports/no_such_report").status_code == 404


def test_anonymous_is_sent_to_login(crm):
    r = crm.test_client().get("/reports/pipeline_by_stage")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_api_report(crm):
    rt = crm.extensions["crm"]
    token = create_token(rt.engine, "admin", "t")
    c = crm.test_client()
    h = {"Authorization": f"Bearer {token}"}
    r = c.get("/api/v1/reports/pipeline_by_stage", headers=h)
    assert r.status_code == 200
    data = r.get_json()
    assert [col["id"] for col in data["columns"]] == ["stage", "count", "amount"]
    rows = {row[0]: row for row in data["rows"]}
    assert rows["proposal"][1] == 2 and Decimal(str(rows["proposal"][2])) == Decimal("350.00")
    assert data["labels"]["stage"]["proposal"] == "Proposal / quote"
    assert "pipeline_by_stage" in [x["id"] for x in c.get("/api/v1/reports", headers=h).get_json()["items"]]
    r = c.get("/api/v1/reports/pipeline_by_stage?stage__in=won", headers=h)
    assert [row[0] for row in r.get_json()["rows"]] == ["won"]
    r = c.get("/api/v1/reports/pipeline_by_stage?colour=red", headers=h)
    assert r.status_code == 400 and "colour" in r.get_json()["error"]["message"]
    assert c.get("/api/v1/reports/nope", headers=h).status_code == 404
    r = c.get("/api/v1/reports/pipeline_by_stage?format=csv", headers=h)
    assert r.status_code == 200 and "Proposal / quote,2,350.00" in r.get_data(as_text=True)
    boards = c.get("/api/v1/dashboards", headers=h).get_json()["items"]
    assert {"sales", "service", "marketing"} <= {b["id"] for b in boards}


def test_every_report_and_dashboard_page_is_chinese(crm):
    from tests.ui.test_zh_everywhere import ids_of, problems
    cfg = crm.extensions["crm"].config
    raw = ids_of(cfg) | set(cfg.reports) | set(cfg.dashboards)
    admin = login(crm, "admin", "zh")
    found = {}
    for path in ["/reports", *(f"/reports/{r}" for r in cfg.reports), *(f"/dashboards/{d}" for d in cfg.dashboards)]:
        r = admin.get(path)
        assert r.status_code == 200, (path, r.status_code)
        bad = problems(r.get_data(as_text=True), raw)
        if bad:
            found[path] = bad
    assert not found, found


def test_who_is_behind_compares_won_revenue_with_targets(crm):
    page = text(login(crm, "admin").get("/dashboards/sales"))
    widget = page[page.index("Who is behind this month"):]
    # admin: target 300, nothing won (0.0%); sam: 1,000 of 2,000 (50.0%); sue: 500 of 400 (125.0%)
    assert re.search(r"管理员\s+0\s+0\s+300\.00\s+0\.0%", widget)
    assert re.search(r"王小明\s+1,000\.00\s+1\s+1,000\.00\s+2,000\.00\s+50\.0%", widget)
    assert re.search(r"李小红\s+500\.00\s+1\s+500\.00\s+400\.00\s+125\.0%", widget)
    assert widget.index("管理员") < widget.index("王小明") < widget.index("李小红")   # who is behind first
    assert re.search(r"Total\s+1,500\.00\s+2\s+1,000\.00\s+2,700\.00\s+55\.6%", widget)
