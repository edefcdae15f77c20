"""At 1366 × 900, in English and in Chinese, no list page and no record page of the default pack
scrolls sideways: the page is not wider than the window and no table is wider than its container.

A server of its own (the default pack with demo data, so long names and many columns are on the
pages), one browser page reused for every address.
"""
from __future__ import annotations

import os
import threading

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import ADMIN, shot

pytestmark = pytest.mark.e2e
WIDE = """() => ({
  page: document.documentElement.scrollWidth,
  inner: window.innerWidth,
  tables: [...document.querySelectorAll('table')].map(t => ({
      id: (t.closest('section,[id]') || {}).id || t.className,
      over: Math.round(t.getBoundingClientRect().width - t.parentElement.clientWidth)}))
      .filter(t => t.over > 1),
})"""


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory, chromium_path):
    """(base url, config) of a server on the default pack with 30 records' worth of demo data."""
    from werkzeug.serving import make_server

    from engine import demo
    from engine.loader import load_config
    from engine.errors import ConfigInvalid
    try:
        load_config(ROOT / "config")
    except ConfigInvalid as e:
        pytest.fail(f"the default pack does not load: {e}")
    tmp = tmp_path_factory.mktemp("fit")
    keys = ("DATABASE_URL", "CRM_CONFIG_DIR", "ATTACHMENTS_DIR", "SECRET_KEY")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(DATABASE_URL=f"sqlite:///{tmp}/fit.db", CRM_CONFIG_DIR=str(ROOT / "config"),
                      ATTACHMENTS_DIR=str(tmp / "files"), SECRET_KEY="fit-secret")
    try:
        from app import create_app
        app = create_app({"TESTING": False})
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    rt = app.extensions["crm"]
    rt.ensure_schema()
    from platform_.auth import create_user
    create_user(rt.engine, ADMIN[0], ADMIN[1], roles=("admin",), full_name="Ada Admin", language="en")
    rt.workflows.register_definitions()
    demo.generate(rt.engine, rt.config, rt.store.metadata, 30, seed=1)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", rt
    finally:
        server.shutdown()
        rt.engine.dispose()


def test_lists_and_records_fit_1366_in_both_languages(browser, demo_server):
    base, rt = demo_server
    from engine.query import ListRequest
    from platform_.auth import get_actor
    admin = get_actor(rt.engine, 1)
    ctx = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US", bypass_csp=True)
    ctx.set_default_timeout(15_000)
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(base + "/login")
    pg.fill("#username", ADMIN[0])
    pg.fill("#password", ADMIN[1])
    pg.locator("form").filter(has=pg.locator("#password")).locator("[type=submit]").first.click()
    pg.wait_for_load_state("networkidle")
    assert "/login" not in pg.url
    addresses = []
    for e in rt.config.top_entities:
        addresses.append(f"/e/{e.id}")
        found = rt.store.list(e.id, ListRequest(filters=[], per_page=1), admin)["items"]
        if found:
            addresses.append(f"/e/{e.id}/{found[0]['id']}")
    wide = []
    for lang in ("en", "zh"):
        for path in addresses:
            resp = pg.goto(f"{base}{path}?lang={lang}")
            assert resp is not None and resp.status == 200, (path, resp and resp.status)
            m = pg.evaluate(WIDE)
            if m["page"] > m["inner"]:
                wide.append(f"{path} ({lang}): page {m['page']} px in a {m['inner']} px window")
            wide += [f"{path} ({lang}): table {t['id']} {t['over']} px wider than its container" for t in m["tables"]]
        if lang == "zh":
            pg.goto(f"{base}/e/opportunity?lang=zh")
            shot(pg, "list-fit-zh")
        else:
            pg.goto(f"{base}/e/contract?lang=en")
            shot(pg, "list-fit-en")
    ctx.close()
    assert not wide, "\n".join(wide)
    assert errors == [], errors
