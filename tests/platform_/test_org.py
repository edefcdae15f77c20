"""The organisation an administrator models (platform_/org.py) through the admin API and the CLI:
team trees without cycles, nothing deleted while still used, permission changes audited, the
password policy, and non-admins refused with nothing changed."""
from platform_ import auth
from tests.conftest import FIXTURES


def _audit(api, action):
    s, body = api("GET", f"/audit?action={action}")
    assert s == 200
    return body["items"]


def _teams(api):
    s, body = api("GET", "/admin/teams")
    assert s == 200
    return {t["id"]: t for t in body["items"]}


def test_team_tree_refuses_cycles_and_missing_parents(api):
    for tid, parent in (("east", None), ("east-hz", "east"), ("east-hz-1", "east-hz")):
        s, body = api("POST", "/admin/teams", {"id": tid, "label_en": tid.title(), "label_zh": "华东", "parent": parent})
        assert s == 201, body
    teams = _teams(api)
    assert [(t["id"], t["depth"]) for t in teams.values()] == [("east", 0), ("east-hz", 1), ("east-hz-1", 2)]

    s, body = api("PATCH", "/admin/teams/east", {"parent": "east-hz-1"})
    assert s == 422 and "cannot be placed under its own sub-team" in body["error"]["message"]
    assert "parent" in body["error"]["fields"]
    s, body = api("PATCH", "/admin/teams/east", {"parent": "east"})
    assert s == 422 and "its own parent" in body["error"]["message"]
    assert _teams(api)["east"]["parent"] is None                       # nothing changed

    s, body = api("POST", "/admin/teams", {"id": "west", "label_en": "West", "parent": "nowhere"})
    assert s == 422 and "there is no team 'nowhere'" in body["error"]["message"]
    assert "west" not in _teams(api)
    s, body = api("POST", "/admin/teams", {"id": "bad id!", "label_en": "x"})
    assert s == 422 and "short code" in body["error"]["fields"]["id"]

    s, body = api("PATCH", "/admin/teams/east-hz-1", {"parent": "east", "label_zh": "杭州一组"})
    assert s == 200 and body["parent"] == "east" and body["label_zh"] == "杭州一组"
    entry = _audit(api, "team.update")[0]
    assert entry["detail"] == "east-hz-1" and entry["changes"]["parent"] == ["east-hz", "east"]


def test_delete_refused_while_referenced_and_nothing_changed(api):
    api("POST", "/admin/teams", {"id": "east", "label_en": "East"})
    api("POST", "/admin/teams", {"id": "east-hz", "label_en": "Hangzhou", "parent": "east"})
    api("POST", "/admin/regions", {"id": "north", "label_en": "North", "label_zh": "华北"})
    s, body = api("PATCH", "/admin/users/sam", {"team": "east", "region": "north"})
    assert s == 200 and body["team"] == "east" and body["region"] == "north"

    s, body = api("DELETE", "/admin/teams/east")
    assert s == 409
    assert "still used by 1 user(s) and 1 sub-team(s)" in body["error"]["message"]
    s, body = api("DELETE", "/admin/regions/north")
    assert s == 409 and "still used by 1 user(s)" in body["error"]["message"]
    teams = _teams(api)
    assert set(teams) == {"east", "east-hz"} and teams["east"]["members"] == 1 and teams["east"]["children"] == 1
    s, body = api("GET", "/admin/users/sam")
    assert body["team"] == "east" and body["region"] == "north"
    assert _audit(api, "team.delete") == []

    s, body = api("PATCH", "/admin/users/sam", {"team": None, "region": None})
    assert s == 200
    assert api("DELETE", "/admin/teams/east-hz")[0] == 204
    assert api("DELETE", "/admin/teams/east")[0] == 204
    assert api("DELETE", "/admin/regions/north")[0] == 204
    assert _teams(api) == {}
    assert [e["detail"] for e in _audit(api, "team.delete")] == ["east", "east-hz"]
    assert api("DELETE", "/admin/teams/east")[0] == 404


def test_role_change_is_audited_as_a_permission_change(api):
    s, body = api("PATCH", "/admin/users/sam", {"roles": ["admin"], "full_name": "Sam Boss"})
    assert s == 200 and body["roles"] == ["admin"] and body["full_name"] == "Sam Boss"
    roles = _audit(api, "user.roles")
    assert len(roles) == 1
    assert roles[0]["user"] == "admin" and roles[0]["entity"] == "sys_user" and roles[0]["record"] == body["id"]
    assert roles[0]["changes"] == {"roles": [["staff"], ["admin"]]}
    update = _audit(api, "user.update")
    assert update[0]["changes"] == {"full_name": ["sam", "Sam Boss"]}
    s, body = api("PATCH", "/admin/users/sam", {"roles": ["nope"]})
    assert s == 422 and "not a role of the pack: nope" in body["error"]["message"]
    assert api("GET", "/admin/users/sam")[1]["roles"] == ["admin"]
    # the last active administrator keeps the role
    api("PATCH", "/admin/users/sam", {"roles": ["staff"]})
    s, body = api("PATCH", "/admin/users/admin", {"roles": ["staff"]})
    assert s == 422 and "last active administrator" in body["error"]["message"]


def test_create_user_disable_enable_and_reset_password(api):
    api("POST", "/admin/teams", {"id": "east", "label_en": "East"})
    s, body = api("POST", "/admin/users", {"username": "li", "password": "Li-sales-2024x", "roles": ["staff"],
                                           "full_name": "李雷", "email": "li@example.cn", "manager": "admin",
                                           "team": "east", "language": "zh"})
    assert s == 201, body
    assert (body["manager"], body["team"], body["language"], body["active"]) == ("admin", "east", "zh", True)
    created = _audit(api, "user.create")[0]
    assert created["changes"]["roles"] == [None, ["staff"]] and "password" not in created["changes"]
    eng = api.app.extensions["crm"].engine
    token = auth.create_token(eng, "li")

    s, body = api("POST", "/admin/users/li/disable")
    assert s == 200 and body["active"] is False and body["tokens_revoked"] == 1
    assert auth.actor_for_token(eng, token) is None
    assert _audit(api, "user.disable")[0]["changes"] == {"active": [True, False]}
    s, body = api("POST", "/admin/users/admin/disable")
    assert s == 409 and "your own account" in body["error"]["message"]
    s, body = api("POST", "/admin/users/li/enable")
    assert s == 200 and body["active"] is True

    s, body = api("PATCH", "/admin/users/li", {"password": "short"})
    assert s == 422 and "at least 10 characters" in body["error"]["message"]
    assert auth.authenticate(eng, "li", "Li-sales-2024x") is not None
    s, _body = api("PATCH", "/admin/users/li", {"password": "New-secret-99"})
    assert s == 200
    assert auth.authenticate(eng, "li", "Li-sales-2024x") is None and auth.authenticate(eng, "li", "New-secret-99")
    entry = _audit(api, "user.password")[0]
    assert entry["detail"] == "li" and "New-secret-99" not in str(entry)

    s, body = api("GET", "/admin/users?q=李")
    assert s == 200 and [u["username"] for u in body["items"]] == ["li"]


def test_password_policy_messages(api):
    for password, message in (("Ab1", "at least 10 characters"), ("abcdefghijkl", "both a letter and a digit"),
                              ("Password-123", "common password"),
                              ("zhang1234567", "must not be built on the user name")):
        s, body = api("POST", "/admin/users", {"username": "zhang", "password": password, "roles": ["staff"]})
        assert s == 422 and message in body["error"]["fields"]["password"], password
        assert api("GET", "/admin/users/zhang")[0] == 404                 # not created


def test_password_policy_in_chinese_and_the_passwords_in_use(api):
    s, body = api("POST", "/admin/users", {"username": "wang", "password": "abc", "roles": ["staff"]},
                  headers={"Accept-Language": "zh-CN"})
    assert s == 422 and "密码至少需要 10 个字符" in body["error"]["message"] and "字母和数字" in body["error"]["message"]
    for name, pw in (("admin", "admin-Passw0rd"), ("baradmin", "Bar-passw0rd!x"), ("agent", "Bar-agent-passw0rd"),
                     ("sales_a", "Bar-sales-A-passw0rd"), ("demo_sales", "demo-Passw0rd")):
        assert auth.password_problems(pw, name) == [], (name, pw)


def test_non_admin_is_refused_and_nothing_changes(api):
    staff = api.staff
    for method, path, body in (("GET", "/admin/users", None), ("POST", "/admin/teams", {"id": "x", "label_en": "X"}),
                               ("PATCH", "/admin/users/sam", {"roles": ["admin"]}),
                               ("POST", "/admin/users/admin/disable", None),
                               ("POST", "/admin/users", {"username": "eve", "password": "Eve-passw0rd-1",
                                                         "roles": ["admin"]}),
                               ("POST", "/admin/regions", {"id": "r", "label_en": "R"})):
        s, out = staff(method, path, body)
        assert s == 403 and "Only an administrator" in out["error"]["message"], (method, path)
    assert _teams(api) == {}
    assert api("GET", "/admin/regions")[1]["items"] == []
    users = {u["username"]: u for u in api("GET", "/admin/users")[1]["items"]}
    assert set(users) == {"admin", "sam"} and users["sam"]["roles"] == ["staff"] and users["admin"]["active"]
    assert _audit(api, "user.roles") == []


def test_openapi_documents_the_admin_endpoints(api):
    s, doc = api("GET", "/openapi.json", token=False)
    assert {"/api/v1/admin/users", "/api/v1/admin/users/{username}", "/api/v1/admin/users/{username}/disable",
            "/api/v1/admin/teams/{id}", "/api/v1/admin/regions"} <= set(doc["paths"])


def test_cli_teams_regions_and_user_region(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(FIXTURES / "mini"))
    monkeypatch.setenv("SECRET_KEY", "cli")
    from app import create_app
    app = create_app({"TESTING": True})
    runner = app.test_cli_runner()

    def run(*args, code=0):
        r = runner.invoke(args=["crm", *args])
        assert r.exit_code == code, r.output
        return r.output
    run("init")
    run("user", "create", "ann", "--password", "ann-Passw0rd", "--role", "staff")
    assert "Team east created" in run("team", "add", "east", "--label-en", "East", "--label-zh", "华东")
    run("team", "add", "east-hz", "--label-zh", "杭州", "--parent", "east", "--manager", "ann")
    assert "there is no team 'nope'" in run("team", "add", "x", "--parent", "nope", code=1)
    out = run("team", "list")
    assert "east " in out and "\n  east-hz" in out and "manager ann" in out and "2 team(s)" in out
    assert "Region north created" in run("region", "add", "north", "--label-zh", "华北")
    assert "ann is in region north" in run("user", "region", "ann", "north")
    assert "there is no region 'south'" in run("user", "region", "ann", "south", code=1)
    assert "1 member(s)" in run("region", "list")
    assert auth.find_user(app.extensions["crm"].engine, "ann")["region"] == "north"
    from engine import audit
    made = audit.entries(app.extensions["crm"].engine, action="team.create")["items"]
    assert [e["detail"] for e in made] == ["east-hz", "east"] and made[0]["user"].startswith("cli:")
