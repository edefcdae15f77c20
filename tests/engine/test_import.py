"""Import of CSV (UTF-8, BOM, GBK) and XLSX files through the store: mapping by labels, bad rows by
line, dry run, duplicate rules, key upserts, and resuming a killed import without doubling rows."""
from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
import sqlalchemy as sa

from engine import importlog
from engine.errors import BadRequest, Forbidden
from engine.importer import run_import
from engine.loader import load_config
from engine.migrator import Migrator
from engine.query import ListRequest
from engine.store import RecordStore
from tests.engine.conftest import ADMIN


def make_store(engine_db, cfg_dir):
    cfg = load_config(cfg_dir)
    m = Migrator(engine_db, cfg)
    m.apply()
    return RecordStore(engine_db, cfg, m.metadata)


@pytest.fixture
def store(engine_db, config_copy):
    d = config_copy("mini")
    path = d / "entities" / "account.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "duplicates: {match: [[email], [name]], on_duplicate: skip}\n",
                    encoding="utf-8")
    return make_store(engine_db, d)


def csv_bytes(rows, encoding="utf-8"):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode(encoding)


def accounts(store):
    return store.list("account", ListRequest(filters=[], per_page=500, sort="id"), ADMIN)["items"]


def test_gbk_csv_with_chinese_labels_reports_bad_rows_by_line(store):
    rows = [["名称", "Email", " LEVEL"]] + [[f"巴尔公司{i}", f"a{i}@x.cn", "高"] for i in range(5)]
    rows[3] = ["坏邮箱公司", "not-an-email", "高"]          # file line 4
    rows.append(["", "noname@x.cn", "low"])                 # file line 7
    res = run_import(store, "account", ADMIN, csv_bytes(rows, "gbk"), "a.csv")
    assert (res.created, res.updated) == (4, 0)
    assert {(e["line"], e["field"]) for e in res.errors} == {(4, "email"), (7, "name")}
    got = accounts(store)
    assert [a["name"] for a in got] == ["巴尔公司0", "巴尔公司1", "巴尔公司3", "巴尔公司4"]
    assert {a["level"] for a in got} == {"high"}             # the option's Chinese label


def test_utf8_bom_csv_and_unknown_columns(store):
    data = b"\xef\xbb\xbf" + csv_bytes([["name", "email", "favourite colour"], ["BOM Ltd", "b@x.cn", "blue"]])
    res = run_import(store, "account", ADMIN, data, "b.csv")
    assert res.created == 1 and res.unknown_columns == ["favourite colour"]
    assert accounts(store)[0]["name"] == "BOM Ltd"


def test_xlsx_with_dates_formulas_and_numbers(store):
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.append(["Name", "email", "since", "revenue"])
    ws.append(["=1+1", "f@x.cn", dt.datetime(2024, 3, 5), 1200.5])
    ws.append(["Slash date", "s@x.cn", "2024/03/06", "7"])
    ws.append(["Bad date", "d@x.cn", "05-03-2024", "7"])
    buf = io.BytesIO()
    wb.save(buf)
    res = run_import(store, "account", ADMIN, buf.getvalue(), "c.xlsx")
    assert res.created == 2 and [(e["line"], e["field"]) for e in res.errors] == [(4, "since")]
    got = {a["name"]: a for a in accounts(store)}
    assert got["=1+1"]["since"] == dt.date(2024, 3, 5)      # the formula stays text
    assert str(got["=1+1"]["revenue"]) == "1200.50"
    assert got["Slash date"]["since"] == dt.date(2024, 3, 6)


def test_dry_run_changes_nothing(store, engine_db):
    rows = [["name", "email"], ["Dry One", "d1@x.cn"], ["Dry Two", "bad"]]
    res = run_import(store, "account", ADMIN, csv_bytes(rows), "d.csv", dry_run=True)
    assert res.created == 1 and [e["line"] for e in res.errors] == [3]
    assert accounts(store) == []
    with engine_db.connect() as c:          # nor the auto-number series
        assert c.execute(sa.text("select count(*) from sys_series")).scalar() == 0


@pytest.mark.parametrize("action", ["skip", "update", "flag"])
def test_duplicates_are_never_doubled(engine_db, config_copy, action):
    d = config_copy("mini")
    p = d / "entities" / "account.yaml"
    p.write_text(p.read_text(encoding="utf-8") + f"duplicates: {{match: [[email], [name]], on_duplicate: {action}}}\n",
                 encoding="utf-8")
    store = make_store(engine_db, d)
    store.create("account", {"name": "Old Name", "email": "same@x.cn"}, ADMIN)
    rows = [["name", "email", "revenue"], ["New Name", "SAME@x.cn", "5"], ["Fresh", "fresh@x.cn", "1"],
            ["fresh", "other@x.cn", "2"]]
    res = run_import(store, "account", ADMIN, csv_bytes(rows), "dup.csv")
    got = accounts(store)
    assert len(got) == 2 and res.created == 1                 # "fresh" is "Fresh" again (the name, any case)
    if action == "skip":
        assert res.skipped == 2 and got[0]["name"] == "Old Name"
    elif action == "update":
        assert res.updated == 2 and got[0]["name"] == "New Name" and str(got[1]["revenue"]) == "2.00"
    else:
        assert [e["line"] for e in res.errors] == [2, 4] and "duplicate of" in res.errors[0]["message"]
        assert got[0]["name"] == "Old Name"


def test_key_upsert_updates_instead_of_creating(store):
    store.create("account", {"name": "Keyed", "email": "k1@x.cn"}, ADMIN)
    rows = [["name", "email"], ["Keyed", "k2@x.cn"], ["Unkeyed", "u@x.cn"]]
    res = run_import(store, "account", ADMIN, csv_bytes(rows), "k.csv", key="name")
    assert (res.created, res.updated, res.errors) == (1, 1, [])
    assert [(a["name"], a["email"]) for a in accounts(store)] == [("Keyed", "k2@x.cn"), ("Unkeyed", "u@x.cn")]
    with pytest.raises(BadRequest, match="revenue"):
        run_import(store, "account", ADMIN, csv_bytes(rows), "k.csv", key="revenue")


def test_a_killed_import_resumes_without_duplicates(store, engine_db):
    rows = [["name", "email"]] + [[f"Row {i:03d}", f"r{i}@x.cn"] for i in range(25)]
    rows[8] = ["Bad row", "nope"]
    data = csv_bytes(rows)

    class Killed(Exception):
        pass

    def kill_after_two(res):
        if res.rows_done >= 10:
            raise Killed()
    with pytest.raises(Killed):
        run_import(store, "account", ADMIN, data, "big.csv", batch_size=5, on_batch=kill_after_two)
    assert len(accounts(store)) == 9                            # two whole batches, one bad row
    res = run_import(store, "account", ADMIN, data, "big.csv", batch_size=5)
    got = accounts(store)
    assert len(got) == 24 == res.created and len({a["name"] for a in got}) == 24
    assert [e["line"] for e in res.errors] == [9]
    assert importlog.get(engine_db, res.import_id)["status"] == "done"


def test_links_resolve_by_title_and_bad_files_are_refused(engine_db):
    from tests.conftest import FIXTURES
    store = make_store(engine_db, FIXTURES / "mini")
    acc = store.create("account", {"name": "Link Target", "email": "t@x.cn"}, ADMIN)
    rows = [["name", "account", "amount"], ["Deal A", "Link Target", "10"], ["Deal B", acc["code"], "5"],
            ["Deal C", "Nobody", "1"]]
    res = run_import(store, "deal", ADMIN, csv_bytes(rows), "deals.csv")
    assert res.created == 2 and res.errors[0]["line"] == 4 and res.errors[0]["field"] == "account"
    for data, name, why in ((b"%PDF-1.4 xx", "x.pdf", "not a CSV or XLSX"), (b"", "e.csv", "empty"),
                            (b"\xff\xfe\x00\x00\x81\x30", "u.csv", "binary data"),
                            (csv_bytes([["who", "what"], ["a", "b"]]), "h.csv", "header"),
                            (b"PK\x03\x04broken", "x.xlsx", "cannot be read")):
        with pytest.raises(BadRequest, match=why):
            run_import(store, "account", ADMIN, data, name)
    with pytest.raises(BadRequest, match="limit"):
        run_import(store, "account", ADMIN, csv_bytes([["name"], ["x" * 2000]]), "big.csv", max_mb=0.001)
    assert len(accounts(store)) == 1


def test_import_needs_the_import_permission(store):
    from engine.actor import Actor

    base = store.policy

    class NoImport:
        def __getattr__(self, name):
            return getattr(base, name)

        def check(self, entity, action, actor, record=None):
            if action == "import":
                raise Forbidden("You may not import accounts.")
    store.policy = NoImport()
    with pytest.raises(Forbidden):
        run_import(store, "account", Actor(id=None, username="x", roles=("staff",)),
                   csv_bytes([["name"], ["A"]]), "a.csv")
    store.policy = base
    assert accounts(store) == []
