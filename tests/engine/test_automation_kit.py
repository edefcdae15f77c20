"""Shared helpers of the automation tests (E1 E3 E5 B4 B6 C3 C6 C8 A5): an engine stack with the
automation service, users, and readers for the side tables (notifications, timers, outbox, SLA).

The module holds no tests; the test_automation_*.py modules import `stack` (a fixture factory
over the parametrized `db_url`, so each test runs on SQLite and PostgreSQL, and is skipped by it
when no PostgreSQL server is reachable) and the helpers.

Speed: migrating the whole default pack is ~200 DDL statements. Each config folder is therefore
migrated once per test session: on SQLite into a template file that each test copies into its
own `db_url` file; on PostgreSQL into one schema per config that each test empties first (DELETE
FROM every table, sequences restarted, so ids and auto-numbers start again at 1) — the tests
never share rows. A config written by the test itself (tmp_path) gets the fresh `db_url`
database as before.
"""
from __future__ import annotations

import datetime as dt
import functools
import shutil
import sqlite3
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine import clock
from engine.actor import Actor
from engine.automation.service import Automation
from engine.automation.tables import outbox, sla_clocks
from engine.db import make_engine
from engine.loader import load_config
from engine.migrator import Migrator
from engine.policy import AdminDeletesOnly
from engine.statemachine import Workflows
from engine.store import RecordStore
from engine.systables import users
from engine.wftables import history, notifications, tasks, timers
from tests.conftest import FIXTURES, ROOT

UTC = dt.timezone.utc
SH = dt.timezone(dt.timedelta(hours=8))
DEFAULT = ROOT / "config"


def sh(text: str) -> dt.datetime:
    """A wall time in Asia/Shanghai (no DST there): sh("2026-11-20 17:30")."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=SH)


def naive_utc(text: str) -> dt.datetime:
    """The naive-UTC form the database stores for a Shanghai wall time."""
    return clock.to_utc_naive(sh(text))


def iso(text: str) -> str:
    """The ISO form sla_items gives for a Shanghai wall time."""
    return sh(text).isoformat()


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based number of the nth line of `text` containing `needle`."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    assert len(hits) >= nth, f"{needle!r} not found {nth} time(s) in the YAML written by the test"
    return hits[nth - 1]


@functools.lru_cache(maxsize=None)
def _config(path: str):
    return load_config(path)


class _Templates:
    """Config folders migrated once per session: {(dialect, config dir): sqlite file or pg schema}."""

    def __init__(self, tmp_factory):
        self.tmp_factory = tmp_factory
        self.made: dict = {}
        self.pg_schemas: list[str] = []

    def sqlite_file(self, config_dir: str) -> Path:
        key = ("sqlite", config_dir)
        if key not in self.made:
            path = self.tmp_factory.mktemp("tpl") / "template.db"
            eng = make_engine(f"sqlite:///{path}")
            cfg = _config(config_dir)
            Migrator(eng, cfg).apply()
            eng.dispose()
            con = sqlite3.connect(path)            # one self-contained file to copy: no -wal beside it
            con.execute("PRAGMA journal_mode=DELETE")
            con.close()
            self.made[key] = path
        return self.made[key]

    def pg_schema(self, config_dir: str) -> tuple[str, list[str]]:
        key = ("postgresql", config_dir)
        if key not in self.made:
            from tests.conftest import PG_BASE, pg_schema_url
            schema = f"t_auto_{uuid.uuid4().hex[:10]}"
            admin = sa.create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            admin.dispose()
            self.pg_schemas.append(schema)
            url = pg_schema_url(schema)
            eng = make_engine(url)
            m = Migrator(eng, _config(config_dir))
            m.apply()
            with eng.connect() as c:
                ordered = sa.inspect(c).get_sorted_table_and_fkc_names()      # parents first (real FKs)
                sequences = [r[0] for r in c.execute(sa.text(
                    "SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = current_schema()"))]
            eng.dispose()
            tables = [t for t, _fks in ordered if t]
            cycles = [fk for t, fks in ordered if t is None for fk in fks]
            if cycles:          # no order deletes them all: the slower TRUNCATE
                emptying = ["TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"]
            else:               # DELETE and RESTART: much cheaper than TRUNCATE for a few rows
                emptying = ([f'DELETE FROM "{t}"' for t in reversed(tables)]
                            + [f'ALTER SEQUENCE "{q}" RESTART WITH 1' for q in sequences])
            self.made[key] = (url, emptying)
        return self.made[key]

    def drop(self):
        if not self.pg_schemas:
            return
        from tests.conftest import PG_BASE
        admin = sa.create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            for schema in self.pg_schemas:
                c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def automation_templates(tmp_path_factory):
    t = _Templates(tmp_path_factory)
    yield t
    t.drop()


class Stack:
    """One database with a config applied, its store, workflows and automation service.
    migrate=False: the database already has the config's tables (a template)."""

    def __init__(self, url: str, config_dir: Path, migrate: bool = True, emptying=()):
        self.url = url
        self.eng = make_engine(url)
        self.cfg = _config(str(config_dir))
        m = Migrator(self.eng, self.cfg)
        if migrate:
            m.apply()
        if emptying:
            with self.eng.begin() as c:
                for statement in emptying:
                    c.execute(sa.text(statement))
        self.store = RecordStore(self.eng, self.cfg, m.metadata, None, AdminDeletesOnly())
        self.wfs = Workflows(self.store)
        self.wfs.register_definitions()
        self.auto = Automation(self.store, self.wfs)
        self.admin = self.user("root", ["admin"])

    @property
    def is_pg(self) -> bool:
        return self.eng.dialect.name == "postgresql"

    def close(self):
        self.auto.close()
        self.eng.dispose()

    # ---- people ------------------------------------------------------------------------
    def user(self, name, roles, active=True, email=None, language=None) -> Actor:
        with self.eng.begin() as c:
            uid = c.execute(users.insert().values(username=name, roles=list(roles), active=active, email=email,
                                                  language=language, full_name=name)).inserted_primary_key[0]
        return Actor(id=uid, username=name, roles=tuple(roles), language=language or "en")

    def deactivate(self, actor: Actor):
        with self.eng.begin() as c:
            c.execute(users.update().where(users.c.id == actor.id).values(active=False))

    # ---- reading side tables -----------------------------------------------------------
    def rows(self, query) -> list[dict]:
        with self.eng.connect() as c:
            return [dict(r) for r in c.execute(query).mappings()]

    def notes(self, user_id=None, contains: str | None = None, record_id=None) -> list[dict]:
        q = sa.select(notifications).order_by(notifications.c.id)
        if user_id is not None:
            q = q.where(notifications.c.user_id == user_id)
        if record_id is not None:
            q = q.where(notifications.c.record_id == record_id)
        out = self.rows(q)
        return [n for n in out if contains is None or contains in n["message"]]

    def timers(self, entity=None, record_id=None, status=None) -> list[dict]:
        q = sa.select(timers).order_by(timers.c.id)
        if entity is not None:
            q = q.where(timers.c.entity == entity)
        if record_id is not None:
            q = q.where(timers.c.record_id == record_id)
        if status is not None:
            q = q.where(timers.c.status == status)
        return self.rows(q)

    def outbox(self, kind=None) -> list[dict]:
        q = sa.select(outbox).order_by(outbox.c.id)
        if kind is not None:
            q = q.where(outbox.c.kind == kind)
        return self.rows(q)

    def tasks(self, entity=None, record_id=None) -> list[dict]:
        q = sa.select(tasks).order_by(tasks.c.id)
        if entity is not None:
            q = q.where(tasks.c.entity == entity)
        if record_id is not None:
            q = q.where(tasks.c.record_id == record_id)
        return self.rows(q)

    def history(self, entity, record_id, event=None) -> list[dict]:
        q = sa.select(history).where(history.c.entity == entity, history.c.record_id == record_id) \
            .order_by(history.c.id)
        if event is not None:
            q = q.where(history.c.event == event)
        return self.rows(q)

    def clocks(self, entity, record_id) -> dict:
        rows = self.rows(sa.select(sla_clocks).where(sla_clocks.c.entity == entity,
                                                     sla_clocks.c.record_id == record_id))
        return {r["target"]: r for r in rows}

    # ---- doing things at an instant -----------------------------------------------------
    def at(self, when: dt.datetime):
        return clock.frozen(when)

    def sla(self, entity, rid, when: dt.datetime) -> dict:
        """{target: item} of sla_items as seen at `when`."""
        with clock.frozen(when):
            return {i["target"]: i for i in self.auto.sla_items(entity, rid, self.admin)}

    def move(self, entity, rid, transition, actor, when: dt.datetime, comment=None) -> dict:
        with clock.frozen(when):
            return self.wfs.execute(entity, rid, transition, actor, comment=comment)["record"]


@pytest.fixture
def stack(db_url, tmp_path, automation_templates):
    """stack(config_dir=default pack) -> Stack on this test's database (closed afterwards).
    One per test."""
    made: list[Stack] = []

    def build(config_dir: Path = DEFAULT) -> Stack:
        assert not made, "one stack per test"
        config_dir = Path(config_dir)
        shared = config_dir == DEFAULT or FIXTURES in config_dir.parents
        if not shared:
            s = Stack(db_url, config_dir)
        elif db_url.startswith("sqlite"):
            target = Path(db_url[len("sqlite:///"):])
            shutil.copyfile(automation_templates.sqlite_file(str(config_dir)), target)
            s = Stack(db_url, config_dir, migrate=False)
        else:
            url, emptying = automation_templates.pg_schema(str(config_dir))
            s = Stack(url, config_dir, migrate=False, emptying=emptying)
        made.append(s)
        return s

    yield build
    for s in made:
        s.close()


@pytest.fixture
def company_zone():
    """today() in rules is the company's date (CRM_TIMEZONE): Asia/Shanghai for these tests."""
    clock.set_timezone("Asia/Shanghai")
    yield
    clock.set_timezone(None)


def copy_config(tmp_path: Path, source: Path = DEFAULT) -> Path:
    """A writable copy of a config folder (the default pack unless told)."""
    dst = tmp_path / f"cfg-{uuid.uuid4().hex[:6]}"
    shutil.copytree(source, dst)
    return dst


__all__ = ["FIXTURES", "ROOT", "DEFAULT", "Stack", "stack", "company_zone", "sh", "naive_utc", "iso",
           "line_of", "copy_config", "UTC", "SH", "automation_templates"]
