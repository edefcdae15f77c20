"""engine.demo on the mini fixture config: counts, required fields, links, child rows, computed
totals, workflow states, and auto-number series that continue after the demo numbers."""
from collections import Counter
from decimal import Decimal

import pytest
import sqlalchemy as sa

from engine import demo
from engine.db import make_engine
from engine.loader import load_config
from engine.migrator import Migrator
from engine.store import RecordStore
from tests.conftest import FIXTURES, ROOT
from tests.engine.conftest import ADMIN

RECORDS = 50


@pytest.fixture
def mini(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path}/demo.db")
    cfg = load_config(FIXTURES / "mini")
    m = Migrator(eng, cfg)
    m.apply()
    yield eng, cfg, m.metadata
    eng.dispose()


def _rows(conn, metadata, entity):
    t = metadata.tables[entity.table_name]
    return conn.execute(sa.select(t).order_by(t.c.id)).mappings().all()


def test_demo_fills_the_mini_config_consistently(mini):
    eng, cfg, md = mini
    assert demo.is_empty(eng, cfg, md)
    seen = []
    counts = demo.generate(eng, cfg, md, RECORDS, seed=3, progress=lambda e, d, t: seen.append((e, d, t)))
    assert not demo.is_empty(eng, cfg, md)
    assert counts == {"account": RECORDS, "deal": RECORDS}
    assert seen[-1] == ("deal", RECORDS, RECORDS) and ("account", RECORDS, RECORDS) in seen

    with eng.connect() as c:
        data = {e.id: _rows(c, md, e) for e in cfg.entities.values()}
        assert {k: len(v) for k, v in data.items() if not cfg.entities[k].child} == counts
        for e in cfg.entities.values():
            rows = data[e.id]
            assert rows, e.id
            for f in e.user_fields:
                if not f.stored:
                    continue
                if f.required:
                    assert all(r[f.id] not in (None, "") for r in rows), f"{e.id}.{f.id} left empty"
                if f.max_length:
                    assert all(r[f.id] is None or len(r[f.id]) <= f.max_length for r in rows), f"{e.id}.{f.id}"
                if f.min is not None and f.value_type in ("integer", "decimal", "money", "percent"):
                    assert all(r[f.id] is None or r[f.id] >= f.min for r in rows), f"{e.id}.{f.id} < min"
                if f.type == "select":
                    assert {r[f.id] for r in rows} <= set(f.option_values) | {None}
                if f.type == "link":
                    ids = {r["id"] for r in data[f.to]}
                    assert all(r[f.id] in ids for r in rows if r[f.id] is not None), f"{e.id}.{f.id} dangles"
                if f.type == "state":
                    wf = cfg.workflows[f.workflow]
                    found = Counter(r[f.id] for r in rows)
                    assert set(found) <= set(wf.states), found
                    assert found[wf.initial] > 0
                if f.type == "autonumber" or f.unique:
                    vals = [r[f.id] for r in rows if r[f.id] is not None]
                    assert len(vals) == len(set(vals)), f"{e.id}.{f.id} not unique"
            if not e.child:
                assert all(r["version"] == 1 and r["deleted_at"] is None and r["created_at"] for r in rows)

        # child rows: 1-4 per parent, all pointing at an existing parent, idx 0..n-1
        deal_ids = {r["id"] for r in data["deal"]}
        per_parent = Counter(r["parent_id"] for r in data["deal_line"])
        assert set(per_parent) == deal_ids
        assert all(1 <= n <= 4 for n in per_parent.values())
        for pid in list(deal_ids)[:10]:
            assert sorted(r["idx"] for r in data["deal_line"] if r["parent_id"] == pid) == list(range(per_parent[pid]))

        # computed fields: the line amount, the parent's sum of its lines, a computed over a computed
        for line in data["deal_line"]:
            assert line["amount"] == pytest.approx((line["quantity"] or 0) * (line["price"] or 0), abs=Decimal("0.01"))
        for deal in data["deal"]:
            total = sum((ln["amount"] for ln in data["deal_line"] if ln["parent_id"] == deal["id"]), 0)
            assert deal["amount"] == total, deal["id"]
            expected = (deal["amount"] or 0) * (deal["probability"] or 0) / 100
            assert deal["weighted"] == pytest.approx(expected, abs=Decimal("0.01"))


def test_series_continue_after_the_demo_numbers(mini):
    eng, cfg, md = mini
    demo.generate(eng, cfg, md, RECORDS, seed=1)
    with eng.connect() as c:
        codes = [r["code"] for r in _rows(c, md, cfg.entities["account"])]
    demo_max = max(int(code.rsplit("-", 1)[1]) for code in codes)
    assert demo_max == RECORDS
    store = RecordStore(eng, cfg, md)
    new = store.create("account", {"name": "After demo", "email": "after@demo.cn"}, ADMIN)
    assert new["code"] not in codes
    assert int(new["code"].rsplit("-", 1)[1]) == demo_max + 1


def test_demo_is_deterministic_for_a_seed_and_respects_weights(tmp_path):
    cfg = load_config(FIXTURES / "mini")
    out = []
    for name in ("a", "b"):
        eng = make_engine(f"sqlite:///{tmp_path}/{name}.db")
        m = Migrator(eng, cfg)
        m.apply()
        assert demo.generate(eng, cfg, m.metadata, 2, seed=7) == {"account": 3, "deal": 3}   # at least 3
        with eng.connect() as c:
            out.append([dict(r, created_at=None, updated_at=None) for r in _rows(c, m.metadata, cfg.entities["deal"])])
        eng.dispose()
    assert out[0] == out[1]
    weights = {e.id: demo.count_for(e, 1000) for e in cfg.entities.values() if not e.child}
    assert weights == {"account": 1000, "deal": 1000}
