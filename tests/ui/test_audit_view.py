"""The auditor's page /audit: entries in the reader's words (labels, option labels, full names) in
English and Chinese, record titles linked while the record exists, filters, pages of 50."""
from __future__ import annotations

import re

TIME = re.compile(r"<time datetime=\"[^\"]+\">(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})</time>")


def rows(html: str) -> list[str]:
    """The table's rows as plain text, newest first."""
    body = html[html.find("<tbody>"):html.find("</tbody>")]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip() for r in body.split("<tr")[1:]]


def test_entries_show_labels_option_labels_and_names_in_english_and_chinese(rt, make, admin, admin_actor):
    org = make("org", name="杭州尚祈科技", level="low")
    rt.store.update("org", org["id"], {"level": "high", "owner": 2}, admin_actor)

    html = admin.get("/audit").get_data(as_text=True)
    changed = next(r for r in rows(html) if "Changed" in r)
    assert "Organisation" in changed and "Level: Low → High" in changed
    assert "Owner: Ada Admin → Sam Seller" in changed and "Ada Admin" in changed
    assert "level:" not in changed and "high" not in changed                  # labels, not ids or values
    assert f'<a href="/e/org/{org["id"]}">杭州尚祈科技</a>' in html
    assert any("Signed in" in r and "from 127.0.0.1" in r for r in rows(html))
    assert TIME.search(html)

    html = admin.get("/audit?lang=zh").get_data(as_text=True)
    changed = next(r for r in rows(html) if "已修改" in r)
    assert "机构" in changed and "级别: 低 → 高" in changed and "负责人: Ada Admin → Sam Seller" in changed
    assert any("登录" in r and "来自 127.0.0.1" in r for r in rows(html))
    assert "审计日志" in html and "校验日志链" in html and "导出 CSV" in html


def test_a_deleted_record_keeps_its_title_without_a_link(rt, make, admin, admin_actor):
    org = make("org", name="Gone Ltd")
    rt.store.delete("org", org["id"], admin_actor)
    html = admin.get("/audit?entity=org").get_data(as_text=True)
    assert "Gone Ltd" in html and f'href="/e/org/{org["id"]}"' not in html and "(deleted)" in html
    assert [r.split(" ")[3] for r in rows(html)][:1] == ["Ada"]                # the user's full name
    assert "Deleted" in rows(html)[0]


def test_filters_and_pages_of_fifty(make, admin):
    for i in range(55):
        make("org", name=f"Org {i:02}")
    html = admin.get("/audit?entity=org&action=create").get_data(as_text=True)
    assert len(rows(html)) == 50 and "55 in all" in html and "Page 1 of 2" in html
    assert "Org 54" in rows(html)[0]
    assert 'href="/audit?action=create&amp;entity=org&amp;page=2"' in html
    html = admin.get("/audit?entity=org&action=create&page=2").get_data(as_text=True)
    assert len(rows(html)) == 5 and "Org 00" in rows(html)[-1]
    assert 'href="/audit/export.csv?action=create&amp;entity=org"' in html
    html = admin.get("/audit?entity=org&action=update").get_data(as_text=True)
    assert rows(html) == [] and "No audit entry matches these filters." in html
    r = admin.get("/audit?since=2026-02-30")
    assert r.status_code == 400 and "From: a date YYYY-MM-DD, not 2026-02-30." in r.get_data(as_text=True)
    r = admin.get("/audit?record=12x&lang=zh")
    assert r.status_code == 400 and "记录编号：应为整数" in r.get_data(as_text=True)


def test_someone_who_may_not_read_the_log_gets_403(make, sam):
    make("org", name="Hidden Co")
    r = sam.get("/audit")
    body = r.get_data(as_text=True)
    assert r.status_code == 403 and "Hidden Co" not in body
    assert "Only an administrator or an auditor may read the audit trail." in body
    assert "/audit" not in sam.get("/").get_data(as_text=True)
