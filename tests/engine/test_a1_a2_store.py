"""A1/A2 and the record store, on SQLite and PostgreSQL: real tables, every field type, validation."""
import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from engine.errors import BadRequest, Conflict, NotFound, ValidationFailed
from engine.query import parse_args
from tests.engine.conftest import ADMIN


class Args(dict):
    def getlist(self, k):
        v = self[k]
        return v if isinstance(v, list) else [v]


def lst(store, entity, **args):
    return store.list(entity, parse_args(store.entity(entity), Args(args)), ADMIN)


def test_a1_entities_become_real_tables(mini_store):
    insp = sa.inspect(mini_store.engine)
    tables = set(insp.get_table_names())
    assert {"e_account", "e_deal", "e_deal_line", "sys_user", "sys_token"} <= tables
    cols = {c["name"] for c in insp.get_columns("e_account")}
    assert {"id", "version", "created_at", "created_by", "updated_at", "updated_by", "owner", "deleted_at",
            "name", "email", "code", "level", "revenue", "since", "active", "tags"} <= cols
    assert {"parent_id", "idx", "item", "quantity", "price", "amount"} <= {c["name"] for c in insp.get_columns("e_deal_line")}
    fks = insp.get_foreign_keys("e_deal")
    assert any(fk["referred_table"] == "e_account" and fk["constrained_columns"] == ["account"] for fk in fks)
    ix = {i["name"]: i for i in insp.get_indexes("e_account")}
    assert ix["ix_e_account_name_deleted_at_id"]["column_names"] == ["name", "deleted_at", "id"]   # J1: a list's range
    assert ix["uq_e_account_code"]["unique"]


def test_a2_values_round_trip(mini_store):
    rec = mini_store.create("account", {"name": "宁波海天贸易", "email": "buy@haitian.example.cn", "revenue": "1234.565",
                                        "tags": ["a", "c"], "active": False, "level": "high"}, ADMIN)
    got = mini_store.get("account", rec["id"], ADMIN)
    assert got["name"] == "宁波海天贸易"
    assert got["revenue"] == Decimal("1234.57")          # money: 2 decimals, half up
    assert got["tags"] == ["a", "c"]
    assert got["active"] is False
    assert got["since"] == dt.date.today()               # default: "today()"
    assert got["code"] == f"ACC-{dt.date.today().year}-0001"
    assert got["version"] == 1 and got["deleted_at"] is None


def test_a2_autonumber_series_increments(mini_store):
    codes = [mini_store.create("account", {"name": f"A{i}", "email": f"a{i}@x.cn"}, ADMIN)["code"] for i in range(3)]
    assert [c[-4:] for c in codes] == ["0001", "0002", "0003"]


def test_a2_all_field_errors_reported_at_once(mini_store):
    with pytest.raises(ValidationFailed) as info:
        mini_store.create("account", {"email": "not-an-email", "revenue": -5, "level": "medium",
                                      "tags": ["z"], "since": "2026-13-01", "nope": 1}, ADMIN)
    f = info.value.fields
    assert set(f) >= {"name", "email", "revenue", "level", "tags", "since", "nope"}
    assert f["name"] == "is required" and f["nope"] == "unknown field"
    assert "at least 0" in f["revenue"]


def test_a2_length_limit(mini_store):
    with pytest.raises(ValidationFailed) as info:
        mini_store.create("account", {"name": "x" * 101, "email": "a@b.cn"}, ADMIN)
    assert "at most 100" in info.value.fields["name"]


def test_a2_rule_message_in_users_language(mini_store):
    from dataclasses import replace
    with pytest.raises(ValidationFailed) as info:
        mini_store.create("account", {"name": "No contact"}, replace(ADMIN, language="zh"))
    assert "请填写邮箱或收入" in info.value.fields.values()


def test_a2_link_integrity(mini_store):
    acc = mini_store.create("account", {"name": "A", "email": "a@b.cn"}, ADMIN)
    with pytest.raises(ValidationFailed) as info:
        mini_store.create("deal", {"name": "D", "account": 999}, ADMIN)
    assert "does not exist" in info.value.fields["account"]
    mini_store.delete("account", acc["id"], ADMIN)
    with pytest.raises(ValidationFailed):
        mini_store.create("deal", {"name": "D", "account": acc["id"]}, ADMIN)   # deleted counts as missing


def test_a2_child_rows_and_computed_fields(mini_store):
    acc = mini_store.create("account", {"name": "A", "email": "a@b.cn", "level": "high"}, ADMIN)
    deal = mini_store.create("deal", {"name": "D", "account": acc["id"], "probability": 40, "lines": [
        {"item": "pump", "quantity": 2, "price": "10.50"}, {"item": "valve", "quantity": 3, "price": 1}]}, ADMIN)
    assert [l["amount"] for l in deal["lines"]] == [Decimal("21.00"), Decimal("3.00")]
    assert deal["amount"] == Decimal("24.00")
    assert deal["weighted"] == Decimal("9.60")
    assert deal["account_level"] == "high"             # a linked record's field in a computed field
    assert deal["stage"] == "open"                     # the workflow's initial state
    upd = mini_store.update("deal", deal["id"], {"lines": [{"item": "pump", "quantity": 1, "price": 5}],
                                                 "version": deal["version"]}, ADMIN)
    assert upd["amount"] == Decimal("5.00") and len(upd["lines"]) == 1
    with pytest.raises(ValidationFailed) as info:
        mini_store.create("deal", {"name": "D", "account": acc["id"], "lines": [{"quantity": "x"}]}, ADMIN)
    assert set(info.value.fields) == {"lines.0.quantity", "lines.0.item"}


def test_a2_state_and_computed_fields_are_not_client_writable(mini_store):
    acc = mini_store.create("account", {"name": "A", "email": "a@b.cn"}, ADMIN)
    deal = mini_store.create("deal", {"name": "D", "account": acc["id"], "stage": "won", "amount": 999}, ADMIN)
    assert deal["stage"] == "open" and deal["amount"] == Decimal("0.00")


def test_h7_stale_version_is_a_conflict(mini_store):
    acc = mini_store.create("account", {"name": "A", "email": "a@b.cn"}, ADMIN)
    mini_store.update("account", acc["id"], {"name": "B", "version": 1}, ADMIN)
    with pytest.raises(Conflict) as info:
        mini_store.update("account", acc["id"], {"name": "C", "version": 1}, ADMIN)
    assert info.value.current["name"] == "B"
    assert mini_store.get("account", acc["id"], ADMIN)["name"] == "B"


def test_soft_delete_and_restore(mini_store):
    acc = mini_store.create("account", {"name": "A", "email": "a@b.cn"}, ADMIN)
    mini_store.delete("account", acc["id"], ADMIN)
    with pytest.raises(NotFound):
        mini_store.get("account", acc["id"], ADMIN)
    assert lst(mini_store, "account")["total"] == 0
    assert lst(mini_store, "account", deleted="only")["total"] == 1
    back = mini_store.restore("account", acc["id"], ADMIN)
    assert back["deleted_at"] is None and lst(mini_store, "account")["total"] == 1


def test_list_filters_sort_search_pages(mini_store):
    for i, (name, rev, level) in enumerate([("杭州尚祈", 100, "high"), ("Beta Co", 200, "low"),
                                            ("Gamma Co", 300, "low"), ("Delta 100%_x", 50, "high")]):
        mini_store.create("account", {"name": name, "email": f"u{i}@x.cn", "revenue": rev, "level": level,
                                      "tags": ["a"] if i % 2 else ["b"]}, ADMIN)
    assert [r["name"] for r in lst(mini_store, "account", sort="-revenue")["items"]][:2] == ["Gamma Co", "Beta Co"]
    assert lst(mini_store, "account", level="high")["total"] == 2
    assert lst(mini_store, "account", revenue__gte="100", revenue__lt="300")["total"] == 2
    assert lst(mini_store, "account", level__in="high,low")["total"] == 4
    assert lst(mini_store, "account", level__ne="high")["total"] == 2
    assert lst(mini_store, "account", name__contains="co")["total"] == 2      # case-insensitive
    assert lst(mini_store, "account", q="杭州")["total"] == 1                  # Chinese substring
    assert lst(mini_store, "account", q="100%_")["total"] == 1                 # wildcards are literal
    assert lst(mini_store, "account", tags="a")["total"] == 2
    page = lst(mini_store, "account", sort="name", per_page="3", page="2")
    assert page["total"] == 4 and len(page["items"]) == 1 and page["page"] == 2
    with pytest.raises(BadRequest):
        lst(mini_store, "account", nope="1")
    with pytest.raises(BadRequest):
        lst(mini_store, "account", revenue__gte="lots")
    with pytest.raises(BadRequest):
        lst(mini_store, "account", sort="tags")


def test_unique_fields(tmp_path, config_copy, engine_db):
    from engine.loader import load_config
    from engine.migrator import Migrator
    from engine.store import RecordStore
    cfg_dir = config_copy()
    p = cfg_dir / "entities" / "account.yaml"
    p.write_text(p.read_text().replace("email: {type: email, searchable: true}",
                                       "email: {type: email, searchable: true, unique: true}"))
    cfg = load_config(cfg_dir)
    m = Migrator(engine_db, cfg)
    m.apply()
    store = RecordStore(engine_db, cfg, m.metadata)
    store.create("account", {"name": "A", "email": "same@x.cn"}, ADMIN)
    with pytest.raises(ValidationFailed) as info:
        store.create("account", {"name": "B", "email": "same@x.cn"}, ADMIN)
    assert "already used" in info.value.fields["email"]


def test_a2_write_is_one_transaction(mini_store):
    """A create whose child rows fail leaves neither the parent nor the number behind."""
    acc = mini_store.create("account", {"name": "A", "email": "a@b.cn"}, ADMIN)
    before = lst(mini_store, "deal")["total"]
    with pytest.raises(ValidationFailed):
        mini_store.create("deal", {"name": "D", "account": acc["id"], "lines": [{"item": None}]}, ADMIN)
    assert lst(mini_store, "deal")["total"] == before
    second = mini_store.create("account", {"name": "B", "email": "b@b.cn"}, ADMIN)
    assert second["code"].endswith("0002")
