"""The UI in a real browser with its Content-Security-Policy enforced (the other browser tests bypass
it: Playwright's wait_for_function evaluates its predicate with eval). Part of the security work;
the server-side checks are in tests/ui/test_security_web.py."""
from __future__ import annotations

import pytest

from platform_ import auth
from tests.ui.conftest import CONFIG


@pytest.fixture
def csp_live(tmp_path, monkeypatch, chromium_path):
    """A live server on the UI test pack: five orgs (some with a coloured level), one of them sam's."""
    import threading

    from werkzeug.serving import make_server
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/csp.db")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(CONFIG))
    monkeypatch.setenv("ATTACHMENTS_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("SECRET_KEY", "csp")
    from app import create_app
    app = create_app({"TESTING": False, "CRM_BACKGROUND": False})
    rt = app.extensions["crm"]
    rt.ensure_schema()
    auth.create_user(rt.engine, "admin", "admin-Passw0rd", ["admin"], language="en")
    a = auth.get_actor(rt.engine, 1)
    for i in range(3):
        rt.store.create("org", {"name": f"Org {i}", "email": f"o{i}@x.cn", "level": "high" if i else "low"}, a)
    rt.store.create("org", {"name": "Zebra Works", "email": "z@x.cn"}, a)
    auth.create_user(rt.engine, "sam", "sam-Passw0rd!", ["sales"])
    rt.store.create("org", {"name": "Sam's own", "email": "s@x.cn"}, auth.get_actor(rt.engine, 2))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    rt.engine.dispose()


@pytest.mark.e2e
def test_the_ui_works_with_the_csp_enforced(browser, csp_live):
    from playwright.sync_api import expect
    base = csp_live
    ctx = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")   # CSP not bypassed
    ctx.set_default_timeout(10_000)
    pg = ctx.new_page()
    problems = []
    pg.on("console", lambda m: problems.append(m.text) if ("Content Security Policy" in m.text
                                                              or "Refused to" in m.text) else None)
    pg.on("pageerror", lambda e: problems.append(str(e)))
    pg.goto(base + "/login")
    pg.fill("#username", "admin")
    pg.fill("#password", "admin-Passw0rd")
    pg.click("form button[type=submit]")
    pg.wait_for_url(base + "/")
    # a list: colours from the config, live search (htmx), a filter change, select all
    pg.goto(base + "/e/org")
    badge = pg.locator("#results .badge[data-color]").first
    assert badge.evaluate("e => getComputedStyle(e).getPropertyValue('--badge').trim()") == "#c62828"
    pg.fill("#filters input[type=search]", "Zebra")
    expect(pg.locator("#results tbody tr")).to_have_count(1)
    pg.fill("#filters input[type=search]", "")
    expect(pg.locator("#results tbody tr")).to_have_count(5)
    pg.check("#filters input[name=owner]")                          # a change asks at once
    expect(pg.locator("#results tbody tr")).to_have_count(4)
    pg.check("[data-select-all]")
    assert all(c.is_checked() for c in pg.locator("input[name=ids]").all())
    # a form: an empty link picker shows choices on focus, a choice fills it, the record saves
    pg.goto(base + "/e/deal/new")
    pg.fill("#name", "CSP deal")
    pg.focus("#org")
    expect(pg.locator("#org-options [data-pick-id]").first).to_be_visible()
    pg.locator("#org-options [data-pick-id]", has_text="Zebra Works").click()
    pg.click("form .form-actions button[type=submit]")
    expect(pg.locator("h1")).to_have_text("CSP deal")
    assert pg.locator(".stage-bar .stage").count() >= 1
    ctx.close()
    assert problems == []
