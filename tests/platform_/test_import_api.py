"""`POST /api/v1/<entity>/import`, `GET /api/v1/<entity>/export` and `flask crm import`: the
DESIGN.md contracts, bad files refused with a message and nothing imported, permissions."""
from __future__ import annotations

import csv
import io
import json

import pytest

from tests.conftest import FIXTURES


def csv_bytes(rows, encoding="utf-8"):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode(encoding)


def post_file(api, data, name="a.csv", token=None, **form):
    c = api.app.test_client()
    body = {"file": (io.BytesIO(data), name), **form}
    r = c.post("/api/v1/account/import", data=body, content_type="multipart/form-data",
               headers={"Authorization": f"Bearer {token or api.tok}"})
    return r.status_code, r.get_json(silent=True)


def total(api):
    return api("GET", "/account")[1]["total"]


def test_api_import_dry_run_then_run_then_key(api):
    rows = [["名称", "email"], ["API One", "one@x.cn"], ["API Two", "not-mail"]]
    s, out = post_file(api, csv_bytes(rows, "gbk"), dry_run="1")
    assert s == 200 and out["created"] == 1 and out["updated"] == 0
    assert out["errors"] == [{"line": 3, "field": "email", "message": out["errors"][0]["message"]}]
    assert total(api) == 0
    s, out = post_file(api, csv_bytes(rows, "gbk"))
    assert s == 200 and out["created"] == 1 and total(api) == 1
    s, out = post_file(api, csv_bytes([["name", "email"], ["API One", "new@x.cn"]]), key="name")
    assert (out["created"], out["updated"]) == (0, 1)
    items = api("GET", "/account?name=API%20One")[1]["items"]
    assert [i["email"] for i in items] == ["new@x.cn"]


@pytest.mark.parametrize("data,name,message", [
    (b"%PDF-1.7 not a sheet", "report.pdf", "not a CSV or XLSX"),
    (b"", "empty.csv", "empty"),
    (b"PK\x03\x04garbage", "sheet.xlsx", "cannot be read"),
    (b"alpha,beta\r\n1,2\r\n", "nohead.csv", "header"),
])
def test_bad_files_are_a_400_with_a_message_and_import_nothing(api, data, name, message):
    s, out = post_file(api, data, name)
    assert s == 400 and message in out["error"]["message"]
    assert total(api) == 0


def test_too_large_and_missing_file(api, monkeypatch):
    monkeypatch.setenv("CRM_IMPORT_MAX_MB", "0.001")
    s, out = post_file(api, csv_bytes([["name"]] + [["x" * 100]] * 20))
    assert s in (400, 413) and "limit" in out["error"]["message"]
    c = api.app.test_client()
    r = c.post("/api/v1/account/import", data={}, headers={"Authorization": f"Bearer {api.tok}"})
    assert r.status_code == 400 and "file" in r.get_json()["error"]["message"]
    assert total(api) == 0


def test_import_and_export_need_their_permissions(make_app, tmp_path):
    import shutil
    cfg = tmp_path / "cfg"
    shutil.copytree(FIXTURES / "mini", cfg)
    (cfg / "access.yaml").write_text("permissions:\n  staff:\n    \"*\": [read, create, update]\n", encoding="utf-8")
    app, admin_token, staff_token = make_app(cfg)

    class A:
        pass
    api = A()
    api.app, api.tok = app, admin_token
    s, out = post_file(api, csv_bytes([["name", "email"], ["X", "x@x.cn"]]), token=staff_token)
    assert s == 403
    r = app.test_client().get("/api/v1/account/export?format=csv", headers={"Authorization": f"Bearer {staff_token}"})
    assert r.status_code == 403
    r = app.test_client().get("/api/v1/account", headers={"Authorization": f"Bearer {admin_token}"})
    assert r.get_json()["total"] == 0


def test_export_csv_and_xlsx_with_filters(api):
    for i in range(3):
        api("POST", "/account", {"name": f"Exp {i}", "email": f"e{i}@x.cn", "level": "high" if i else "low"})
    c = api.app.test_client()
    h = {"Authorization": f"Bearer {api.tok}"}
    r = c.get("/api/v1/account/export?format=csv&level=high", headers=h)
    assert r.status_code == 200 and r.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert rows[0][:2] == ["id", "name"] and sorted(r[1] for r in rows[1:]) == ["Exp 1", "Exp 2"]
    r = c.get("/api/v1/account/export?format=xlsx", headers=h)
    from openpyxl import load_workbook
    ws = load_workbook(io.BytesIO(r.data), read_only=True).worksheets[0]
    assert [row[1] for row in ws.iter_rows(values_only=True)] == ["name", "Exp 0", "Exp 1", "Exp 2"]
    assert c.get("/api/v1/account/export?format=pdf", headers=h).status_code == 400
    assert c.get("/api/v1/account/export?nosuch=1", headers=h).status_code == 400


def test_cli_prints_bad_lines_then_the_summary(make_app, tmp_path):
    app, _a, _s = make_app()
    path = tmp_path / "acc.csv"
    path.write_bytes(csv_bytes([["名称", "email"], ["CLI One", "c1@x.cn"], ["CLI Bad", "bad"], ["CLI Two", "c2@x.cn"]],
                               "gbk"))
    runner = app.test_cli_runner()
    r = runner.invoke(args=["crm", "import", "account", str(path), "--dry-run"])
    lines = r.output.strip().splitlines()
    assert lines[-1].startswith("created 2 updated 0 errors 1")
    assert any(line.startswith("line 3: email: ") for line in lines)
    r = runner.invoke(args=["crm", "import", "account", str(path)])
    assert r.output.strip().splitlines()[-1].startswith("created 2 updated 0 errors 1")
    path.write_bytes(csv_bytes([["name", "email"], ["CLI One", "c9@x.cn"]]))
    r = runner.invoke(args=["crm", "import", "account", str(path), "--key", "name"])
    assert r.output.strip().splitlines()[-1].startswith("created 0 updated 1 errors 0")
    bad = tmp_path / "x.pdf"
    bad.write_bytes(b"%PDF")
    r = runner.invoke(args=["crm", "import", "account", str(bad)])
    assert r.exit_code != 0 and "not a CSV or XLSX" in r.output
    with app.app_context():
        from engine.query import ListRequest
        from engine.actor import SYSTEM_ACTOR
        items = app.extensions["crm"].store.list("account", ListRequest(filters=[], sort="id"), SYSTEM_ACTOR)["items"]
    assert [(i["name"], i["email"]) for i in items] == [("CLI One", "c9@x.cn"), ("CLI Two", "c2@x.cn")]
    assert json.dumps(items, default=str)
