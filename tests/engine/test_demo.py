"""`flask crm demo`: generic demo data that is consistent with the config it fills."""
import sqlalchemy as sa

from engine import demo
from engine.db import make_engine
from engine.loader import load_config
from engine.migrator import Migrator
from engine.statemachine import Workflows
from engine.store import RecordStore
from tests.conftest import ROOT
from tests.engine.conftest import ADMIN


def test_demo_fills_the_default_pack_consistently(db_url):
    eng = make_engine(db_url)
    cfg = load_config(ROOT / "config")
    m = Migrator(eng, cfg)
    m.apply()
    store = RecordStore(eng, cfg, m.metadata)
    assert demo.is_empty(eng, cfg, m.metadata)
    counts = demo.generate(eng, cfg, m.metadata, 30, seed=1)
    assert not demo.is_empty(eng, cfg, m.metadata)
    assert counts["customer"] == 30 and counts["contact"] == 60
    with eng.connect() as c:
        for e in cfg.entities.values():
            t = m.metadata.tables[e.table_name]
            rows = c.execute(sa.select(t)).mappings().all()
            if e.demo_weight == 0:          # real data only (holidays): the demo leaves it empty
                assert not rows, e.id
                continue
            assert rows, e.id
            for f in e.user_fields:
                if f.required and f.stored and not f.computed and f.type not in ("state",):
                    assert all(r[f.id] is not None for r in rows), f"{e.id}.{f.id} left empty"
                if f.type == "link" and f.stored:
                    target = m.metadata.tables[cfg.entities[f.to].table_name]
                    ids = {x for (x,) in c.execute(sa.select(target.c.id))}
                    assert all(r[f.id] is None or r[f.id] in ids for r in rows), f"{e.id}.{f.id} dangles"
                if f.type == "state":
                    assert {r[f.id] for r in rows} <= set(cfg.workflows[f.workflow].states)
        # a parent's computed total is the sum of its child rows
        opp, line = m.metadata.tables["e_opportunity"], m.metadata.tables["e_opportunity_line"]
        first = c.execute(sa.select(opp).order_by(opp.c.id).limit(1)).mappings().one()
        total = c.execute(sa.select(sa.func.sum(line.c.amount)).where(line.c.parent_id == first["id"])).scalar()
        assert first["amount"] == total
    # demo records pass the store's own validation, and the series continues after them
    cust = store.list("customer", __import__("engine.query", fromlist=["ListRequest"]).ListRequest(filters=[]), ADMIN)
    one = cust["items"][0]
    store.update("customer", one["id"], {"notes": "checked", "version": one["version"]}, ADMIN)
    new = store.create("customer", {"name": "After demo", "email": "after@demo.cn"}, ADMIN)
    assert int(new["code"].split("-")[-1]) == 31
    wfs = Workflows(store)
    tickets = store.list("ticket", __import__("engine.query", fromlist=["ListRequest"]).ListRequest(filters=[]), ADMIN)
    assert any(t["allowed"] for tk in tickets["items"] for t in wfs.available("ticket", tk["id"], ADMIN))
    eng.dispose()
