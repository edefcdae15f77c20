"""A live server (werkzeug in a thread, fresh SQLite file) and headless Debian Chromium via Playwright.

The browser tests run against the default pack in config/ when it loads and has the CRM entities
they drive; otherwise against the UI test pack (tests/ui/config), so the UI is still exercised.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import IN_CI, ROOT

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]
SCREENSHOTS = ROOT / "docs" / "screenshots"     # the README shows these
SCRATCH = ROOT / "test-results" / "screenshots"  # every run writes here (ignored by git)
ADMIN = ("admin", "admin-Passw0rd")

# The roles the scenario needs, per pack: a customer, a contact of it, a deal with product lines.
PACKS = [
    (ROOT / "config", {"customer": "customer", "contact": "contact", "deal": "opportunity"}),
    (ROOT / "tests" / "ui" / "config", {"customer": "org", "contact": "person", "deal": "deal"}),
]


def _pick_pack():
    from engine.errors import ConfigInvalid
    from engine.loader import load_config
    for directory, roles in PACKS:
        try:
            cfg = load_config(directory)
        except ConfigInvalid:
            continue
        deal = cfg.entities.get(roles["deal"])
        if all(r in cfg.entities for r in roles.values()) and deal is not None and deal.table_fields:
            return directory, roles, cfg
    raise RuntimeError("no config with the entities the browser tests drive")


@pytest.fixture(scope="session")
def chromium_path():
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is required in CI (apt-get install chromium; `make test` does it)")
        pytest.skip(f"{CHROMIUM} is not installed: `make system-deps` installs Debian's chromium")
    return CHROMIUM


@contextmanager
def serving(tmp: Path, directory: Path, name: str = "e2e"):
    """An app on its own SQLite file over the config `directory`, with the admin user, served on a
    free port in a thread: yields (base url, app)."""
    from werkzeug.serving import make_server
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "CRM_CONFIG_DIR", "ATTACHMENTS_DIR", "SECRET_KEY")}
    os.environ.update(DATABASE_URL=f"sqlite:///{tmp}/{name}.db", CRM_CONFIG_DIR=str(directory),
                      ATTACHMENTS_DIR=str(tmp / "files"), SECRET_KEY=f"{name}-secret")
    try:
        from app import create_app
        app = create_app({"TESTING": False})
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    rt = app.extensions["crm"]
    rt.ensure_schema()
    from platform_.auth import create_user
    create_user(rt.engine, ADMIN[0], ADMIN[1], roles=("admin",), full_name="Ada Admin", language="en")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", app
    finally:
        server.shutdown()
        rt.engine.dispose()


@pytest.fixture(scope="session")
def live(tmp_path_factory, chromium_path):
    """(base url, app, scenario roles, config) of a server on a free port."""
    directory, roles, _cfg = _pick_pack()
    with serving(tmp_path_factory.mktemp("e2e"), directory) as (base, app):
        yield base, app, roles, app.extensions["crm"].config


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, live):
    base = live[0]
    # bypass_csp: Playwright's wait_for_function evaluates its string predicate with eval in the page,
    # which the app's Content-Security-Policy forbids; tests/ui/test_security_web.py drives the UI
    # with the policy enforced.
    ctx = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US",
                              extra_http_headers={"Accept-Language": "en"}, bypass_csp=True)
    ctx.set_default_timeout(10_000)
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    if os.environ.get("E2E_DEBUG"):
        pg.on("console", lambda m: print("console:", m.text))
        pg.on("response", lambda r: print("resp", r.status, r.url, r.text()[:1500] if "preview" in r.url else ""))
    pg.goto(base + "/login")
    pg.fill("#username", ADMIN[0])
    pg.fill("#password", ADMIN[1])
    pg.click("form button[type=submit]")
    pg.wait_for_url(base + "/")
    pg.base = base
    yield pg
    ctx.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def shot(pg, name):
    """Screenshot into test-results/; into docs/screenshots/ too when missing or with UPDATE_SCREENSHOTS=1,
    so a test run does not leave the work tree changed."""
    SCRATCH.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SCRATCH / f"{name}.png"), full_page=False)
    target = SCREENSHOTS / f"{name}.png"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1" or not target.exists():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        target.write_bytes((SCRATCH / f"{name}.png").read_bytes())


def sample(f, n=1, store=None, actor=None, cfg=None):
    """A valid value for a field, for forms and records the tests need (generic over packs)."""
    t = f.value_type
    if t in ("string", "text"):
        s = f"E2E {f.id} {n}"
        return s[: f.max_length] if f.max_length else s
    if t == "email":
        return f"e2e{n}@example.cn"
    if t == "phone":
        return f"+86 571 8888 {n:04d}"
    if t == "url":
        return f"https://example.cn/{n}"
    if t == "select":
        return f.options[0].value if f.options else "x"
    if t == "multiselect":
        return [f.options[0].value] if f.options else []
    if t in ("integer", "decimal", "money", "percent"):
        lo = f.min if f.min is not None else 0
        v = max(lo, 1 if t == "integer" else 10)
        if f.max is not None:
            v = min(v, f.max)
        return str(v)
    if t == "date":
        return (dt.date.today() + dt.timedelta(days=30)).isoformat()
    if t == "datetime":
        return (dt.datetime.now() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    if t == "boolean":
        return "true"
    if t == "link" and store is not None:
        return str(ensure_record(store, actor, cfg, f.to)["id"])
    if t == "user" and actor is not None:
        return str(actor.id)
    return None


def ensure_record(store, actor, cfg, entity_id, n=1):
    """One record of `entity_id` (created with sample values of its required fields if none exists)."""
    from engine.query import ListRequest
    found = store.list(entity_id, ListRequest(filters=[], per_page=1), actor)["items"]
    if found:
        return found[0]
    e = cfg.entities[entity_id]
    data = {}
    for f in e.user_fields:
        if (f.required or f.value_type in ("email", "phone")) and f.writable and f.type != "table" \
                and not f.computed:
            data[f.id] = sample(f, n, store, actor, cfg)
    return store.create(entity_id, data, actor, mode="form")
