"""An import in a real browser: upload a CSV, see the dry run name the bad line, run it as a job and
watch the progress bar reach the end."""
from __future__ import annotations

import uuid

import pytest

from tests.e2e.conftest import shot

pytestmark = pytest.mark.e2e


def test_upload_dry_run_run_and_progress(page, live, tmp_path):
    base, app, roles, _cfg = live
    entity = roles["customer"]
    tag = uuid.uuid4().hex[:6]
    path = tmp_path / "customers.csv"
    path.write_bytes(("\ufeffname,email\r\n"
                      f"浏览器导入甲{tag},a{tag}@example.cn\r\n"
                      f"浏览器导入乙{tag},not-an-email\r\n"
                      f"浏览器导入丙{tag},c{tag}@example.cn\r\n").encode("utf-8"))
    saved = app.config.get("CRM_IMPORT_JOB_BYTES")
    app.config["CRM_IMPORT_JOB_BYTES"] = 0                  # even this small file runs as a job
    try:
        page.goto(f"{base}/e/{entity}")
        page.click(f"a[href='/e/{entity}/import']")
        page.set_input_files("#import-file", str(path))
        page.click("form.import-upload button[type=submit]")
        assert page.locator("#map-0").input_value() == "name"
        page.click("button[name=dry_run][value='1']")
        page.wait_for_selector(".import-error-table")
        page.wait_for_selector("#import-status:not([hx-trigger])")
        row = page.locator(".import-error-table tbody tr").first
        assert row.locator("td").first.inner_text() == "3" and "not-an-email" in row.inner_text()
        assert "Dry run" in page.inner_text("#import-status")
        page.click("#import-status form button[type=submit]")
        page.wait_for_selector("progress")
        page.wait_for_function("document.querySelector('.import-created') && "
                               "document.querySelector('.import-created').textContent.trim() === '2' && "
                               "!document.querySelector('#import-status').hasAttribute('hx-trigger')")
        assert page.locator("progress").get_attribute("value") == "100"
        shot(page, "import")
    finally:
        app.config["CRM_IMPORT_JOB_BYTES"] = saved if saved is not None else 1024 * 1024
    page.goto(f"{base}/e/{entity}?q=浏览器导入")
    text = page.inner_text("#results")
    assert f"浏览器导入甲{tag}" in text and f"浏览器导入丙{tag}" in text and f"浏览器导入乙{tag}" not in text
