"""H6 governance: sign-ins (good and bad), sign-outs, configuration reloads and migrations, user and
token administration land in the hash-chained audit log; auditors search, export and verify it
(GET /api/v1/audit and the /audit page); everyone else is refused and sees nothing."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
import sqlalchemy as sa

from engine import clock
from engine.audit import audit_log
from platform_ import auth

ADMIN_PW, SAM_PW, AUDREY_PW = "admin-Passw0rd", "sam-Passw0rd!", "Aud1t-Reader-pw"
T0 = dt.datetime(2026, 3, 2, 9, 0, 0)


@pytest.fixture
def site(db_url, tmp_path, monkeypatch, config_copy):
    """The real app on the mini pack with `audit_readers: [auditor]`; admin, sam (staff), audrey (auditor)."""
    cfg = config_copy("mini")
    (cfg / "access.yaml").write_text("audit_readers: [auditor]\nhidden:\n  auditor:\n    account: [email]\n")
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("CRM_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("ATTACHMENTS_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("SECRET_KEY", "audit")
    from app import create_app
    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False})
    rt = app.extensions["crm"]
    rt.ensure_schema()
    auth.create_user(rt.engine, "admin", ADMIN_PW, ["admin"], full_name="Ada Admin")
    auth.create_user(rt.engine, "sam", SAM_PW, ["staff"], full_name="Sam Staff")
    auth.create_user(rt.engine, "audrey", AUDREY_PW, ["auditor"], full_name="Audrey Auditor")

    class Site:
        pass
    s = Site()
    s.app, s.rt, s.cfg = app, rt, cfg
    s.tokens = {u: auth.create_token(rt.engine, u) for u in ("admin", "sam", "audrey")}

    def api(user, method, path, **kw):
        r = app.test_client().open("/api/v1" + path, method=method,
                                   headers={"Authorization": f"Bearer {s.tokens[user]}"}, **kw)
        return r
    s.api = api

    def web(user=None, password=None):
        c = app.test_client()
        if user:
            r = c.post("/login", data={"username": user, "password": password})
            assert r.status_code == 302, r.get_data(as_text=True)[:300]
        return c
    s.web = web
    yield s
    clock.set_global(None)
    rt.engine.dispose()


def items(site, query="", user="admin"):
    r = site.api(user, "GET", "/audit" + query)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["items"]


def raw_log(site) -> str:
    with site.rt.engine.connect() as conn:
        return "\n".join(repr(tuple(r)) for r in conn.execute(sa.select(audit_log)))


# ---- sign-in events -------------------------------------------------------------------------
def test_failed_and_successful_signins_are_logged_with_the_user_and_never_the_password(site):
    c = site.app.test_client()
    assert c.post("/login", data={"username": "admin", "password": "Wrong-guess-123"}).status_code == 401
    assert c.post("/login", data={"username": "ghost", "password": "Ghost-secret-456"}).status_code == 401
    assert c.post("/login", data={"username": "admin", "password": ADMIN_PW}).status_code == 302
    assert c.post("/logout").status_code == 302

    got = items(site, "?entity=&action=signin_failed")
    by_name = {i["user"]: i for i in got}
    assert by_name["admin"]["user_id"] == 1 and "reason=wrong_password" in by_name["admin"]["detail"]
    assert by_name["ghost"]["user_id"] is None and "reason=unknown_user" in by_name["ghost"]["detail"]
    assert "address=127.0.0.1" in by_name["ghost"]["detail"]
    ok = items(site, "?action=signin")
    assert [(i["user"], i["user_id"]) for i in ok] == [("admin", 1)]
    assert [i["user"] for i in items(site, "?action=signout")] == ["admin"]
    log = raw_log(site)
    for secret in ("Wrong-guess-123", "Ghost-secret-456", ADMIN_PW):
        assert secret not in log                           # no password, right or wrong, is ever kept


def test_disabled_and_locked_out_signins_say_why(site, monkeypatch):
    runner = site.app.test_cli_runner()
    assert runner.invoke(args=["crm", "user", "disable", "sam"]).exit_code == 0
    c = site.app.test_client()
    assert c.post("/login", data={"username": "sam", "password": SAM_PW}).status_code == 401
    for _ in range(10):
        c.post("/login", data={"username": "audrey", "password": "not-her-pw-1"})
    r = c.post("/login", data={"username": "audrey", "password": AUDREY_PW})
    assert r.status_code == 429                              # the throttle refuses even the right password
    reasons = [re.search(r"reason=(\w+)", i["detail"]).group(1) for i in items(site, "?action=signin_failed")]
    assert reasons[0] == "locked_out_by_user" and reasons.count("wrong_password") == 10 and "disabled" in reasons
    disabled = items(site, "?action=user.disable")
    assert len(disabled) == 1 and disabled[0]["user"].startswith("cli:")
    assert disabled[0]["changes"] == {"active": [True, False]} and disabled[0]["record"] == 2


def test_tokens_and_user_changes_from_the_cli_are_logged(site):
    runner = site.app.test_cli_runner()
    assert runner.invoke(args=["crm", "token", "create", "--user", "sam", "--name", "ci"]).exit_code == 0
    assert runner.invoke(args=["crm", "token", "revoke", "--user", "sam"]).exit_code == 0
    assert runner.invoke(args=["crm", "user", "enable", "sam"]).exit_code == 0
    assert runner.invoke(args=["crm", "user", "team", "sam", "east"]).exit_code == 0
    got = {i["action"]: i for i in items(site, "?entity=sys_user")}
    assert "token #" in got["token.create"]["detail"] and "(ci)" not in got["token.create"]["detail"]
    assert got["token.revoke"]["detail"].startswith("sam") and got["user.enable"]["record"] == 2
    assert got["user.update"]["changes"] == {"team": [None, "east"]}
    tokens_in_log = re.findall(r"crm_[A-Za-z0-9_-]{20,}", raw_log(site))
    assert tokens_in_log == []                              # a token's value never reaches the log


# ---- configuration --------------------------------------------------------------------------
def test_a_reload_and_the_schema_steps_it_applies_are_logged(site):
    account = site.cfg / "entities" / "account.yaml"
    account.write_text(account.read_text().replace("fields:\n", "fields:\n  fax: {type: phone}\n", 1))
    before = site.rt.config.digest
    r = site.api("admin", "POST", "/admin/reload")
    assert r.status_code == 200
    after = r.get_json()["digest"]
    reload = items(site, "?action=config.reload")
    assert len(reload) == 1 and reload[0]["user"] == "admin"
    assert reload[0]["changes"] == {"digest": [before, after]} and "add_column e_account.fax" in reload[0]["detail"]
    applied = items(site, "?action=config.apply")
    assert applied[0]["user"] == "admin" and f"config {after}" in applied[0]["detail"]

    account.write_text(account.read_text().replace("type: phone", "type: fone"))
    assert site.api("admin", "POST", "/admin/reload").status_code == 422
    refused = items(site, "?action=config.reload_failed")
    assert len(refused) == 1 and f"still serving config {after}" in refused[0]["detail"]
    assert site.api("sam", "POST", "/admin/reload").status_code == 403
    assert len(items(site, "?action=config.reload")) == 1


def test_migrate_from_the_cli_is_logged(site):
    account = site.cfg / "entities" / "account.yaml"
    account.write_text(account.read_text().replace("fields:\n", "fields:\n  vat_no: {type: string}\n", 1))
    site.rt.load()
    r = site.app.test_cli_runner().invoke(args=["crm", "migrate", "--apply"])
    assert r.exit_code == 0, r.output
    entry = items(site, "?action=config.apply")[0]
    assert entry["user"].startswith("cli:") and "e_account.vat_no" in entry["detail"]


# ---- reading the log ------------------------------------------------------------------------
def _account(site, name, user="admin"):
    r = site.api(user, "POST", "/account", json={"name": name, "email": "a@x.cn"})
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.get_json()


def test_filters_by_user_action_entity_record_and_days(site):
    clock.set_global(T0)
    a = _account(site, "Early")
    clock.set_global(T0 + dt.timedelta(days=3))
    b = _account(site, "Late", user="sam")
    site.api("admin", "PATCH", f"/account/{b['id']}", json={"name": "Later", "version": b["version"]})
    clock.set_global(None)

    assert [i["action"] for i in items(site, f"?entity=account&record={b['id']}")] == ["update", "create"]
    assert [i["record"] for i in items(site, "?entity=account&user=2")] == [b["id"]]          # sam
    assert [i["record"] for i in items(site, "?entity=account&action=create")] == [b["id"], a["id"]]
    assert [i["record"] for i in items(site, "?entity=account&until=2026-03-02")] == [a["id"]]
    assert [i["action"] for i in items(site, "?entity=account&since=2026-03-05&until=2026-03-05")] == \
        ["update", "create"]
    assert items(site, "?entity=account&since=2026-03-06&until=2026-03-07") == []
    # the original contract still answers
    old = items(site, f"?entity=account&record={b['id']}")[0]
    assert {"at", "user", "action", "changes"} <= set(old) and old["changes"]["name"] == ["Late", "Later"]
    for bad in ("?since=2026-3-1", "?until=yesterday", "?record=x", "?since=2026-03-05&until=2026-03-01",
                "?format=xml"):
        r = site.api("admin", "GET", "/audit" + bad)
        assert r.status_code == 422 and r.get_json()["error"]["message"], bad


def test_non_readers_are_refused_everywhere_and_see_nothing(site):
    _account(site, "Secret deal")
    r = site.api("sam", "GET", "/audit?entity=account")
    assert r.status_code == 403 and "items" not in r.get_json() and "Secret deal" not in r.get_data(as_text=True)
    assert site.api("sam", "GET", "/audit?format=csv").status_code == 403
    sam = site.web("sam", SAM_PW)
    for method, path in (("GET", "/audit"), ("GET", "/audit/export.csv"), ("POST", "/audit/verify")):
        r = sam.open(path, method=method)
        body = r.get_data(as_text=True)
        assert r.status_code == 403 and "Secret deal" not in body, path
        if method == "GET" and path == "/audit":
            assert "Only an administrator or an auditor may read the audit trail." in body
    assert "Audit trail" not in sam.get("/").get_data(as_text=True)            # no menu entry either
    audrey = site.web("audrey", AUDREY_PW)
    assert "Audit trail" in audrey.get("/").get_data(as_text=True)
    page = audrey.get("/audit?entity=account").get_data(as_text=True)
    assert "Secret deal" in page
    assert site.api("audrey", "GET", "/audit?entity=account").status_code == 200


def test_an_auditor_does_not_see_changes_of_fields_their_role_hides(site):
    a = _account(site, "Mailer")
    site.api("admin", "PATCH", f"/account/{a['id']}", json={"email": "new@x.cn", "version": a["version"]})
    seen = items(site, f"?entity=account&record={a['id']}", user="audrey")
    assert [i["action"] for i in seen] == ["update", "create"]
    assert seen[0]["changes"] == {} and "email" not in seen[1]["changes"] and seen[1]["changes"]["name"]
    assert items(site, f"?entity=account&record={a['id']}")[0]["changes"] == {"email": ["a@x.cn", "new@x.cn"]}
    page = site.web("audrey", AUDREY_PW).get("/audit?entity=account").get_data(as_text=True)
    assert "Mailer" in page and "new@x.cn" not in page and "a@x.cn" not in page


def test_csv_export_holds_the_filtered_rows_and_neutralises_formulas(site):
    _account(site, "=cmd|' /C calc'!A0")
    _account(site, "Plain 公司")
    audrey = site.web("audrey", AUDREY_PW)
    r = audrey.get("/audit/export.csv?entity=account&action=create")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    text = r.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0][:4] == ["Time", "User", "Action", "Entity"] and len(rows) == 3
    titles = [row[5] for row in rows[1:]]
    assert titles == ["Plain 公司", "'=cmd|' /C calc'!A0"]
    assert all(not cell.startswith(("=", "+", "@")) for row in rows for cell in row)
    assert all(row[2] == "Created" and row[1] == "Ada Admin" for row in rows[1:])

    r = site.api("audrey", "GET", "/audit?entity=account&action=create&format=csv")
    api_rows = list(csv.reader(io.StringIO(r.get_data().decode("utf-8").lstrip("\ufeff"))))
    assert [row[4] for row in api_rows[1:]] == ["create", "create"] and "=cmd|" in api_rows[2][7]
    assert all(not cell.startswith(("=", "+", "@")) for row in api_rows for cell in row)


def test_verify_button_names_the_tampered_entry(site):
    first = _account(site, "One")
    _account(site, "Two")
    audrey = site.web("audrey", AUDREY_PW)
    ok = audrey.post("/audit/verify").get_data(as_text=True)
    assert "The audit log is intact" in ok
    with site.rt.engine.begin() as conn:
        eid = conn.execute(sa.select(audit_log.c.id).where(audit_log.c.record_id == first["id"],
                                                           audit_log.c.entity == "account")).scalar()
        conn.execute(audit_log.update().where(audit_log.c.id == eid).values(username="mallory"))
    bad = audrey.post("/audit/verify", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert f"Entry #{eid} was altered after it was written." in bad and "<html" not in bad
    page = audrey.post("/audit/verify?lang=zh").get_data(as_text=True)
    assert f"第 #{eid} 条在写入后被篡改" in page
