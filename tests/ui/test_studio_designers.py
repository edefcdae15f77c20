"""The studio's designers for link filters, number formats and limits, transition rules and approvals,
and permissions: each writes the YAML of docs/config-reference.md as a draft, and a bad value is shown
beside its input with the draft left as it was.

Every test runs on a copy of the UI test pack (with two roles and an access.yaml added)."""
from __future__ import annotations

import shutil

import pytest
import yaml

from platform_ import studio_drafts
from platform_.auth import create_user

from .conftest import CONFIG
from .test_studio import plain, text

ACCESS = """\
permissions:
  sales:
    "*": [read, create, update, export, assign]
    deal: [read, create, update]
scopes:
  sales:
    deal: own
    person: {via: org}
hidden:
  sales:
    org: [revenue]
readonly:
  sales:
    deal: [probability]
audit_readers: [sales_manager]
"""


@pytest.fixture
def app(tmp_path, monkeypatch):
    folder = tmp_path / "config"
    shutil.copytree(CONFIG, folder)
    pack = (folder / "pack.yaml").read_text(encoding="utf-8")
    (folder / "pack.yaml").write_text(pack + "roles:\n  - {id: sales, label: {en: Sales rep, zh: 销售}}\n"
                                      "  - {id: sales_manager, label: {en: Sales manager, zh: 销售经理}}\n",
                                      encoding="utf-8")
    (folder / "access.yaml").write_text(ACCESS, encoding="utf-8")
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


def draft(rt, path):
    """The admin's draft of `path`, parsed (None: no draft)."""
    text_ = studio_drafts.all_for(rt.engine, 1).get(path)
    return None if text_ is None else yaml.safe_load(text_)


def field_form(**extra):
    """The field editor's form as the page sends it (two blank filter and fetch rows)."""
    base = [("label_en", extra.pop("label_en", "X")), ("label_zh", extra.pop("label_zh", "X"))]
    for k, v in extra.items():
        for item in (v if isinstance(v, list) else [v]):
            base.append((k, item))
    return base


# ---- field editor ------------------------------------------------------------------------------
def test_field_editor_offers_only_the_keys_of_the_type(admin):
    link = plain(text(admin.get("/admin/entities/deal/fields/org")))
    assert "Filter: which records may be chosen" in link and "Display: shown beside" in link
    assert "Precision" not in link and "Minimum length" not in link
    page = text(admin.get("/admin/entities/deal/fields/org"))
    assert '<option value="email"' in page and '<option value="field:close_on"' in page   # org's and deal's fields
    money = plain(text(admin.get("/admin/entities/org/fields/revenue")))
    assert "Precision" in money and "Currency" in money and "Minimum" in money and "Filter:" not in money
    string = plain(text(admin.get("/admin/entities/org/fields/name")))
    assert "Minimum length" in string and "Pattern" in string and "Precision" not in string
    assert "Currency" not in string and "Sensitive" in string


def test_link_filter_fetch_display_are_drafted_as_documented(admin, rt):
    form = field_form(label_en="Organisation", label_zh="机构", required="1",
                      filter_key=["active", "level", "name", ""], filter_src=["const", "const", "field:name", ""],
                      filter_value=["true", "high", "", ""],
                      fetch_here=["lost_reason", ""], fetch_there=["website", ""], display=["email", "phone"])
    r = admin.post("/admin/entities/deal/fields/org", form)
    assert r.status_code == 302, text(r)[:2000]
    spec = draft(rt, "entities/deal.yaml")["fields"]["org"]
    assert spec == {"type": "link", "label": {"en": "Organisation", "zh": "机构"}, "required": True, "to": "org",
                    "in_list": True, "filter": {"active": True, "level": {"value": "high"}, "name": "name"},
                    "fetch": {"lost_reason": "website"}, "display": ["email", "phone"]}
    page = text(admin.get("/admin/entities/deal/fields/org"))     # shown again as it was saved
    assert '<option value="field:name" selected>' in page and 'value="high"' in page


def test_number_format_limits_and_sensitive_are_drafted(admin, rt):
    r = admin.post("/admin/entities/org/fields/revenue",
                   field_form(label_en="Revenue", label_zh="收入", precision="16", scale="2", currency="CNY",
                              min="0", max="1000000000", sensitive="1"))
    assert r.status_code == 302, text(r)[:2000]
    r = admin.post("/admin/entities/org/fields/name",
                   field_form(label_en="Name", label_zh="名称", required="1", searchable="1",
                              min_length="2", max_length="120", pattern="[A-Za-z ]+"))
    assert r.status_code == 302, text(r)[:2000]
    fields = draft(rt, "entities/org.yaml")["fields"]
    assert fields["revenue"] == {"type": "money", "label": {"en": "Revenue", "zh": "收入"}, "min": 0,
                                 "in_list": True, "max": 1000000000, "sensitive": True, "precision": 16,
                                 "scale": 2, "currency": "CNY"}
    assert fields["name"] == {"type": "string", "label": {"en": "Name", "zh": "名称"}, "required": True,
                              "max_length": 120, "searchable": True, "in_list": True, "min_length": 2,
                              "pattern": "[A-Za-z ]+"}


@pytest.mark.parametrize("field, form, key, message", [
    ("revenue", {"precision": "3", "scale": "5"}, "scale", "scale 5 is greater than precision 3"),
    ("org", {"filter_key": ["nosuch"], "filter_src": ["field:name"], "filter_value": [""]}, "filter",
     "&#39;nosuch&#39; is not a field of org"),
    ("org", {"filter_key": ["name"], "filter_src": ["field:nothing"], "filter_value": [""]}, "filter",
     "&#39;nothing&#39; is not a field of deal"),
    ("name", {"pattern": "[a-"}, "pattern", "not a valid regular expression"),
    ("revenue", {"precision": "two"}, "precision", "Enter a whole number."),
])
def test_a_bad_value_shows_the_check_message_beside_the_input_and_drafts_nothing(admin, rt, field, form, key,
                                                                                  message):
    eid = "deal" if field == "org" else "org"
    r = admin.post(f"/admin/entities/{eid}/fields/{field}", field_form(**form))
    assert r.status_code == 422
    page = text(r)
    assert f'<small class="field-error" id="err-{key}">' in page
    beside = page.split(f'id="err-{key}">', 1)[1].split("</small>", 1)[0]
    assert message in beside
    assert draft(rt, f"entities/{eid}.yaml") is None
    assert "No drafts" in text(admin.get("/admin/changes"))


def test_non_admins_cannot_use_the_designers(sam):
    for path in ("/admin/entities/org/fields/revenue", "/admin/permissions", "/admin/workflows/deal_flow"):
        r = sam.get(path)
        assert r.status_code == 403 and "Only an administrator may use the studio." in text(r)
    r = sam.post("/admin/entities/org/fields/revenue", field_form(scale="2"))
    assert r.status_code == 403
    r = sam.post("/admin/permissions", {"role": "sales", "act__all": "read"})
    assert r.status_code == 403
    r = sam.post("/admin/workflows/deal_flow", {"op": "tr_save", "id": "win", "from": "open", "to": "won"})
    assert r.status_code == 403


# ---- workflow designer: a transition's rules and approval ---------------------------------------
def transition_form(**extra):
    base = [("op", "tr_save"), ("id", "win"), ("from", "open"), ("to", "won"), ("label_en", "Win"),
            ("label_zh", "赢单")]
    for k, v in extra.items():
        for item in (v if isinstance(v, list) else [v]):
            base.append((k, item))
    return base


def test_workflow_page_offers_the_packs_roles_the_fields_and_approval(admin):
    page = text(admin.get("/admin/workflows/deal_flow"))
    assert 'name="roles" value="sales"' in page and 'name="roles" value="sales_manager"' in page
    assert 'name="require" value="close_on"' in page
    assert 'value="role:sales_manager"' in page and 'value="user_field:owner.manager"' in page
    assert 'name="comment"' in page and 'name="when_message_zh"' in page


def test_transition_rules_and_approval_are_drafted_as_documented(admin, rt):
    r = admin.post("/admin/workflows/deal_flow", transition_form(
        roles=["sales", "sales_manager"], require=["close_on", "probability"], when="probability > 50",
        when_message_en="Only likely deals", when_message_zh="仅限高赢率商机", comment="required",
        approval="1", reject_to="open", no_self_approval="1", step_count="3",
        step_0_name="manager", step_0_label_en="Manager", step_0_label_zh="直属经理",
        step_0_who="user_field:owner.manager", step_0_mode="any",
        step_1_name="director", step_1_label_en="Director", step_1_label_zh="总监",
        step_1_who="role:sales_manager", step_1_mode="all",
        step_2_name="", step_2_label_en="", step_2_label_zh="", step_2_who="", step_2_mode="any"))
    assert r.status_code == 302, text(r)[:3000]
    win = draft(rt, "workflows/deal_flow.yaml")["transitions"]["win"]
    assert win == {"from": "open", "to": "won", "label": {"en": "Win", "zh": "赢单"},
                   "roles": ["sales", "sales_manager"], "require": ["close_on", "probability"],
                   "when": "probability > 50", "when_message": {"en": "Only likely deals", "zh": "仅限高赢率商机"},
                   "comment": "required",
                   "approval": {"reject_to": "open", "no_self_approval": True, "steps": [
                       {"name": "manager", "label": {"en": "Manager", "zh": "直属经理"}, "user_field": "owner.manager"},
                       {"name": "director", "label": {"en": "Director", "zh": "总监"}, "role": "sales_manager",
                        "mode": "all"}]}}
    # the next save removes a step and the approval's other rules stay as they were
    r = admin.post("/admin/workflows/deal_flow", transition_form(
        roles=["sales"], comment="", approval="1", reject_to="", step_count="3",
        step_0_name="manager", step_0_label_en="Manager", step_0_label_zh="直属经理",
        step_0_who="user_field:owner.manager", step_0_mode="any", step_0_remove="1",
        step_1_name="director", step_1_label_en="Director", step_1_label_zh="总监",
        step_1_who="role:sales_manager", step_1_mode="all",
        step_2_name="", step_2_label_en="", step_2_label_zh="", step_2_who="", step_2_mode="any"))
    assert r.status_code == 302, text(r)[:3000]
    win = draft(rt, "workflows/deal_flow.yaml")["transitions"]["win"]
    assert win == {"from": "open", "to": "won", "label": {"en": "Win", "zh": "赢单"}, "roles": ["sales"],
                   "approval": {"steps": [{"name": "director", "label": {"en": "Director", "zh": "总监"},
                                           "role": "sales_manager", "mode": "all"}]}}


@pytest.mark.parametrize("extra, key, message", [
    ({"require": ["nosuch"]}, "require", "&#39;nosuch&#39; is not a field of deal"),
    ({"roles": ["nobody"]}, "roles", "&#39;nobody&#39; is not a role of the packs"),
    ({"approval": "1", "step_count": "1", "step_0_name": "boss", "step_0_who": "", "step_0_mode": "any"},
     "step_0", "an approval step needs a role, a user_field or a rule"),
    ({"approval": "1", "step_count": "1", "step_0_name": "", "step_0_who": ""}, "approval",
     "An approval needs at least one step."),
])
def test_a_bad_transition_rule_is_shown_beside_its_input_and_drafts_nothing(admin, rt, extra, key, message):
    r = admin.post("/admin/workflows/deal_flow", transition_form(**extra))
    assert r.status_code == 422
    page = text(r)
    beside = page.split(f'id="err-win-{key}">', 1)[1].split("</small>", 1)[0]
    assert message in beside
    assert draft(rt, "workflows/deal_flow.yaml") is None
    assert "No drafts" in text(admin.get("/admin/changes"))


# ---- permissions designer -----------------------------------------------------------------------
DEFAULTS = ["read", "create", "update", "export", "import", "assign"]


def grid_form(role, rows: dict, scopes: dict):
    """The grid as the page sends it: rows {entity or '_all': [actions]} and scopes {entity: scope}."""
    data = [("role", role)]
    for key, acts in rows.items():
        data += [(f"act_{key}", a) for a in acts]
    data += [(f"scope_{e}", s) for e, s in scopes.items()]
    return data


def test_studio_home_links_the_permissions_designer_and_it_shows_the_grid(admin):
    assert 'href="/admin/permissions"' in text(admin.get("/admin"))
    page = text(admin.get("/admin/permissions?role=sales"))
    assert 'name="act_deal" value="delete"' in page and 'name="scope_org"' in page
    assert 'name="act_deal" value="read" checked' in page and 'name="act_deal" value="export" checked' not in page
    assert 'name="act_org" value="export" checked' in page             # org follows the "*" line
    assert 'name="scope_person" value="keep"' in page                  # {via: org} is kept, not offered
    zh = plain(text(admin.get("/admin/permissions?role=sales&lang=zh")))
    assert "权限" in zh


def test_permissions_grid_is_drafted_as_documented_and_other_keys_stay(admin, rt):
    r = admin.post("/admin/permissions", grid_form("sales", {
        "_all": ["read", "create", "update", "export", "assign"],
        "deal": ["read", "create", "update", "delete"],
        "org": ["read", "create", "update", "export", "assign"],          # same as "*": no line of its own
        "person": ["read", "create", "update", "export", "assign"],
        "touch": ["read"],
    }, {"deal": "team", "org": "region", "person": "keep", "touch": ""}))
    assert r.status_code == 302, text(r)[:3000]
    assert draft(rt, "access.yaml") == {
        "permissions": {"sales": {"*": ["read", "create", "update", "export", "assign"],
                                  "deal": ["read", "create", "update", "delete"], "touch": ["read"]}},
        "scopes": {"sales": {"deal": "team", "person": {"via": "org"}, "org": "region"}},
        "hidden": {"sales": {"org": ["revenue"]}},
        "readonly": {"sales": {"deal": ["probability"]}},
        "audit_readers": ["sales_manager"]}
    # a role the file does not list: saving its defaults writes nothing; a change writes its lines
    unchanged = grid_form("sales_manager", {k: DEFAULTS for k in ("_all", "deal", "org", "person", "touch")}, {})
    assert admin.post("/admin/permissions", unchanged).status_code == 302
    assert "sales_manager" not in draft(rt, "access.yaml")["permissions"]
    changed = grid_form("sales_manager", {**{k: DEFAULTS for k in ("_all", "deal", "org", "person")},
                                          "touch": DEFAULTS + ["delete"]}, {"org": "team"})
    assert admin.post("/admin/permissions", changed).status_code == 302
    saved = draft(rt, "access.yaml")
    assert saved["permissions"]["sales_manager"] == {"*": DEFAULTS, "touch": DEFAULTS[:3] + ["delete"] + DEFAULTS[3:]}
    assert saved["scopes"]["sales_manager"] == {"org": "team"}
    assert saved["permissions"]["sales"]["deal"] == ["read", "create", "update", "delete"]   # the other role kept


def test_a_bad_grid_value_is_shown_beside_its_row_and_drafts_nothing(admin, rt):
    r = admin.post("/admin/permissions", grid_form("sales", {"_all": ["read"], "deal": ["read", "fly"]},
                                                   {"deal": "everyone"}))
    assert r.status_code == 422
    page = text(r)
    beside = page.split('id="err-deal">', 1)[1].split("</small>", 1)[0]
    assert "permissions.sales.deal" in beside or "scopes.sales.deal" in beside
    assert draft(rt, "access.yaml") is None
    assert "No drafts" in text(admin.get("/admin/changes"))
    r = admin.post("/admin/permissions", grid_form("nobody", {"_all": ["read"]}, {}))
    assert r.status_code == 400 and "Choose one of the roles." in text(r)
    assert draft(rt, "access.yaml") is None
