"""Shell: sign in with CSRF, navigation from the config, language, errors, search."""
import re

from tests.ui.conftest import Client


def test_login_page_carries_csrf_and_rejects_a_post_without_it(app):
    c = app.test_client()
    page = c.get("/login").get_data(as_text=True)
    assert 'name="csrf_token"' in page and 'type="password"' in page
    r = c.post("/login", data={"username": "admin", "password": "admin-Passw0rd"})
    assert r.status_code == 400
    assert "/login" in c.get("/", follow_redirects=False).headers["Location"]


def test_login_wrong_password_keeps_the_user_out(app):
    cl = Client(app)
    cl.refresh_token()
    r = cl.post("/login", {"username": "admin", "password": "nope-nope"})
    assert r.status_code == 401 and "Wrong user name or password" in r.get_data(as_text=True)
    assert cl.get("/").status_code == 302


def test_login_then_logout(admin):
    assert admin.get("/").status_code == 200
    r = admin.post("/logout")
    assert r.status_code == 302
    assert admin.get("/").status_code == 302


def test_next_parameter_only_goes_to_this_site(app):
    cl = Client(app)
    cl.refresh_token()
    r = cl.post("/login?next=//evil.example/x", {"username": "admin", "password": "admin-Passw0rd"})
    assert r.headers["Location"] == "/"
    cl2 = Client(app)
    cl2.refresh_token()
    r = cl2.post("/login?next=/e/org", {"username": "admin", "password": "admin-Passw0rd"})
    assert r.headers["Location"] == "/e/org"


def test_navigation_groups_entities_by_module_without_child_entities(admin):
    page = admin.get("/").get_data(as_text=True)
    assert "Customers" in page and "Sales" in page
    assert 'href="/e/org"' in page and 'href="/e/deal"' in page and 'href="/inbox"' in page
    assert "/e/deal_line" not in page
    assert 'hx-headers=\'{"X-CSRFToken": ' in page


def test_static_files_are_vendored(admin):
    page = admin.get("/").get_data(as_text=True)
    assert "cdn" not in page.lower() and "unpkg" not in page.lower()
    for path in re.findall(r'(?:src|href)="(/static/ui/[^"]+)"', page):
        assert admin.get(path).status_code == 200, path


def test_language_from_query_session_user_and_accept_language(app, admin):
    assert "机构" in admin.get("/e/org?lang=zh").get_data(as_text=True)
    # remembered in the session and on the user
    assert "机构" in admin.get("/e/org").get_data(as_text=True)
    fresh = Client(app, "admin", "admin-Passw0rd")
    assert "机构" in fresh.get("/e/org").get_data(as_text=True)
    assert "Organisations" in admin.get("/e/org?lang=en").get_data(as_text=True)
    for code in ("zh-CN", "zh_CN", "zh"):
        assert "<h1>机构</h1>" in admin.get(f"/e/org?lang={code}").get_data(as_text=True)


def test_accept_language_is_honoured_for_a_user_without_a_choice(app):
    cl = Client(app, "sam", "sam-Passw0rd!")
    page = cl.get("/e/org", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}).get_data(as_text=True)
    assert "<h1>机构</h1>" in page and 'lang="zh-CN"' in page
    page = cl.get("/e/org", headers={"Accept-Language": "en-GB"}).get_data(as_text=True)
    assert "<h1>Organisations</h1>" in page


def test_language_switch_form(admin):
    r = admin.post("/lang", {"lang": "zh", "next": "/e/deal"})
    assert r.status_code == 302 and r.headers["Location"] == "/e/deal"
    assert "商机" in admin.get("/e/deal").get_data(as_text=True)


def test_error_pages_in_the_users_language_without_traces(admin):
    r = admin.get("/e/org/424242")
    assert r.status_code == 404 and "Traceback" not in r.get_data(as_text=True)
    assert admin.get("/e/nothing").status_code == 404
    assert admin.get("/e/deal_line").status_code == 404  # child entities have no pages
    assert admin.get("/no/such/page").status_code == 404
    r = admin.get("/e/org/424242?lang=zh")
    assert "未找到" in r.get_data(as_text=True)


def test_500_page_hides_the_error(app, admin, monkeypatch):
    from ui import lists
    def boom(*a, **k):
        raise RuntimeError("secret internals")
    monkeypatch.setattr(lists, "filter_specs", boom)
    r = admin.get("/e/org")
    body = r.get_data(as_text=True)
    assert r.status_code == 500 and "secret internals" not in body and "Traceback" not in body


def test_403_for_a_staff_user_deleting(make, sam):
    org = make("org", name="Keep me", email="k@x.cn")
    r = sam.post(f"/e/org/{org['id']}/delete")
    assert r.status_code == 403
    assert "Only an administrator" in r.get_data(as_text=True)


def test_api_still_answers_json_and_needs_no_csrf(app, admin):
    r = admin.c.get("/api/v1/org")
    assert r.status_code == 401 and r.is_json
    assert admin.c.get("/api/v1/nowhere").is_json


def test_global_search(make, admin):
    make("org", name="杭州尚祈科技", email="s@x.cn")
    make("person", name="王杭州", org=make("org", name="Other", email="o@x.cn")["id"])
    page = admin.get("/search?q=杭州").get_data(as_text=True)
    assert "杭州尚祈科技" in page and "王杭州" in page
    part = admin.get("/search?q=杭州", hx=True).get_data(as_text=True)
    assert "<html" not in part and "杭州尚祈科技" in part


def test_home_shows_what_i_changed_lately(make, admin):
    make("org", name="A", email="a@x.cn")         # the home page replaced the table of counts (ui/home.py)
    page = admin.get("/").get_data(as_text=True)
    assert "Recently changed by me" in page and '<a href="/e/org/1">A</a>' in page


def test_every_ui_string_has_a_chinese_translation():
    import pathlib
    from babel.messages.pofile import read_po
    root = pathlib.Path(__file__).resolve().parents[2] / "ui"
    rx = re.compile(r'''(?<![A-Za-z0-9_])_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')''')
    wanted = set()
    for p in root.rglob("*"):
        if p.suffix in (".py", ".html"):
            wanted |= {a or b for a, b in rx.findall(p.read_text(encoding="utf-8"))}
    with open(root / "translations/zh_Hans/LC_MESSAGES/messages.po", "rb") as f:
        cat = read_po(f)
    have = {m.id for m in cat if m.id and m.string}
    assert sorted(wanted - have) == []
