"""Database engines for SQLite and PostgreSQL from one URL, with transactions that behave.

On SQLite, pysqlite's own transaction handling does not put DDL inside a transaction and
upgrades read locks lazily (so two writers can deadlock). We take over: every transaction is an
explicit BEGIN, and `writing()` starts with BEGIN IMMEDIATE so writers queue on busy_timeout
instead of failing. Migrations are therefore all-or-nothing on both databases.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import event

from .errors import QueryTimeout


def statement_timeout_ms() -> int:
    """PostgreSQL: no statement of a request runs longer (CRM_STATEMENT_TIMEOUT_MS, default 30 s;
    0 turns it off). Migrations lift it for their own transaction."""
    try:
        return max(0, int(os.environ.get("CRM_STATEMENT_TIMEOUT_MS", "30000")))
    except ValueError:
        return 30000


def make_engine(url: str, **kw) -> sa.Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite"):
        kw.setdefault("connect_args", {}).update({"timeout": 30, "check_same_thread": False})
        engine = sa.create_engine(url, **kw)
        _tune_sqlite(engine)
        return engine
    kw.setdefault("pool_pre_ping", True)
    kw.setdefault("pool_size", 10)
    kw.setdefault("max_overflow", 20)
    # executemany goes to psycopg's pipelined executemany (one parse, many binds) instead of
    # SQLAlchemy's multi-VALUES text, which psycopg would split in Python for every batch
    kw.setdefault("use_insertmanyvalues", False)
    engine = sa.create_engine(url, **kw)
    timeout = statement_timeout_ms()
    if timeout:
        @event.listens_for(engine, "connect")
        def _timeout(dbapi_conn, _record):
            with dbapi_conn.cursor() as cur:
                cur.execute(f"SET statement_timeout = {int(timeout)}")
            dbapi_conn.commit()
    return engine


@contextmanager
def _timeouts():
    try:
        yield
    except sa.exc.OperationalError as e:
        if getattr(getattr(e, "orig", None), "sqlstate", None) == "57014":
            raise QueryTimeout(f"The database stopped this request after {statement_timeout_ms() / 1000:g} s: "
                               "narrow the filter, sort by an indexed field or search for a longer text.") from None
        raise


def _tune_sqlite(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA temp_store=MEMORY")        # sorts and temporary indexes off the disk
        cur.execute("PRAGMA cache_size=-32000")        # 32 MB of page cache per connection
        cur.execute("PRAGMA mmap_size=268435456")      # reads of a large database through the OS cache
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def is_sqlite(bind) -> bool:
    return bind.dialect.name == "sqlite"


@contextmanager
def writing(engine: sa.Engine):
    """One write transaction: commits whole or rolls back whole."""
    with _timeouts(), engine.connect() as conn:
        if is_sqlite(engine):
            conn = conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            yield conn


@contextmanager
def reading(engine: sa.Engine):
    with _timeouts(), engine.connect() as conn:
        yield conn
