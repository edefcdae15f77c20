"""A link's filter, fetch and display: the config checker's problems, the store refusing a link
outside its filter (nothing saved), and fetched values filled in on create."""
import shutil
from decimal import Decimal

import pytest
import sqlalchemy as sa

from engine import linkopts
from engine.actor import Actor
from engine.db import make_engine
from engine.errors import ConfigInvalid, ValidationFailed
from engine.loader import load_config
from engine.migrator import Migrator
from engine.store import RecordStore
from tests.conftest import FIXTURES

PACK = FIXTURES / "links"
ADMIN = Actor(id=None, username="admin", roles=("admin",))
ZH = Actor(id=None, username="admin", roles=("admin",), language="zh")


def problems_of(path) -> list[str]:
    with pytest.raises(ConfigInvalid) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def pack(tmp_path):
    shutil.copytree(PACK, tmp_path / "pack")
    return tmp_path / "pack"


@pytest.fixture
def store(db_url):
    eng = make_engine(db_url)
    cfg = load_config(PACK)
    m = Migrator(eng, cfg)
    m.apply()
    yield RecordStore(eng, cfg, m.metadata)
    eng.dispose()


def count(store, entity):
    t = store.table(entity)
    with store.engine.connect() as c:
        return c.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()


@pytest.fixture
def data(store):
    a = store.create("org", {"name": "Acme"}, ADMIN)
    b = store.create("org", {"name": "Beta"}, ADMIN)
    pa = store.create("person", {"name": "Alice", "org": a["id"]}, ADMIN)
    pb = store.create("person", {"name": "Bob", "org": b["id"]}, ADMIN)
    i1 = store.create("item", {"name": "Pump", "code": "P-1", "spec": "DN50", "price": "120.50"}, ADMIN)
    i2 = store.create("item", {"name": "Pump", "code": "P-2", "spec": "DN80", "price": "180"}, ADMIN)
    old = store.create("item", {"name": "Old pump", "code": "P-0", "price": "90", "active": False}, ADMIN)
    return {"a": a, "b": b, "pa": pa, "pb": pb, "i1": i1, "i2": i2, "old": old}


# ---- the checker ------------------------------------------------------------------------------
def test_the_fixture_pack_loads_with_its_link_options():
    cfg = load_config(PACK)
    f = cfg.entities["deal"].fields["person"]
    assert [(c.field, c.source) for c in f.filter] == [("org", "org")]
    item = cfg.entities["deal_line"].fields["item"]
    assert item.filter[0].value is True and item.filter[0].source is None
    assert item.fetch == (("unit_price", "price"),) and item.display == ("code", "spec")


def test_checker_names_file_line_and_path_of_each_problem(pack):
    deal = pack / "entities" / "deal.yaml"
    edit(deal, "filter: {org: org}, fetch: {org: org}",
         "filter: {orgg: org, name: nmae}, fetch: {org: org, name: price}, display: [nmae]")
    line = pack / "entities" / "deal_line.yaml"
    edit(line, "filter: {active: true}, fetch: {unit_price: price}",
         "filter: {active: {value: maybe}}, fetch: {unit_price: name, amount: price}")
    edit(line, "quantity: {type: decimal, required: true",
         "quantity: {type: decimal, fetch: {unit_price: price}, required: true")
    out = "\n".join(problems_of(pack))
    assert "deal.yaml:7:" in out
    assert "fields.person.filter.orgg: 'orgg' is not a field of person (did you mean 'org'?)" in out
    assert "fields.person.filter.name: 'nmae' is not a field of deal (did you mean 'name'?)" in out
    assert "fields.person.display.0: 'nmae' is not a field of person (did you mean 'name'?)" in out
    assert "fields.person.fetch.name: 'price' is not a field of person" in out
    assert "fields.item.filter.active: 'maybe' is not a value of item.active (boolean)" in out
    assert ("fields.item.fetch.unit_price: fetches item.name (text) into deal_line.unit_price (number): "
            "the types differ") in out
    assert "fields.item.fetch.amount: 'amount' cannot be filled: it is computed" in out
    assert "fields.quantity.fetch: 'fetch' applies to link fields only, not to a decimal field" in out


def test_checker_refuses_a_filter_comparing_different_kinds(pack):
    edit(pack / "entities" / "deal.yaml", "filter: {org: org}", "filter: {org: name}")
    out = "\n".join(problems_of(pack))
    assert "fields.person.filter.org: deal.name (text) cannot be compared with person.org (link to org)" in out


def test_schema_refuses_a_filter_value_that_is_not_a_name_or_constant(pack):
    edit(pack / "entities" / "deal.yaml", "filter: {org: org}", "filter: {org: [1, 2]}")
    out = "\n".join(problems_of(pack))
    assert "deal.yaml" in out and "fields.person.filter.org" in out


def test_the_default_pack_uses_filters_fetches_and_displays():
    cfg = load_config(FIXTURES.parent.parent.parent / "config")
    links = [f for e in cfg.entities.values() for f in e.user_fields if f.type == "link"]
    assert any(f.filter and f.to == "contact" for f in links)
    assert any(("unit_price", "price") in f.fetch for f in links)
    assert any(f.display for f in links if f.to == "product")


# ---- the store refuses a link outside its filter -------------------------------------------------
def test_a_link_outside_its_filter_is_refused_and_nothing_is_saved(store, data):
    with pytest.raises(ValidationFailed) as info:
        store.create("deal", {"name": "D1", "org": data["a"]["id"], "person": data["pb"]["id"]}, ADMIN)
    msg = info.value.fields["person"]
    assert "Bob cannot be chosen here" in msg and "Organisation" in msg
    assert count(store, "deal") == 0
    ok = store.create("deal", {"name": "D1", "org": data["a"]["id"], "person": data["pa"]["id"]}, ADMIN)
    assert ok["person"] == data["pa"]["id"] and count(store, "deal") == 1


def test_the_refusal_speaks_the_actors_language(store, data):
    with pytest.raises(ValidationFailed) as info:
        store.create("deal", {"name": "D1", "org": data["a"]["id"], "person": data["pb"]["id"]}, ZH)
    assert info.value.fields["person"] == "不能选择「Bob」：其所属组织须与本记录的组织一致"


def test_an_empty_source_leaves_the_condition_out(store, data):
    rec = store.create("deal", {"name": "D", "person": data["pb"]["id"]}, ADMIN)
    assert rec["person"] == data["pb"]["id"]


def test_an_update_that_breaks_the_filter_is_refused_and_the_record_kept(store, data):
    rec = store.create("deal", {"name": "D", "org": data["a"]["id"], "person": data["pa"]["id"]}, ADMIN)
    with pytest.raises(ValidationFailed) as info:
        store.update("deal", rec["id"], {"org": data["b"]["id"]}, ADMIN)
    assert "person" in info.value.fields
    assert store.get("deal", rec["id"], ADMIN)["org"] == data["a"]["id"]


def test_an_unchanged_link_is_not_checked_again(store, data):
    rec = store.create("deal", {"name": "D", "org": data["a"]["id"], "person": data["pa"]["id"]}, ADMIN)
    store.update("person", data["pa"]["id"], {"org": data["b"]["id"]}, ADMIN)   # Alice moves
    again = store.update("deal", rec["id"], {"name": "D renamed"}, ADMIN)
    assert again["name"] == "D renamed"


def test_a_row_link_outside_its_constant_filter_is_refused(store, data):
    body = {"name": "D", "lines": [{"item": data["i1"]["id"], "unit_price": "1"},
                                   {"item": data["old"]["id"], "unit_price": "1"}]}
    with pytest.raises(ValidationFailed) as info:
        store.create("deal", body, ADMIN)
    assert set(info.value.fields) == {"lines.1.item"}
    assert "Old pump cannot be chosen here: its On sale must be yes" in info.value.fields["lines.1.item"]
    assert count(store, "deal") == 0 and count(store, "deal_line") == 0


def test_unchanged_rows_stay_when_their_item_is_withdrawn(store, data):
    rec = store.create("deal", {"name": "D", "lines": [{"item": data["i1"]["id"], "unit_price": "5"}]}, ADMIN)
    store.update("item", data["i1"]["id"], {"active": False}, ADMIN)
    rows = [{"item": data["i1"]["id"], "unit_price": "5"}, {"item": data["i2"]["id"], "unit_price": "7"}]
    saved = store.update("deal", rec["id"], {"lines": rows}, ADMIN)
    assert [r["item"] for r in saved["lines"]] == [data["i1"]["id"], data["i2"]["id"]]


# ---- fetch on create ---------------------------------------------------------------------------
def test_fill_copies_the_price_into_empty_rows_before_totals_are_computed(store, data):
    e = store.config.entities["deal"]
    body = {"name": "D", "lines": [{"item": data["i1"]["id"], "quantity": "2"},
                                   {"item": data["i2"]["id"], "quantity": "1", "unit_price": "150"}]}
    filled = linkopts.fill(store, e, body, ADMIN)
    assert filled["lines"][0]["unit_price"] == "120.50"
    assert filled["lines"][1]["unit_price"] == "150"       # a given value is kept
    assert "unit_price" not in body["lines"][0]              # the input is not changed in place
    rec = store.create("deal", filled, ADMIN)
    assert [r["unit_price"] for r in rec["lines"]] == [Decimal("120.50"), Decimal("150")]
    assert rec["total"] == Decimal("391.00")


def test_fill_copies_a_link_from_the_picked_record(store, data):
    e = store.config.entities["deal"]
    filled = linkopts.fill(store, e, {"name": "D", "person": data["pb"]["id"]}, ADMIN)
    assert filled["org"] == data["b"]["id"]
    given = linkopts.fill(store, e, {"name": "D", "person": data["pb"]["id"], "org": data["a"]["id"]}, ADMIN)
    assert given["org"] == data["a"]["id"]


def test_fill_ignores_a_missing_record(store, data):
    e = store.config.entities["deal"]
    body = {"name": "D", "lines": [{"item": 9999, "quantity": "1"}]}
    assert linkopts.fill(store, e, body, ADMIN) == body
