"""An app on a fresh SQLite file with the UI test pack (every field type), and signed-in clients."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from platform_.auth import create_user, get_actor

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "config"
TOKEN_RX = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/ui.db")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(CONFIG))
    monkeypatch.setenv("ATTACHMENTS_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("SECRET_KEY", "ui-test-secret")
    from app import create_app
    app = create_app({"TESTING": True})
    rt = app.extensions["crm"]
    rt.ensure_schema()
    create_user(rt.engine, "admin", "admin-Passw0rd", roles=("admin",), full_name="Ada Admin")
    create_user(rt.engine, "sam", "sam-Passw0rd!", roles=("sales",), full_name="Sam Seller")
    yield app
    rt.engine.dispose()


class Client:
    """A test client that signs in through the login form and sends the CSRF token like the pages do."""

    def __init__(self, app, username=None, password=None):
        self.app = app
        self.c = app.test_client()
        self.token = None
        if username:
            self.login(username, password)

    def refresh_token(self, html=None):
        html = html or self.c.get("/login").get_data(as_text=True)
        m = TOKEN_RX.search(html)
        if m:
            self.token = m.group(1)
        return self.token

    def login(self, username, password):
        self.refresh_token()
        r = self.c.post("/login", data={"csrf_token": self.token, "username": username, "password": password})
        assert r.status_code == 302, r.get_data(as_text=True)[:500]
        self.refresh_token(self.c.get("/").get_data(as_text=True))
        return r

    def get(self, path, hx=False, **kw):
        headers = kw.pop("headers", {})
        if hx:
            headers["HX-Request"] = "true"
        return self.c.get(path, headers=headers, **kw)

    def post(self, path, data=None, hx=False, csrf=True, **kw):
        headers = kw.pop("headers", {})
        if hx:
            headers["HX-Request"] = "true"
        data = dict(data or {}) if not isinstance(data, list) else data
        if csrf:
            if isinstance(data, list):
                data = data + [("csrf_token", self.token)]
            else:
                data.setdefault("csrf_token", self.token)
        if isinstance(data, list):
            from werkzeug.datastructures import MultiDict
            data = MultiDict(data)
        return self.c.post(path, data=data, headers=headers, **kw)


@pytest.fixture
def admin(app):
    return Client(app, "admin", "admin-Passw0rd")


@pytest.fixture
def sam(app):
    return Client(app, "sam", "sam-Passw0rd!")


@pytest.fixture
def rt(app):
    return app.extensions["crm"]


@pytest.fixture
def admin_actor(rt):
    return get_actor(rt.engine, 1)


@pytest.fixture
def make(rt, admin_actor):
    """make('org', name=...) creates a record through the store as the admin."""
    def create(entity, **data):
        return rt.store.create(entity, data, admin_actor)
    return create
