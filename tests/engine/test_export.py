"""Export: the rows a list shows, streamed in pages; CSV that imports back to the same records;
XLSX that a spreadsheet reads; fields hidden from the reader absent."""
from __future__ import annotations

import datetime as dt
import io

import pytest

from engine import exporter
from engine.db import make_engine
from engine.importer import run_import
from engine.query import ListRequest
from tests.engine.conftest import ADMIN
from tests.engine.test_import import accounts, csv_bytes, make_store
from tests.conftest import FIXTURES

KEEP = ("name", "email", "level", "revenue", "since", "active", "tags")


def seed(store):
    rows = [["name", "email", "level", "revenue", "since", "active", "tags"]]
    rows += [[f"Round {i}", f"r{i}@x.cn", "high" if i % 2 else "low", f"{i}.25", f"2024-01-{i + 1:02d}",
              "true" if i % 3 else "false", "a,b" if i % 2 else ""] for i in range(12)]
    rows.append(["=cmd|' /C calc'!A0", "f@x.cn", "low", "1", "2024-02-01", "true", ""])
    res = run_import(run_store := store, "account", ADMIN, csv_bytes(rows), "seed.csv")
    assert res.created == 13 and res.errors == []
    return run_store


def export_csv(store, req=None, actor=ADMIN, page=5):
    fields = exporter.export_fields(store, "account", actor)
    rows = exporter.rows_of(store, "account", req or ListRequest(filters=[]), actor, fields, page=page)
    return b"".join(exporter.csv_chunks([f.id for f in fields], rows))


def test_round_trip_import_export_import_is_equal(store_pair):
    a, b = store_pair
    seed(a)
    data = export_csv(a)
    assert data.startswith(b"\xef\xbb\xbf") and b"'=cmd" in data      # the formula neutralised
    res = run_import(b, "account", ADMIN, data, "export.csv")
    assert res.created == 13 and res.errors == [], res.errors
    pick = lambda recs: [{k: r[k] for k in KEEP} for r in recs]       # noqa: E731
    assert pick(accounts(a)) == pick(accounts(b))


def test_export_follows_filters_and_pages(store_pair):
    a, _b = store_pair
    seed(a)
    req = ListRequest(filters=[("level", "eq", "high")])
    lines = export_csv(a, req, page=2).decode("utf-8-sig").strip().splitlines()
    assert len(lines) == 1 + 6


def test_xlsx_is_readable(store_pair, tmp_path):
    a, _b = store_pair
    seed(a)
    fields = exporter.export_fields(a, "account", ADMIN)
    path = exporter.xlsx_file([f.id for f in fields], exporter.rows_of(a, "account", ListRequest(filters=[]), ADMIN,
                                                                      fields, typed=True), "Accounts")
    from openpyxl import load_workbook
    ws = load_workbook(path, read_only=True).worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    head = rows[0]
    assert len(rows) == 14 and head[:2] == ("id", "name")
    first = dict(zip(head, rows[1]))
    assert first["name"] == "Round 0" and first["since"] == dt.datetime(2024, 1, 1) and first["revenue"] == 0.25
    assert any(str(r[1]).startswith("'=cmd") for r in rows)            # never a live formula


def test_hidden_fields_are_absent(store_pair):
    a, _b = store_pair
    seed(a)
    base = a.policy

    class HideEmail:
        def __getattr__(self, name):
            return getattr(base, name)

        def hidden_fields(self, entity, actor):
            return frozenset({"email"})
    a.policy = HideEmail()
    text = export_csv(a).decode("utf-8-sig")
    assert "email" not in text.splitlines()[0] and "r1@x.cn" not in text
    a.policy = base


@pytest.fixture
def store_pair(engine_db, tmp_path):
    other = make_engine(f"sqlite:///{tmp_path}/other.db")
    yield make_store(engine_db, FIXTURES / "mini"), make_store(other, FIXTURES / "mini")
    other.dispose()


def test_export_needs_the_permission(store_pair):
    from engine.errors import Forbidden
    a, _b = store_pair
    base = a.policy

    class NoExport:
        def __getattr__(self, name):
            return getattr(base, name)

        def check(self, entity, action, actor, record=None):
            if action == "export":
                raise Forbidden("no export")
    a.policy = NoExport()
    with pytest.raises(Forbidden):
        list(exporter.records(a, "account", ListRequest(filters=[]), ADMIN))
    a.policy = base
    assert io.BytesIO(export_csv(a)).read().decode("utf-8-sig").startswith("id,")
