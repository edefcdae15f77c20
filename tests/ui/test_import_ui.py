"""The import page: upload, guessed mapping, dry run with errors by line, run, progress of a job,
the error report; the list page links to it and exports XLSX."""
from __future__ import annotations

import csv
import io
import re
import time

from engine.query import ListRequest


def csv_file(rows, encoding="utf-8"):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return io.BytesIO(buf.getvalue().encode(encoding))


ROWS = [["名称", "E-mail", "Colour"], ["页面导入甲", "p1@x.cn", "red"], ["页面导入乙", "broken", "blue"],
        ["页面导入丙", "p3@x.cn", "green"]]


def orgs(rt, admin_actor):
    return [r["name"] for r in rt.store.list("org", ListRequest(filters=[], sort="id"), admin_actor)["items"]]


def upload(admin, rows=ROWS, name="orgs.csv", encoding="gbk"):
    r = admin.post("/e/org/import", {"file": (csv_file(rows, encoding), name)}, content_type="multipart/form-data")
    return r, r.get_data(as_text=True)


def test_list_links_to_import_and_offers_xlsx(admin):
    page = admin.get("/e/org").get_data(as_text=True)
    assert 'href="/e/org/import"' in page and 'value="export_xlsx"' in page
    r = admin.post("/e/org/bulk", {"action": "export_xlsx", "query": ""})
    assert r.status_code == 200 and r.data[:2] == b"PK"


def test_upload_map_dry_run_then_run(admin, rt, admin_actor):
    r, page = upload(admin)
    assert r.status_code == 200 and "Colour" in page                     # reported as not matched
    assert re.search(r'<option value="name" selected>', page) and re.search(r'<option value="email" selected>', page)
    token = re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)
    form = {"token": token, "map_0": "name", "map_1": "email", "map_2": "", "key": ""}
    r = admin.post("/e/org/import/run", dict(form, dry_run="1"))
    assert r.status_code == 302
    page = admin.get(r.headers["Location"]).get_data(as_text=True)
    assert "Dry run" in page and "broken" in page and ">3<" in page      # line 3 named with its value
    assert orgs(rt, admin_actor) == []
    run = re.search(r'action="(/e/org/import/\d+/run)"', page).group(1)
    r = admin.post(run, {"token": token})
    page = admin.get(r.headers["Location"]).get_data(as_text=True)
    assert 'class="import-created">2<' in page and 'class="import-errors">1<' in page
    assert orgs(rt, admin_actor) == ["页面导入甲", "页面导入丙"]
    report = re.search(r'href="(/e/org/import/\d+/errors.csv)"', page).group(1)
    lines = list(csv.reader(io.StringIO(admin.get(report).get_data(as_text=True).lstrip("\ufeff"))))
    assert lines[0] == ["line", "field", "message"] and lines[1][:2] == ["3", "email"]


def test_the_mapping_is_remembered(admin):
    rows = [["Firma", "Mail"], ["Gemerkt GmbH", "g@x.cn"]]
    _r, page = upload(admin, rows, encoding="utf-8")
    token = re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)
    admin.post("/e/org/import/run", {"token": token, "map_0": "name", "map_1": "email", "dry_run": "0"})
    _r, page = upload(admin, rows, encoding="utf-8")
    assert re.search(r'<option value="name" selected>', page) and re.search(r'<option value="email" selected>', page)


def test_large_file_runs_as_a_job_with_progress(app, admin, rt, admin_actor):
    app.config["CRM_IMPORT_JOB_BYTES"] = 0
    rows = [["name", "email"]] + [[f"Job Org {i}", f"j{i}@x.cn"] for i in range(30)]
    _r, page = upload(admin, rows, encoding="utf-8")
    token = re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)
    r = admin.post("/e/org/import/run", {"token": token, "map_0": "name", "map_1": "email", "dry_run": "0"})
    status = r.headers["Location"]
    for _ in range(100):
        part = admin.get(status, hx=True).get_data(as_text=True)
        if "hx-trigger" not in part:
            break
        time.sleep(0.1)
    assert "<progress" in part and 'class="import-created">30<' in part and "hx-trigger" not in part
    assert len(orgs(rt, admin_actor)) == 30


def test_bad_files_are_refused_on_the_page(admin, rt, admin_actor):
    r = admin.post("/e/org/import", {"file": (io.BytesIO(b"%PDF-1.4"), "scan.pdf")}, content_type="multipart/form-data")
    assert r.status_code == 400 and "not a CSV or XLSX" in r.get_data(as_text=True)
    r = admin.post("/e/org/import", {}, content_type="multipart/form-data")
    assert r.status_code == 400
    r = admin.post("/e/org/import/run", {"token": "0" * 32, "dry_run": "0"})
    assert r.status_code == 400
    assert orgs(rt, admin_actor) == []


def test_the_page_speaks_chinese(admin):
    page = admin.get("/e/org/import?lang=zh").get_data(as_text=True)
    assert "导入" in page and "上传" in page
