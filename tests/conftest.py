"""Shared fixtures: databases (SQLite file and a throw-away PostgreSQL schema), configs, apps."""
from __future__ import annotations

import os
import shutil
import gc
import uuid
import warnings
from pathlib import Path

import pytest
import sqlalchemy as sa

warnings.filterwarnings("ignore", message=".*does \\*not\\* support Decimal objects natively.*")

ROOT = Path(__file__).resolve().parent.parent
# a fixed key for encrypted fields, so tests write no key file into the work tree's instance/
os.environ.setdefault("CRM_ENCRYPTION_KEY", "dGVzdC1rZXktMzItYnl0ZXMtbG9uZy0xMjM0NTY3OCE=")
FIXTURES = ROOT / "tests" / "fixtures" / "config"
PG_BASE = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_available() -> str | None:
    try:
        eng = sa.create_engine(PG_BASE)
        with eng.connect() as c:
            c.execute(sa.text("select 1"))
        eng.dispose()
        return None
    except Exception as e:  # noqa: BLE001 - any failure means "no server"
        return f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"


_PG_PROBLEM = _pg_available()


def pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_BASE else "?"
    return f"{PG_BASE}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A fresh empty database: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/test.db"
        return
    if _PG_PROBLEM:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {_PG_PROBLEM}")
        pytest.skip(f"PostgreSQL server not reachable at {PG_BASE} ({_PG_PROBLEM})")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield pg_schema_url(schema)
    finally:
        gc.collect()            # pools of engines the test left behind close their idle connections
        with admin.connect() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def config_copy(tmp_path):
    """Copy a fixture config tree to tmp so a test can edit it: config_copy('mini') -> Path."""
    def make(name="mini"):
        dst = tmp_path / f"cfg-{name}-{uuid.uuid4().hex[:6]}"
        shutil.copytree(FIXTURES / name, dst)
        return dst
    return make
