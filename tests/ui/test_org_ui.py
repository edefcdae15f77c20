"""The administrator's organisation pages on the default pack: users, teams (a tree) and regions
show labels in the reader's language, forms create and refuse, disabling signs a user out,
transferring records previews before it moves anything."""
import re

import pytest

from engine.actor import SYSTEM_ACTOR
from platform_ import auth, org
from tests.conftest import ROOT
from tests.ui.conftest import Client


@pytest.fixture
def app(tmp_path, monkeypatch):
    """The default pack (its roles have labels) with an admin and a sales rep."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/org.db")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(ROOT / "config"))
    monkeypatch.setenv("ATTACHMENTS_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("SECRET_KEY", "org-ui-test")
    from app import create_app
    app = create_app({"TESTING": True})
    rt = app.extensions["crm"]
    rt.ensure_schema()
    auth.create_user(rt.engine, "admin", "admin-Passw0rd", roles=("admin",), full_name="Ada Admin")
    auth.create_user(rt.engine, "sam", "sam-Passw0rd!", roles=("sales",), full_name="Sam Seller")
    yield app
    rt.engine.dispose()


@pytest.fixture
def org_data(rt):
    org.create(rt.engine, SYSTEM_ACTOR, "team", {"id": "east", "label_en": "East China", "label_zh": "华东大区"})
    org.create(rt.engine, SYSTEM_ACTOR, "team", {"id": "east-hz", "label_en": "Hangzhou", "label_zh": "杭州组",
                                                 "parent": "east", "manager": "admin"})
    org.create(rt.engine, SYSTEM_ACTOR, "region", {"id": "zj", "label_en": "Zhejiang", "label_zh": "浙江"})
    org.update_user(rt.engine, rt.config, SYSTEM_ACTOR, "sam", {"team": "east-hz", "region": "zj", "manager": "admin"})


def text(r):
    return re.sub(r"\s+", " ", r.get_data(as_text=True))


def row(html, rid):
    m = re.search(rf'<tr id="{rid}"[^>]*>(.*?)</tr>', html, re.S)
    assert m, rid
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", m.group(1))).strip()


def test_users_page_shows_labels_in_english_and_chinese(admin, org_data, rt):
    sam_id = auth.find_user(rt.engine, "sam")["id"]
    en = admin.get("/admin/users?lang=en")
    assert en.status_code == 200
    cells = row(en.get_data(as_text=True), f"user-{sam_id}")
    for shown in ("Sam Seller", "sam", "Sales rep", "Hangzhou", "Zhejiang", "Ada Admin", "Active", "never"):
        assert shown in cells, shown
    assert "east-hz" not in cells and "zj" not in cells.split()

    zh = admin.get("/admin/users?lang=zh")
    cells = row(zh.get_data(as_text=True), f"user-{sam_id}")
    for shown in ("销售", "杭州组", "浙江", "启用", "从未"):
        assert shown in cells, shown
    assert "Sales rep" not in cells
    admin_row = row(zh.get_data(as_text=True), "user-1")
    assert "管理员" in admin_row and re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", admin_row)   # signed in just now
    assert "用户" in text(zh) and "团队" in text(zh)

    found = admin.get("/admin/users?q=Seller").get_data(as_text=True)
    assert "Sam Seller" in row(found, f"user-{sam_id}") and 'id="user-1"' not in found


def test_teams_page_is_a_tree_with_member_counts(admin, org_data):
    html = admin.get("/admin/teams?lang=zh").get_data(as_text=True)
    assert html.index('id="team-east"') < html.index('id="team-east-hz"')
    assert re.search(r'id="team-east-hz">\s*<td class="depth-1">', html)
    sub = row(html, "team-east-hz")
    assert "杭州组" in sub and "Ada Admin" in sub and sub.split()[-4] == "1"   # one member
    assert "华东大区" in row(html, "team-east")
    regions = admin.get("/admin/regions?lang=en").get_data(as_text=True)
    assert "Zhejiang" in row(regions, "region-zj")


def test_create_a_team_and_a_user_from_the_forms(admin, app, rt):
    page = admin.get("/admin/teams/new")
    assert page.status_code == 200 and 'name="csrf_token"' in page.get_data(as_text=True)
    r = admin.post("/admin/teams/new", {"id": "north", "label_en": "North", "label_zh": "华北", "parent": "",
                                        "manager": ""})
    assert r.status_code == 302
    assert "华北" in text(admin.get("/admin/teams?lang=zh"))
    admin.post("/admin/teams/new", {"id": "north-bj", "label_en": "Beijing", "parent": "north", "manager": ""})
    r = admin.post("/admin/teams/north/edit?lang=en", {"label_en": "North", "label_zh": "华北", "parent": "north-bj",
                                                       "manager": ""})
    assert r.status_code == 422 and "cannot be placed under its own sub-team" in text(r)
    assert org.get(rt.engine, "team", "north")["parent"] is None

    form = text(admin.get("/admin/users/new?lang=zh"))
    assert "销售经理" in form and "华北" in form                              # role and team labels offered
    weak = admin.post("/admin/users/new?lang=en", [("username", "lily"), ("password", "lily12345678"),
                                                   ("roles", "sales"), ("full_name", "Lily Li")])
    assert weak.status_code == 422 and "must not be built on the user name" in text(weak)
    assert auth.find_user(rt.engine, "lily") is None
    r = admin.post("/admin/users/new", [("username", "lily"), ("password", "Spring-tea-2024"),
                                        ("roles", "sales"), ("roles", "sales_manager"), ("full_name", "Lily Li"),
                                        ("email", "lily@example.cn"), ("team", "north"), ("region", ""),
                                        ("manager", "admin"), ("language", "zh")])
    assert r.status_code == 302, text(r)[:500]
    cells = row(admin.get("/admin/users?lang=en").get_data(as_text=True), f"user-{auth.find_user(rt.engine, 'lily')['id']}")
    assert "Lily Li" in cells and "Sales rep, Sales manager" in cells and "North" in cells
    Client(app, "lily", "Spring-tea-2024")                                    # the new user signs in

    r = admin.post("/admin/users/lily/edit", [("full_name", "Lily Li"), ("email", ""), ("roles", "finance"),
                                              ("team", "north"), ("region", ""), ("manager", ""), ("language", "zh")])
    assert r.status_code == 302
    assert auth.find_user(rt.engine, "lily")["roles"] == ["finance"]
    from engine import audit
    assert audit.entries(rt.engine, action="user.roles")["items"][0]["changes"]["roles"] == [
        ["sales", "sales_manager"], ["finance"]]

    r = admin.post("/admin/teams/north/delete")
    assert r.status_code == 302
    assert "still used by 1 user(s) and 1 sub-team(s)" in text(admin.get("/admin/teams"))
    assert "North" in text(admin.get("/admin/teams?lang=en"))


def test_form_without_csrf_token_is_refused(admin, rt):
    r = admin.post("/admin/teams/new", {"id": "south", "label_en": "South"}, csrf=False)
    assert r.status_code == 400
    assert org.listing(rt.engine, "team") == []


def test_disabling_a_user_ends_their_session(admin, sam, rt):
    assert sam.get("/").status_code == 200
    confirm = admin.get("/admin/users/sam/disable?lang=en")
    assert confirm.status_code == 200 and "Disable Sam Seller (sam)?" in text(confirm)
    assert auth.find_user(rt.engine, "sam")["active"]                          # asking changes nothing
    r = admin.post("/admin/users/sam/disable")
    assert r.status_code == 302
    assert "sam is disabled" in text(admin.get("/admin/users?lang=en"))
    gone = sam.get("/")
    assert gone.status_code == 302 and "/login" in gone.headers["Location"]
    assert not auth.find_user(rt.engine, "sam")["active"]
    assert admin.post("/admin/users/sam/enable").status_code == 302
    assert auth.find_user(rt.engine, "sam")["active"]


def test_transfer_previews_then_moves(admin, make, rt):
    sam_id = auth.find_user(rt.engine, "sam")["id"]
    for name in ("杭州尚祈科技", "宁波远航"):
        make("customer", name=name, owner=sam_id, phone="0571-88886666")
    page = admin.get("/admin/users/sam/transfer?lang=zh&to=admin")
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.get_data(as_text=True)))
    assert page.status_code == 200 and "客户 2" in words and "未完成任务 0" in words and "确认转移" in words
    assert len(rt.store.list("customer", _owner_query(rt, sam_id), SYSTEM_ACTOR)["items"]) == 2   # nothing moved yet
    r = admin.post("/admin/users/sam/transfer", {"to": "admin"})
    assert r.status_code == 302
    assert "已将 2 条记录和 0 个任务从 sam 转给 admin" in text(admin.get("/admin/users"))
    assert rt.store.list("customer", _owner_query(rt, sam_id), SYSTEM_ACTOR)["items"] == []


def _owner_query(rt, uid):
    from engine.query import parse_args
    return parse_args(rt.config.entities["customer"], {"owner": str(uid)})


def test_non_admin_gets_403_and_nothing_changes(sam, rt):
    for path in ("/admin/users", "/admin/teams", "/admin/regions/new", "/admin/users/admin/edit"):
        r = sam.get(path + "?lang=en")
        assert r.status_code == 403 and "Only an administrator may manage users" in text(r), path
    r = sam.post("/admin/teams/new", {"id": "mine", "label_en": "Mine"})
    assert r.status_code == 403
    r = sam.post("/admin/users/admin/disable")
    assert r.status_code == 403
    assert org.listing(rt.engine, "team") == [] and auth.find_user(rt.engine, "admin")["active"]
    assert "/admin/users" not in sam.get("/").get_data(as_text=True)             # no link for them
