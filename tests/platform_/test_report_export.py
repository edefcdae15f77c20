"""Report export (issue 10 part 2): every report downloads as CSV and XLSX, from the API
(`GET /api/v1/reports/<id>?format=csv|xlsx`) and the report page (Export CSV / Export XLSX), with the
user's parameters, filters, row scope and the `export` permission; header labels in the user's
language; money as exact numbers (the sheet holds the decimal text, never a float's digits)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from engine import clock, exporter
from platform_.auth import create_token, create_user, find_user
from tests.conftest import ROOT

BIG = "727944389185.32"          # a float writes it as 727944389185.3199


@pytest.fixture
def desk(make_app):
    app, token, _staff = make_app(ROOT / "config")
    rt = app.extensions["crm"]
    people = {"zoe": (["sales"], "zh"), "ben": (["sales"], "en"), "tim": (["service_agent"], "en")}
    for name, (roles, lang) in people.items():
        create_user(rt.engine, name, f"{name}-Passw0rd!", roles, language=lang,
                    full_name="=HYPERLINK(\"http://x\")" if name == "zoe" else None)
    zoe, ben = find_user(rt.engine, "zoe")["id"], find_user(rt.engine, "ben")["id"]
    s = rt.store
    t = {e: s.table(e) for e in ("customer", "opportunity")}
    month = clock.today().replace(day=10)
    with rt.engine.begin() as c:
        c.execute(t["customer"].insert(), [{"id": 1, "name": "上海甲公司", "owner": zoe, "version": 1}])
        c.execute(t["opportunity"].insert(), [
            {"name": n, "customer": 1, "stage": st, "amount": Decimal(a), "weighted": Decimal(a) / 2, "owner": o,
             "version": 1, "expected_close": month, "created_at": dt.datetime.now()}
            for n, st, a, o in (("P1", "proposal", "100.00", zoe), ("P2", "proposal", BIG, ben),
                                ("W1", "won", "1000.00", zoe), ("N1", "potential", "40.00", ben))])
    tokens = {n: create_token(rt.engine, n, "t") for n in people}
    tokens["admin"] = token
    client = app.test_client()

    def get(who, path):
        return client.get("/api/v1" + path, headers={"Authorization": f"Bearer {tokens[who]}"})
    get.app = app
    return get


def sheet(resp):
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    data = resp.get_data()
    xml = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    ws = load_workbook(io.BytesIO(data)).worksheets[0]
    return [[c.value for c in r] for r in ws.iter_rows()], ws, xml


def csv_rows(resp):
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    body = resp.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_xlsx_has_labels_in_the_users_language_and_exact_money(desk):
    rows, ws, xml = sheet(desk("zoe", "/reports/pipeline_by_stage?format=xlsx"))
    # zoe (sales, own scope) sees her own two opportunities only: P1 and W1
    assert rows[0] == ["阶段", "商机数", "金额"]
    assert rows[1:] == [["方案报价", 1, 100], ["赢单", 1, 1000], ["合计", 2, 1100]]
    assert ws.title == "按阶段统计商机"
    rows, ws, xml = sheet(desk("admin", "/reports/pipeline_by_stage?format=xlsx"))
    assert rows[0] == ["Stage", "Opportunities", "Amount"]
    proposal = next(r for r in ws.iter_rows() if r[0].value == "Proposal / quote")
    assert proposal[1].value == 2 and proposal[2].data_type == "n"
    assert proposal[2].number_format == "#,##0.00"
    total = Decimal(BIG) + Decimal("100.00")
    assert f"<v>{total}</v>" in xml and "<v>40.00</v>" in xml          # the exact decimal text
    assert "%.16g" % float(Decimal(BIG)) != BIG                          # what a float would have written
    assert f"<v>{Decimal(BIG) + Decimal('1140.00')}</v>" in xml          # the totals row


def test_csv_and_xlsx_follow_parameters_and_filters(desk):
    rows = csv_rows(desk("admin", "/reports/pipeline_by_stage?format=csv&stage__in=won,potential"))
    assert rows == [["Stage", "Opportunities", "Amount"], ["Potential", "1", "40.00"], ["Won", "1", "1000.00"],
                    ["Total", "2", "1040.00"]]
    rows, _ws, _xml = sheet(desk("admin", f"/reports/pipeline_by_stage?format=xlsx&owner={_uid(desk, 'ben')}"))
    assert [r[0] for r in rows[1:]] == ["Potential", "Proposal / quote", "Total"]
    since = (clock.today().replace(day=1) + dt.timedelta(days=40)).isoformat()       # after this month's deals
    rows = csv_rows(desk("admin", f"/reports/won_revenue?format=csv&since={since}"))
    assert rows[0] == ["Month", "Won amount", "Deals won", "Average deal"] and rows[1:] == [["Total", "", "0", ""]]
    r = desk("admin", "/reports/pipeline_by_stage?format=csv")
    assert r.is_streamed


def _uid(desk, name):
    return find_user(desk.app.extensions["crm"].engine, name)["id"]


def test_cells_never_run_as_formulas(desk):
    rows, ws, xml = sheet(desk("admin", "/reports/won_by_owner?format=xlsx"))
    names = [r[0] for r in rows[1:]]
    assert "'=HYPERLINK(\"http://x\")" in names and "<f>" not in xml
    rows = csv_rows(desk("admin", "/reports/won_by_owner?format=csv"))
    assert all(not r[0].startswith("=") for r in rows)


def test_export_needs_the_export_permission_and_refusals_are_messages(desk):
    r = desk("tim", "/reports/pipeline_by_stage")               # a service agent may read the figures…
    assert r.status_code == 200 and r.get_json()["rows"]
    for fmt in ("csv", "xlsx"):                                   # …but not take them away as a file
        r = desk("tim", f"/reports/pipeline_by_stage?format={fmt}")
        assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden"
        assert "export" in r.get_json()["error"]["message"]
    r = desk("admin", "/reports/pipeline_by_stage?format=pdf")
    assert r.status_code == 400 and "csv or xlsx" in r.get_json()["error"]["message"]
    r = desk("admin", "/reports/no_such?format=xlsx")
    assert r.status_code == 404 and "no_such" in r.get_json()["error"]["message"]
    r = desk("admin", "/reports/pipeline_by_stage?format=xlsx&colour=red")
    assert r.status_code == 400 and "colour" in r.get_json()["error"]["message"]
    r = desk.app.test_client().get("/api/v1/reports/pipeline_by_stage?format=xlsx")
    assert r.status_code == 401 and r.get_json()["error"]["message"]


def test_the_forecast_exports_with_its_actuals_and_trend(desk):
    data = desk("admin", "/reports/sales_forecast").get_json()
    assert [c["id"] for c in data["columns"]] == ["month", "actual", "weighted", "amount", "trend"]
    this = clock.today().strftime("%Y-%m")
    row = next(r for r in data["rows"] if r[0] == this)
    assert Decimal(str(row[1])) == Decimal("1000.00")                                   # W1 won this month
    assert Decimal(str(row[2])) == (Decimal(BIG) + Decimal("140.00")) / 2                # the open ones, halved
    rows, _ws, _xml = sheet(desk("zoe", "/reports/sales_forecast?format=xlsx"))
    assert rows[0] == ["月份", "实际赢单", "加权在途商机", "在途金额", "赢单趋势"]
    assert [this, 1000, 50, 100, None] in rows


def test_the_report_page_offers_both_files(desk):
    from tests.ui.conftest import Client
    app = desk.app
    c = Client(app, "zoe", "zoe-Passw0rd!")
    page = c.get("/reports/pipeline_by_stage?owner=me").get_data(as_text=True)
    assert "导出 CSV" in page and "导出电子表格" in page
    href = re.search(r'href="([^"]*format=xlsx[^"]*)"', page).group(1).replace("&amp;", "&")
    assert href.startswith("/reports/pipeline_by_stage/export?") and "owner=me" in href
    rows, _ws, _xml = sheet(c.get(href))
    assert rows[0] == ["阶段", "商机数", "金额"] and rows[-1] == ["合计", 2, 1100]
    assert csv_rows(c.get("/reports/pipeline_by_stage/export"))[0] == ["阶段", "商机数", "金额"]
    r = c.get("/reports/pipeline_by_stage/export?format=pdf")
    assert r.status_code == 400 and "csv 或 xlsx" in r.get_data(as_text=True)
    tim = Client(app, "tim", "tim-Passw0rd!")                    # reads the figures, may not export them
    page = tim.get("/reports/pipeline_by_stage").get_data(as_text=True)
    assert "Proposal / quote" in page and "Export CSV" not in page and "Export XLSX" not in page
    assert tim.get("/reports/pipeline_by_stage/export?format=xlsx").status_code == 403


def test_the_forecast_chart_stacks_actuals_and_pipeline_under_a_trend(desk):
    import html
    import json
    from tests.ui.conftest import Client
    c = Client(desk.app, "admin", "admin-Passw0rd")
    body = c.get("/dashboards/sales").get_data(as_text=True)
    charts = [json.loads(html.unescape(m)) for m in re.findall(r"data-chart='([^']+)'", body)]
    chart = next(ch for ch in charts if [s.get("type") for s in ch["series"]] == ["bar", "bar", "line"])
    actual, weighted, trend = chart["series"]
    assert [actual["name"], weighted["name"], trend["name"]] == ["Won (actual)", "Weighted pipeline",
                                                                  "Trend of won revenue"]
    assert actual["stack"] == weighted["stack"] == "forecast" and trend["dashed"] is True
    i = chart["categories"].index(clock.today().strftime("%Y-%m"))
    assert actual["data"][i] == 1000 and weighted["data"][i] == float((Decimal(BIG) + Decimal("140.00")) / 2)
    assert chart["links"][0][i].startswith("/e/opportunity?stage=won&")
    assert chart["links"][1][i].startswith("/e/opportunity?stage__in=potential")
    assert trend["data"] == [None] * len(trend["data"])        # one month of history: no line yet


def test_more_digits_than_a_spreadsheet_keeps_stay_text(tmp_path):
    path = exporter.xlsx_file(["n"], [[Decimal("12345678901234567.89")], [Decimal("0.10")], [7]])
    xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    assert "12345678901234567.89" in xml and "<v>0.10</v>" in xml and "<v>7</v>" in xml
    values = [r[0].value for r in load_workbook(path).worksheets[0].iter_rows()]
    assert values == ["n", "12345678901234567.89", 0.1, 7]
