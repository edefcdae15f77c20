"""A10 REST API of DESIGN.md: CRUD, list queries, errors, tokens — on SQLite and PostgreSQL."""


from tests.conftest import FIXTURES


def test_a10_crud_round_trip(api):
    s, c = api("POST", "/account", {"name": "宁波海天贸易有限公司", "email": "buy@haitian.example.cn", "revenue": 1200.5,
                                    "tags": ["a"], "since": "2026-01-31"})
    assert s == 201 and c["id"] and c["version"] == 1 and c["revenue"] == 1200.5 and c["since"] == "2026-01-31"
    s, g = api("GET", f"/account/{c['id']}")
    assert s == 200 and g["name"] == "宁波海天贸易有限公司"
    s, u = api("PATCH", f"/account/{c['id']}", {"email": "sales@haitian.example.cn", "version": 1})
    assert s == 200 and u["version"] == 2 and u["email"] == "sales@haitian.example.cn"
    s, e = api("PATCH", f"/account/{c['id']}", {"email": "x@haitian.example.cn", "version": 1})
    assert s == 409 and e["error"]["code"] == "conflict" and e["error"]["current"]["version"] == 2
    s, _ = api("DELETE", f"/account/{c['id']}")
    assert s == 204
    assert api("GET", f"/account/{c['id']}")[0] == 404
    assert api("GET", "/account?deleted=only")[1]["total"] == 1
    s, r = api("POST", f"/account/{c['id']}/restore")
    assert s == 200 and r["deleted_at"] is None


def test_a10_validation_errors_name_every_field(api):
    s, e = api("POST", "/account", {"email": "not-an-email", "revenue": "lots", "level": "gold", "extra": 1})
    assert s == 422
    assert set(e["error"]["fields"]) == {"name", "email", "revenue", "level", "extra"}
    s, e = api("POST", "/account", [1, 2])
    assert s == 400
    s, e = api("POST", "/account", None, data="{not json", headers={"Content-Type": "application/json"})
    assert s == 400 and "JSON" in e["error"]["message"]


def test_a10_auth(api):
    assert api("GET", "/account", token=False)[0] == 401
    assert api("GET", "/account", headers={"Authorization": "Bearer crm_wrong"}, token=False)[0] == 401
    s, me = api("GET", "/me")
    assert s == 200 and me["username"] == "admin"


def test_h2_staff_cannot_delete(api):
    _, c = api.staff("POST", "/account", {"name": "A", "email": "a@b.cn"})
    s, e = api.staff("DELETE", f"/account/{c['id']}")
    assert s == 403 and "recycle bin" in e["error"]["message"]
    assert api("GET", f"/account/{c['id']}")[0] == 200


def test_a10_list_query_language(api):
    for i in range(5):
        api("POST", "/account", {"name": f"Bar Filter Co {i}", "email": f"f{i}@bar.example", "revenue": i * 100})
    api("POST", "/account", {"name": "杭州尚祈", "email": "hz@x.cn"})
    s, l = api("GET", "/account?name__contains=Bar%20Filter&sort=-name&per_page=2")
    assert s == 200 and l["total"] == 5 and len(l["items"]) == 2 and l["items"][0]["name"] == "Bar Filter Co 4"
    assert l["page"] == 1 and l["per_page"] == 2
    assert api("GET", "/account?revenue__gte=200&revenue__lte=300")[1]["total"] == 2
    assert api("GET", "/account?q=%E6%9D%AD%E5%B7%9E")[1]["total"] == 1
    assert api("GET", "/account?page=3&per_page=2&sort=name")[1]["items"][0]["name"] == "Bar Filter Co 4"
    assert api("GET", "/account?owner=me")[1]["total"] == 6
    assert api("GET", "/account?nope=1")[0] == 400
    assert api("GET", "/account?per_page=100000")[0] == 400
    assert api("GET", "/account?sort=-nope")[0] == 400
    assert api("GET", "/no_such_entity")[0] == 404


def test_a10_child_rows_and_links(api):
    _, acc = api("POST", "/account", {"name": "A", "email": "a@b.cn"})
    s, d = api("POST", "/deal", {"name": "D", "account": acc["id"], "probability": 50,
                                 "lines": [{"item": "pump", "quantity": 2, "price": 10}]})
    assert s == 201 and d["amount"] == 20.0 and d["weighted"] == 10.0 and d["lines"][0]["amount"] == 20.0
    s, e = api("POST", "/deal", {"name": "D", "account": 999, "lines": [{"item": "x", "quantity": "many"}]})
    assert s == 422 and set(e["error"]["fields"]) == {"account", "lines.0.quantity"}


def test_a10_openapi_document(api):
    s, doc = api("GET", "/openapi.json", token=False)
    assert s == 200 and doc["openapi"].startswith("3.")
    assert "/api/v1/account" in doc["paths"] and "/api/v1/account/{id}" in doc["paths"]
    assert doc["components"]["schemas"]["account_input"]["required"] == ["name"]


def test_a7_reload_keeps_last_good_config(make_app, tmp_path):
    import shutil
    cfg = tmp_path / "cfg"
    shutil.copytree(FIXTURES / "mini", cfg)
    app, token, _ = make_app(cfg)
    c = app.test_client()
    h = {"Authorization": f"Bearer {token}"}
    (cfg / "entities" / "account.yaml").write_text(
        (cfg / "entities" / "account.yaml").read_text().replace("type: email", "type: emial"))
    r = c.post("/api/v1/admin/reload", headers=h)
    assert r.status_code == 422 and any("emial" in p for p in r.get_json()["error"]["problems"])
    r = c.post("/api/v1/account", json={"name": "still", "email": "ok@x.cn"}, headers=h)
    assert r.status_code == 201                                       # still serving the last good one
    (cfg / "entities" / "account.yaml").write_text(
        (cfg / "entities" / "account.yaml").read_text().replace("type: emial", "type: email")
        .replace("fields:\n", "fields:\n  fax: {type: phone}\n"))
    r = c.post("/api/v1/admin/reload", headers=h)
    assert r.status_code == 200
    r = c.post("/api/v1/account", json={"name": "new", "email": "n@x.cn", "fax": "+86 571 1234"}, headers=h)
    assert r.status_code == 201 and r.get_json()["fax"] == "+86 571 1234"


def test_a10_boolean_filters(api):
    api("POST", "/account", {"name": "On", "email": "on@x.cn", "active": True})
    api("POST", "/account", {"name": "Off", "email": "off@x.cn", "active": False})
    s, l = api("GET", "/account?active=false")
    assert s == 200 and [r["name"] for r in l["items"]] == ["Off"]
    assert api("GET", "/account?active__ne=false")[1]["total"] == 1
    s, e = api("GET", "/account?active__lt=true")
    assert s == 400 and "boolean" in e["error"]["message"]


def test_migrate_on_start_can_be_turned_off(tmp_path, monkeypatch):
    import sqlalchemy as sa
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/off.db")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(FIXTURES / "mini"))
    monkeypatch.setenv("CRM_MIGRATE_ON_START", "0")
    from app import create_app
    app = create_app({"TESTING": True})
    assert app.test_client().get("/api/v1/account").status_code == 401
    assert "e_account" not in sa.inspect(app.extensions["crm"].engine).get_table_names()
