"""The admin studio (/admin): designers write drafts, the plan shows them, Apply makes them real.

Every test runs on a copy of the UI test pack, so the repo's config folders never change."""
from __future__ import annotations

import html as html_lib
import re
import shutil

import pytest

from platform_ import configstore
from platform_.auth import create_user

from .conftest import CONFIG


@pytest.fixture
def app(tmp_path, monkeypatch):
    folder = tmp_path / "config"
    shutil.copytree(CONFIG, folder)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/studio.db")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(folder))
    monkeypatch.setenv("ATTACHMENTS_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("SECRET_KEY", "studio-test-secret")
    from app import create_app
    app = create_app({"TESTING": True})
    rt = app.extensions["crm"]
    rt.ensure_schema()
    create_user(rt.engine, "admin", "admin-Passw0rd", roles=("admin",), full_name="Ada Admin")
    create_user(rt.engine, "sam", "sam-Passw0rd!", roles=("sales",), full_name="Sam Seller")
    app.folder = folder
    yield app
    rt.engine.dispose()


def text(r) -> str:
    return r.get_data(as_text=True)


def plain(html: str) -> str:
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def add_wechat(admin, fid="wechat_id"):
    return admin.post("/admin/entities/org/fields", {"id": fid, "type": "string", "label_en": "WeChat ID",
                                                     "label_zh": "微信号", "searchable": "1"})


def test_only_admins_reach_the_studio(app, sam):
    anon = app.test_client().get("/admin")
    assert anon.status_code == 302 and "/login" in anon.headers["Location"]
    r = sam.get("/admin")
    assert r.status_code == 403
    assert "Only an administrator may use the studio." in text(r)
    assert sam.post("/admin/entities/org/fields", {"id": "x", "type": "string"}).status_code == 403
    assert sam.post("/admin/changes/apply", {"message": "m"}).status_code == 403


def test_home_lists_entities_workflows_and_the_user_menu_links_it(admin):
    page = text(admin.get("/admin"))
    assert 'href="/admin/entities/org"' in page and 'href="/admin/forms/deal"' in page
    assert 'href="/admin/workflows/deal_flow"' in page
    assert 'href="/admin"' in text(admin.get("/"))          # "Studio" in the admin part of the user menu


def test_add_field_draft_plan_apply_and_the_api_accepts_it(app, admin, rt):
    before = (app.folder / "entities" / "org.yaml").read_text(encoding="utf-8")
    r = add_wechat(admin)
    assert r.status_code == 302
    page = text(admin.get("/admin/entities/org"))
    assert "wechat_id" in page and "微信号" in page and "draft" in page
    assert (app.folder / "entities" / "org.yaml").read_text(encoding="utf-8") == before   # only a draft
    changes = plain(text(admin.get("/admin/changes")))
    assert "entities/org.yaml" in changes
    assert "add_column" in changes and "e_org.wechat_id" in changes
    r = admin.post("/admin/changes/apply", {"message": "WeChat ID for organisations",
                                            "base_version": str(configstore.sync_history(rt.engine, rt.config_dir))})
    assert r.status_code == 302, text(r)[:2000]
    history = plain(text(admin.get("/admin/versions")))
    assert "WeChat ID for organisations" in history and "admin" in history
    assert "wechat_id" in (app.folder / "entities" / "org.yaml").read_text(encoding="utf-8")
    assert "No drafts" in text(admin.get("/admin/changes"))
    assert "WeChat ID" in text(admin.get("/e/org/new"))
    from platform_.auth import create_token
    token = create_token(rt.engine, "admin", "t")
    api = app.test_client()
    made = api.post("/api/v1/org", json={"name": "Tencent", "wechat_id": "wx-42"},
                    headers={"Authorization": f"Bearer {token}"})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["wechat_id"] == "wx-42"


def test_a_bad_field_id_is_refused_in_the_form_and_nothing_is_drafted(app, admin):
    r = add_wechat(admin, fid="WeChat ID")
    assert r.status_code == 422
    page = text(r)
    assert "is not valid: use lowercase letters" in page
    assert 'value="WeChat ID"' in page                      # what the admin typed stays in the form
    assert "No drafts" in text(admin.get("/admin/changes"))
    r = admin.post("/admin/entities/org/fields", {"id": "buddy", "type": "link", "to": "nothing"})
    assert r.status_code == 422
    assert "links to &#39;nothing&#39;, which is not an entity" in text(r)
    assert "No drafts" in text(admin.get("/admin/changes"))


def test_removing_a_field_is_shown_as_destructive_and_needs_confirmation(app, admin, rt):
    assert admin.post("/admin/entities/org/fields/phone/remove").status_code == 302
    page = text(admin.get("/admin/changes"))
    assert 'class="destructive"' in page and "remove_field" in page and "I have read the destructive steps" in page
    r = admin.post("/admin/changes/apply", {"message": "drop phone"})
    assert r.status_code == 422
    assert "phone" in (app.folder / "entities" / "org.yaml").read_text(encoding="utf-8")
    r = admin.post("/admin/changes/apply", {"message": "drop phone", "allow_destructive": "1"})
    assert r.status_code == 302
    assert "phone:" not in (app.folder / "entities" / "org.yaml").read_text(encoding="utf-8")


def test_form_designer_saves_section_order_and_checks_rules(app, admin):
    page = text(admin.get("/admin/forms/deal"))
    assert page.index("Basics") < page.index("Lines")
    assert admin.post("/admin/forms/deal", {"op": "sec_down", "section": "0"}).status_code == 302
    page = text(admin.get("/admin/forms/deal"))
    assert page.index("明细") > 0 and page.index(">Lines<") < page.index(">Basics<")
    r = admin.post("/admin/check/rule", {"entity": "deal", "which": "visible_if", "visible_if": "probabilty > 3"},
                   hx=True)
    assert "Unknown names: probabilty" in text(r) and "probability" in text(r)
    r = admin.post("/admin/check/rule", {"entity": "deal", "which": "visible_if", "visible_if": "probability >"},
                   hx=True)
    assert "syntax error" in text(r)
    r = admin.post("/admin/check/rule", {"entity": "deal", "which": "visible_if", "visible_if": "probability > 3"},
                   hx=True)
    assert "The rule reads well." in text(r)
    r = admin.post("/admin/forms/deal", {"op": "fld_rules", "field": "amount", "visible_if": "probability > 3"})
    assert r.status_code == 302
    admin.post("/admin/changes/apply", {"message": "form order"})
    saved = (app.folder / "forms" / "deal.yaml").read_text(encoding="utf-8")
    assert saved.index("Lines") < saved.index("Basics")
    assert "visible_if: probability > 3" in saved


def test_workflow_svg_contains_the_states_and_a_new_state(admin):
    page = text(admin.get("/admin/workflows/deal_flow"))
    assert "<svg" in page
    for state in ("open", "won", "lost"):
        assert f'data-state="{state}"' in page
    r = admin.post("/admin/workflows/deal_flow", {"op": "st_add", "id": "review", "label_en": "In review",
                                                  "label_zh": "审核中"})
    assert r.status_code == 422                              # nothing reaches it: refused, with the reason
    assert "cannot be reached from the initial state" in text(r)
    r = admin.post("/admin/workflows/deal_flow", {"op": "st_add", "id": "review", "label_en": "In review",
                                                  "label_zh": "审核中", "reached_from": "open",
                                                  "transition": "send_review", "transition_en": "Send to review"})
    assert r.status_code == 302, text(r)[:1500]
    r = admin.post("/admin/workflows/deal_flow", {"op": "tr_add", "id": "approve", "from": "review",
                                                  "to": "won", "label_en": "Approve", "roles": "admin",
                                                  "when": "probability > 50"})
    assert r.status_code == 302, text(r)[:1500]
    svg = text(admin.get("/admin/workflows/deal_flow/diagram.svg"))
    assert 'data-state="review"' in svg and 'data-transition="send_review"' in svg and "In review" in svg


def test_yaml_editor_shows_problems_with_line_numbers(admin, app):
    page = text(admin.get("/admin/files/entities/org.yaml"))
    assert 'hx-trigger="keyup changed delay:600ms"' in page and "entity: org" in page
    src = (app.folder / "entities" / "org.yaml").read_text(encoding="utf-8")
    bad = src.replace("  staff:", "  wechat: {type: strin}\n  staff:")
    r = admin.post("/admin/check/file", {"path": "entities/org.yaml", "text": bad}, hx=True)
    body = plain(text(r))
    assert "line 21" in body and "'strin' is not one of" in body
    r = admin.post("/admin/check/file", {"path": "entities/org.yaml", "text": src}, hx=True)
    assert "No problems." in text(r)
    assert admin.post("/admin/check/file", {"path": "../etc/passwd", "text": "x"}, hx=True).status_code == 400


def test_history_compare_and_restore(app, admin, rt):
    add_wechat(admin)
    admin.post("/admin/changes/apply", {"message": "add wechat"})
    items = configstore.listing(rt.engine, rt.config_dir)
    new, old = items[0]["version"], items[1]["version"]
    diff = text(admin.get(f"/admin/versions/compare?a={old}&b={new}"))
    assert "entities/org.yaml" in diff and 'class="insert"' in diff and "wechat_id" in diff
    plan = plain(text(admin.get(f"/admin/versions/{old}/restore")))
    assert "remove_field" in plan and "e_org.wechat_id" in plan
    r = admin.post(f"/admin/versions/{old}/restore", {"allow_destructive": "1"})
    assert r.status_code == 302, text(r)[:1500]
    assert "wechat_id" not in (app.folder / "entities" / "org.yaml").read_text(encoding="utf-8")
    assert f"Version {old} restored" in text(admin.get("/admin/versions"))


def test_new_entity_is_drafted_and_applied(app, admin):
    r = admin.post("/admin/entities/new", {"id": "visit_report", "label_en": "Visit report", "label_zh": "拜访报告",
                                           "module": "customers", "title_field": "subject", "title_en": "Subject",
                                           "title_zh": "主题"})
    assert r.status_code == 302, text(r)[:1500]
    assert "create_table" in text(admin.get("/admin/changes"))
    assert admin.post("/admin/changes/apply", {"message": "visit reports"}).status_code == 302
    assert (app.folder / "entities" / "visit_report.yaml").exists()
    page = text(admin.get("/admin/entities/visit_report"))
    assert "Visit report" in page and "主题" in page
    assert "Subject" in text(admin.get("/e/visit_report/new"))         # the running app serves it at once
