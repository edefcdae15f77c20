#!/usr/bin/env python3
"""Benchmark: workflow transitions with actions against plain record updates, same run, same DB.

Each transition is a full engine transition (checks, on_leave/transition/on_enter actions, state
`set`, the conditional state write and a history row, one transaction). The baseline is a
RecordStore update of one field of the same records. Prints operations per second and the ratio.

    .venv/bin/python bench/transitions.py --records 2000 [--database-url postgresql+psycopg://…]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = ap.parse_args()
    import logging
    logging.disable(logging.INFO)
    from engine.actor import Actor
    from engine.db import make_engine
    from engine.loader import load_config
    from engine.migrator import Migrator
    from engine.statemachine import Workflows
    from engine.store import RecordStore

    tmp = tempfile.mkdtemp(prefix="crm-bench-")
    eng = make_engine(args.database_url or f"sqlite:///{tmp}/wf.db")
    cfg = load_config(ROOT / "config")
    m = Migrator(eng, cfg)
    m.apply()
    store = RecordStore(eng, cfg, m.metadata)
    wfs = Workflows(store)
    wfs.register_definitions()
    admin = Actor(id=None, username="bench", roles=("admin",))
    cust = store.create("customer", {"name": "Bench Co", "email": "b@bench.example"}, admin)
    ids = [store.create("opportunity", {"name": f"Opp {i}", "customer": cust["id"], "expected_close": "2099-01-01"},
                        admin)["id"] for i in range(args.records)]

    t0 = time.perf_counter()
    for rid in ids:   # potential -> intent: a state `set` (probability) and a history row
        wfs.execute("opportunity", rid, "show_intent", admin)
    transitions = time.perf_counter() - t0

    t0 = time.perf_counter()
    for rid in ids:
        store.update("opportunity", rid, {"next_step": "call back"}, admin)
    updates = time.perf_counter() - t0

    n = len(ids)
    print(f"{eng.dialect.name}: {n} records")
    print(f"transitions/s {n / transitions:10.1f}")
    print(f"updates/s     {n / updates:10.1f}")
    print(f"ratio (transition time / update time) {transitions / updates:.2f}")


if __name__ == "__main__":
    main()
