"""An app on the daily-work test pack (tests/ui/daily_config): a seller, a second seller, a boss and
an admin, signed in through the login form (tests/ui/conftest.Client)."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.actor import Actor
from platform_.auth import create_user, find_user
from tests.ui.conftest import Client

CONFIG = Path(__file__).resolve().parent / "daily_config"
PEOPLE = {"admin": ("admin",), "sid": ("seller",), "sue": ("seller",), "bo": ("boss",)}
NAMES = {"admin": "Ada Admin", "sid": "Sid Seller", "sue": "Sue Seller", "bo": "Bo Boss"}


@pytest.fixture
def daily(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/daily.db")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(CONFIG))
    monkeypatch.setenv("ATTACHMENTS_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("SECRET_KEY", "daily-test")
    from app import create_app
    app = create_app({"TESTING": True})
    rt = app.extensions["crm"]
    assert rt.store is not None, rt.problems
    rt.ensure_schema()
    for name, roles in PEOPLE.items():
        create_user(rt.engine, name, f"{name}-Passw0rd!", roles=roles, full_name=NAMES[name], language="en")
    yield app
    rt.engine.dispose()


def actor(app, name) -> Actor:
    row = find_user(app.extensions["crm"].engine, name)
    return Actor(id=row["id"], username=name, roles=tuple(PEOPLE[name]), full_name=NAMES[name])


def client(app, name) -> Client:
    return Client(app, name, f"{name}-Passw0rd!")
