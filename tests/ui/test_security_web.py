"""Security of the web UI, as a browser sees it: redirects after sign-in, sign-in throttling, sessions
that end server-side, cookie flags and headers, the request size limit, file downloads, CSV export
and input hygiene."""
from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import re
import shutil

import pytest
import sqlalchemy as sa

from engine import clock
from engine.errors import NotFound
from platform_ import auth, signin
from tests.ui.conftest import CONFIG, Client

T0 = dt.datetime(2026, 3, 2, 9, 0, 0)
BAD_NEXT = ("/\t/evil.example", "//evil.example", "https://evil.example/", "/\\evil.example",
            "/\r\n/evil.example", "\t//evil.example", "http:/evil.example", "javascript:alert(1)", "evil.example")


@pytest.fixture
def frozen():
    """Set the engine clock for every thread (the test client runs the app in this one)."""
    def at(when):
        clock.set_global(when)
    yield at
    clock.set_global(None)


def sign_in(app, username, password, next_=None, remember=False, lang=None, addr=None, base_url=None):
    """A fresh browser fills the login form; (its client, the answer to the POST)."""
    cl = Client(app)
    if addr:
        cl.c.environ_base["REMOTE_ADDR"] = addr
    kw = {"base_url": base_url} if base_url else {}
    cl.refresh_token(cl.c.get("/login" + (f"?lang={lang}" if lang else ""), **kw).get_data(as_text=True))
    data = {"username": username, "password": password}
    if next_ is not None:
        data["next"] = next_
    if remember:
        data["remember"] = "1"
    return cl, cl.post("/login", data, **kw)


def attempts(rt):
    with rt.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(signin.login_attempts)
                                              .order_by(signin.login_attempts.c.id)).mappings()]


# ---- 1. open redirect ------------------------------------------------------------------------
@pytest.mark.parametrize("nxt", BAD_NEXT)
def test_sign_in_never_redirects_off_site(app, nxt):
    cl, r = sign_in(app, "admin", "admin-Passw0rd", next_=nxt)
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert cl.get("/").status_code == 200              # signed in all the same


@pytest.mark.parametrize("nxt", BAD_NEXT)
def test_language_switch_never_redirects_off_site(admin, nxt):
    r = admin.post("/lang", {"lang": "zh", "next": nxt})
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert "机构" in admin.get("/e/org").get_data(as_text=True)     # the language changed all the same


def test_same_site_paths_are_still_honoured(app, admin):
    cl, r = sign_in(app, "admin", "admin-Passw0rd", next_="/e/org?level=high&q=%E6%9D%AD")
    assert r.headers["Location"] == "/e/org?level=high&q=%E6%9D%AD"
    r = admin.post("/lang", {"lang": "en", "next": "/e/deal?page=2"})
    assert r.headers["Location"] == "/e/deal?page=2"
    # the login page carries only a safe `next` into its form and language links
    page = Client(app).c.get("/login?next=//evil.example/x").get_data(as_text=True)
    assert "evil.example" not in page


def test_list_queries_sent_back_by_forms_stay_queries(admin):
    """Bulk actions and saved views send the list's query back: it is re-encoded, never a 500 or a header."""
    r = admin.post("/e/org/bulk", {"action": "delete", "query": "q=a\r\nSet-Cookie: x=1&level=high"})
    assert r.status_code == 302 and r.headers["Location"] == "/e/org?q=a%0D%0ASet-Cookie%3A+x%3D1&level=high"
    r = admin.post("/e/org/views", {"name": "Mine", "query": "q=//evil.example/\r\nX: y"})
    assert r.status_code == 302 and r.headers["Location"] == "/e/org?q=%2F%2Fevil.example%2F%0D%0AX%3A+y"
    r = admin.post("/e/org/views", {"name": "Odd", "query": "//evil.example/"})
    assert r.status_code == 302 and r.headers["Location"] == "/e/org"


# ---- 2. throttling ---------------------------------------------------------------------------
def test_ten_failures_lock_the_name_for_15_minutes_right_password_included(app, rt, frozen):
    frozen(T0)
    for n in range(10):
        _cl, r = sign_in(app, "sam", f"wrong-{n}")
        assert r.status_code == 401 and "Wrong user name or password" in r.get_data(as_text=True)
    cl, r = sign_in(app, "sam", "sam-Passw0rd!")
    body = r.get_data(as_text=True)
    assert r.status_code == 429
    assert "Too many failed sign-ins for this user name" in body and "15 minutes" in body
    assert r.headers["Retry-After"] == "900"
    assert cl.get("/").status_code == 302                          # not signed in
    # the same page in Chinese
    frozen(T0 + dt.timedelta(minutes=5))
    _cl, r = sign_in(app, "sam", "sam-Passw0rd!", lang="zh")
    assert r.status_code == 429 and "登录失败次数过多" in r.get_data(as_text=True) and "10 分钟" in r.get_data(as_text=True)
    # nothing else changed: another user signs in from the same address
    _cl, r = sign_in(app, "admin", "admin-Passw0rd")
    assert r.status_code == 302
    # refused tries do not extend the lock: 15 minutes after the 10th failure the name is free
    frozen(T0 + dt.timedelta(minutes=15, seconds=1))
    cl, r = sign_in(app, "sam", "sam-Passw0rd!")
    assert r.status_code == 302 and cl.get("/").status_code == 200
    outcomes = [(a["username"], a["outcome"], a["success"]) for a in attempts(rt)]
    assert outcomes == [("sam", "wrong_password", False)] * 10 + [
        ("sam", "throttled", False), ("sam", "throttled", False), ("admin", "ok", True), ("sam", "ok", True)]
    assert all(a["address"] == "127.0.0.1" and a["at"] is not None for a in attempts(rt))


def test_a_successful_sign_in_clears_the_name_count(app, frozen):
    frozen(T0)
    for n in range(9):
        assert sign_in(app, "sam", f"wrong-{n}")[1].status_code == 401
    assert sign_in(app, "sam", "sam-Passw0rd!")[1].status_code == 302
    for n in range(9):
        assert sign_in(app, "sam", f"again-{n}")[1].status_code == 401
    assert sign_in(app, "sam", "sam-Passw0rd!")[1].status_code == 302     # 18 failures, but 9 since the success


def test_failures_from_one_address_lock_that_address(app, rt, frozen):
    frozen(T0)
    for n in range(signin.ADDRESS_LIMIT - 1):              # many names tried from one address (fast: no hashing)
        signin.record(rt.engine, f"guess{n}", "10.0.0.9", "wrong_password")
    assert sign_in(app, "nobody", "x-x-x-x-x", addr="10.0.0.9")[1].status_code == 401
    cl, r = sign_in(app, "sam", "sam-Passw0rd!", addr="10.0.0.9")
    assert r.status_code == 429 and "network address" in r.get_data(as_text=True)
    _cl, r = sign_in(app, "sam", "sam-Passw0rd!", addr="10.0.0.10")
    assert r.status_code == 302                                            # other addresses are not locked


# ---- 3. sessions end server-side -------------------------------------------------------------
def _cookie(client, name):
    c = client.get_cookie(name)
    return c.value if c is not None else None


def test_sign_out_ends_the_session_and_remember_cookie_server_side(app):
    cl, r = sign_in(app, "sam", "sam-Passw0rd!", remember=True)
    session_value, remember_value = _cookie(cl.c, "session"), _cookie(cl.c, "remember_token")
    assert session_value and remember_value
    replay = app.test_client()
    replay.set_cookie("session", session_value)
    assert replay.get("/e/org").status_code == 200               # a copy works while signed in
    only_remember = app.test_client()
    only_remember.set_cookie("remember_token", remember_value)
    assert only_remember.get("/e/org").status_code == 200
    cl.refresh_token(cl.get("/").get_data(as_text=True))
    r = cl.post("/logout")
    assert r.status_code == 302
    [gone] = _set_cookies(r, "remember_token")
    assert "Expires=Thu, 01 Jan 1970" in gone and _cookie(cl.c, "remember_token") is None
    assert cl.get("/").status_code == 302
    for name, value in (("session", session_value), ("remember_token", remember_value)):
        replay = app.test_client()
        replay.set_cookie(name, value)
        r = replay.get("/e/org")
        assert r.status_code == 302 and "/login" in r.headers["Location"], name
    # signing in again works, with a new session
    cl2, r = sign_in(app, "sam", "sam-Passw0rd!")
    assert r.status_code == 302 and cl2.get("/e/org").status_code == 200


def test_a_session_cookie_from_before_epochs_is_signed_out(app):
    from flask.sessions import SecureCookieSessionInterface
    s = SecureCookieSessionInterface().get_signing_serializer(app)
    old = s.dumps({"_user_id": "2", "_fresh": True})              # the old form: the bare user id
    c = app.test_client()
    c.set_cookie("session", old)
    assert c.get("/").status_code == 302


def test_disabling_a_user_ends_their_sessions_and_sign_in_says_why(app, rt, sam, admin):
    assert sam.get("/e/org").status_code == 200
    auth.disable_user(rt.engine, "sam")
    assert sam.get("/e/org").status_code == 302
    _cl, r = sign_in(app, "sam", "sam-Passw0rd!")
    assert r.status_code == 401 and "This account has been disabled" in r.get_data(as_text=True)
    _cl, r = sign_in(app, "sam", "wrong-password")              # no hint without the password
    assert r.status_code == 401 and "disabled" not in r.get_data(as_text=True)
    assert admin.get("/e/org").status_code == 200                 # others stay signed in
    auth.enable_user(rt.engine, "sam")
    assert sign_in(app, "sam", "sam-Passw0rd!")[1].status_code == 302


# ---- 4. cookies and headers ------------------------------------------------------------------
def _set_cookies(resp, name):
    return [h for h in resp.headers.getlist("Set-Cookie") if h.startswith(name + "=")]


def _attrs(header):
    return {p.strip().split("=")[0].lower(): (p.strip().split("=", 1) + [""])[1] for p in header.split(";")[1:]}


def test_session_and_remember_cookies_are_httponly_lax_and_secure_over_https(app):
    _cl, r = sign_in(app, "sam", "sam-Passw0rd!", remember=True)
    for name in ("session", "remember_token"):
        [h] = _set_cookies(r, name)
        a = _attrs(h)
        assert "httponly" in a and a["samesite"] == "Lax" and "secure" not in a, h
    _cl, r = sign_in(app, "sam", "sam-Passw0rd!", remember=True, base_url="https://localhost")
    for name in ("session", "remember_token"):
        [h] = _set_cookies(r, name)
        a = _attrs(h)
        assert "httponly" in a and a["samesite"] == "Lax" and "secure" in a, h


def test_secure_cookies_setting_marks_them_secure_over_http(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/s.db")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(CONFIG))
    monkeypatch.setenv("SECRET_KEY", "s")
    monkeypatch.setenv("CRM_SECURE_COOKIES", "1")
    from app import create_app
    app = create_app({"TESTING": True})
    rt = app.extensions["crm"]
    rt.ensure_schema()
    auth.create_user(rt.engine, "sam", "sam-Passw0rd!", ["sales"])
    _cl, r = sign_in(app, "sam", "sam-Passw0rd!")
    [h] = _set_cookies(r, "session")
    assert "secure" in _attrs(h)
    rt.engine.dispose()


def test_every_page_carries_csp_and_the_other_headers(app, admin, make):
    org = make("org", name="O", email="o@x.cn", level="high")
    for client, path in ((Client(app).c, "/login"), (admin.c, "/"), (admin.c, "/e/org"),
                         (admin.c, f"/e/org/{org['id']}"), (admin.c, "/e/nothing"), (admin.c, "/static/ui/ui.js")):
        r = client.get(path)
        csp = r.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "same-origin"
        assert r.headers["X-Frame-Options"] == "DENY"
    assert admin.c.get("/api/v1/org").headers["X-Content-Type-Options"] == "nosniff"


INLINE = [re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), re.compile(r"<style\b", re.I),
          re.compile(r"\sstyle\s*=", re.I), re.compile(r"\son[a-z]+\s*=", re.I),
          re.compile(r"javascript:", re.I), re.compile(r"hx-on", re.I), re.compile(r"hx-vals=['\"]\s*(js|javascript):")]


def trigger_filters(html: str) -> list:
    """htmx event filters (`change[cond]`): htmx evaluates them with Function(), which the CSP forbids."""
    out = []
    for spec in re.findall(r'hx-trigger="([^"]*)"', html):
        for part in spec.split(","):
            event = part.strip().split(" ")[0]
            if "[" in event:
                out.append(part.strip())
    return out


def test_pages_need_nothing_the_csp_forbids(app, admin, make, rt):
    """No inline script, style element or attribute, event handler or htmx filter (needs eval)."""
    org = make("org", name="O", email="o@x.cn", level="high")
    deal = make("deal", name="D", org=org["id"], lines=[{"item": "X", "quantity": "1", "price": "2"}])
    pages = {p: admin.get(p) for p in ("/", "/e/org", f"/e/org/{org['id']}", f"/e/org/{org['id']}/edit",
                                       "/e/org/new", f"/e/deal/{deal['id']}", "/inbox", "/search?q=O",
                                       "/notifications", "/e/deal", "/logout")}
    pages["/login"] = Client(app).c.get("/login")
    for path, r in pages.items():
        assert r.status_code == 200, path
        html = r.get_data(as_text=True)
        for rx in INLINE:
            assert not rx.search(html), (path, rx.pattern, rx.search(html) and html[rx.search(html).start() - 80:][:200])
        assert trigger_filters(html) == [], path
    html = pages["/e/org"].get_data(as_text=True)
    assert 'class="badge" data-color="#c62828"' in html           # the colour goes through ui.js
    assert '"allowEval": false' in html and '"includeIndicatorStyles": false' in html


def test_a_huge_body_is_413_with_a_message(app, rt, admin):
    token = auth.create_token(rt.engine, "admin")
    assert app.config["MAX_CONTENT_LENGTH"] == 32 * 1024 * 1024
    app.config["MAX_CONTENT_LENGTH"] = 4096
    r = admin.post("/e/org/new", {"name": "x" * 10000, "email": "a@b.cn"})
    assert r.status_code == 413 and "larger than the limit of" in r.get_data(as_text=True)
    assert "<html" in r.get_data(as_text=True)
    r = admin.c.post("/api/v1/org", data="{" + " " * 10000 + "}", content_type="application/json",
                     headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "too_large"
    assert admin.get("/e/org").status_code == 200                  # small requests go on
    assert "0 found" in admin.get("/e/org", hx=True).get_data(as_text=True)   # nothing was created


# ---- 6. attachments --------------------------------------------------------------------------
def _file(content: bytes, name="a.txt"):
    return {"name": name, "content_base64": base64.b64encode(content).decode()}


def test_files_are_served_only_to_readers_of_a_record_that_holds_them(app, rt, admin, sam, make, admin_actor,
                                                                      monkeypatch):
    org = make("org", name="With logo", email="l@x.cn", logo=_file(b"LOGO-BYTES"))
    sha = org["logo"]["sha256"]
    assert sha == hashlib.sha256(b"LOGO-BYTES").hexdigest()
    r = admin.get(f"/files/{sha}?name=logo.txt")
    assert r.status_code == 200 and r.data == b"LOGO-BYTES"
    assert sam.get(f"/files/{sha}").status_code == 200
    assert Client(app).c.get(f"/files/{sha}").status_code == 302          # signed out: to the login page
    # the store decides who reads the record: out of sam's scope, the file is not there for sam
    real_get = rt.store.get

    def scoped_get(entity, rid, actor, **kw):
        if actor.username == "sam":
            raise NotFound("out of scope")
        return real_get(entity, rid, actor, **kw)
    monkeypatch.setattr(rt.store, "get", scoped_get)
    assert sam.get(f"/files/{sha}").status_code == 404
    assert admin.get(f"/files/{sha}").status_code == 200
    monkeypatch.undo()
    # a file no live record holds is nobody's
    orphan = rt.attachments.put("secret.txt", b"ORPHAN")["sha256"]
    assert admin.get(f"/files/{orphan}").status_code == 404
    rt.store.delete("org", org["id"], admin_actor)
    assert admin.get(f"/files/{sha}").status_code == 404 and sam.get(f"/files/{sha}").status_code == 404
    assert admin.get("/files/not-a-sha").status_code == 404


def test_a_download_name_cannot_break_the_header(admin, make):
    org = make("org", name="L", email="l@x.cn", logo=_file(b"X"))
    sha = org["logo"]["sha256"]
    for name, expected in (("a%0d%0aSet-Cookie:%20x=1.txt", 'filename="aSet-Cookie: x=1.txt"'),
                           ("..%2f..%2fetc%2fpasswd", "filename=....etcpasswd"), ("%00%01", f"filename={sha[:12]}")):
        r = admin.get(f"/files/{sha}?name={name}")
        assert r.status_code == 200 and r.headers["Content-Disposition"] == f"attachment; {expected}", name


def test_a_file_in_a_child_row_is_served_to_readers_of_the_parent(tmp_path, monkeypatch):
    cfg = tmp_path / "cfg"
    shutil.copytree(CONFIG, cfg)
    lines = cfg / "entities" / "deal_line.yaml"
    lines.write_text(lines.read_text() + "  spec: {type: attachment, label: {en: Spec, zh: 规格}}\n")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/c.db")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("ATTACHMENTS_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("SECRET_KEY", "c")
    from app import create_app
    app = create_app({"TESTING": True})
    rt = app.extensions["crm"]
    rt.ensure_schema()
    auth.create_user(rt.engine, "admin", "admin-Passw0rd", ["admin"])
    a = auth.get_actor(rt.engine, 1)
    org = rt.store.create("org", {"name": "O", "email": "o@x.cn"}, a)
    ref = rt.attachments.put("spec.txt", b"SPEC")
    deal = rt.store.create("deal", {"name": "D", "org": org["id"], "lines": [{"item": "X", "spec": ref}]}, a)
    sha = deal["lines"][0]["spec"]["sha256"]
    cl = Client(app, "admin", "admin-Passw0rd")
    assert cl.get(f"/files/{sha}").data == b"SPEC"
    rt.store.delete("deal", deal["id"], a)
    assert cl.get(f"/files/{sha}").status_code == 404
    rt.engine.dispose()


def test_a_file_just_uploaded_in_a_form_can_be_opened_before_saving(admin):
    r = admin.post("/e/org/new", {"name": "", "email": "u@x.cn",
                                  "logo": (io.BytesIO(b"NEW-UPLOAD"), "new.png", "image/png")},
                   content_type="multipart/form-data")
    assert r.status_code == 422                                     # name missing: the form comes back
    m = re.search(r'href="/files/([0-9a-f]{64})', r.get_data(as_text=True))
    assert m and admin.get(f"/files/{m.group(1)}").data == b"NEW-UPLOAD"


def test_an_attachment_naming_a_missing_file_is_refused_naming_the_field(app, rt):
    token = auth.create_token(rt.engine, "admin")
    c, h = app.test_client(), {"Authorization": f"Bearer {token}"}
    stored = rt.attachments.put("real.txt", b"REAL")
    r = c.post("/api/v1/org", json={"name": "Real", "email": "r@x.cn", "logo": stored}, headers=h)
    assert r.status_code == 201
    r = c.post("/api/v1/org", json={"name": "Ghost", "email": "g@x.cn", "logo": {"name": "g.txt", "sha256": "b" * 64}},
               headers=h)
    assert r.status_code == 422 and "logo" in r.get_json()["error"]["fields"]
    assert c.get("/api/v1/org", headers=h).get_json()["total"] == 1


# ---- 7. input hygiene ------------------------------------------------------------------------
def test_csv_export_neutralises_formula_cells(admin, make):
    names = ["=HYPERLINK(\"http://evil.example\")", "+1+2", "-2+3", "@SUM(A1)", "-5", "Plain"]
    ids = [make("org", name=n, email=f"c{i}@x.cn", notes=note)["id"]
           for i, (n, note) in enumerate(zip(names, ["\tTAB", "\rCR", "ok", "ok", "-1", "=1"]))]
    r = admin.post("/e/org/bulk", [("action", "export"), ("query", "_cols=notes")] + [("ids", str(i)) for i in ids])
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"), newline="")))
    got = {row[1]: row[2] for row in rows[1:]}
    assert got == {"'=HYPERLINK(\"http://evil.example\")": "'\tTAB", "'+1+2": "'\rCR", "'-2+3": "ok",
                   "'@SUM(A1)": "ok", "-5": "-1", "Plain": "'=1"}


def test_control_characters_are_refused_naming_the_field(admin, rt, admin_actor):
    from engine.query import ListRequest
    before = rt.store.list("org", ListRequest(filters=[], per_page=1), admin_actor)["total"]
    r = admin.post("/e/org/new", {"name": "bad\x00name", "email": "n@x.cn"})
    assert r.status_code == 422
    assert "control character" in r.get_data(as_text=True)
    r = admin.post("/e/org/new?lang=zh", {"name": "ESC\x1b", "email": "n@x.cn"})
    assert r.status_code == 422 and "包含不允许的控制字符" in r.get_data(as_text=True)
    admin.get("/e/org?lang=en")
    assert rt.store.list("org", ListRequest(filters=[], per_page=1), admin_actor)["total"] == before
    r = admin.post("/e/org/new", {"name": "Good", "email": "n@x.cn", "notes": "line 1\r\n\tline 2"})
    assert r.status_code == 302
