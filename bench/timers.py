#!/usr/bin/env python3
"""Benchmark: durable timers fired per second with N due, against a plain indexed SELECT of the same rows.

N running timers (kind `workflow`, each with one `notify` action on a real ticket of the default
pack) are due; `Automation.sweep()` fires them: per timer a conditional UPDATE running → fired, the
action (a notification row) and the commit. The baseline reads the same rows through the same
index (status, due_at) in one SELECT. Prints both rates and their ratio (lower is better).

    .venv/bin/python bench/timers.py --timers 100000 [--database-url postgresql+psycopg://…]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timers", type=int, default=100000)
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = ap.parse_args()
    import logging
    logging.disable(logging.CRITICAL)
    import sqlalchemy as sa

    from engine import clock
    from engine.automation.service import Automation
    from engine.loader import load_config
    from engine.migrator import Migrator
    from engine.policy import AdminDeletesOnly
    from engine.statemachine import Workflows
    from engine.store import RecordStore
    from engine.wftables import notifications, timers

    from bench._db import throwaway
    eng, cleanup = throwaway(args.database_url, "timers")
    cfg = load_config(ROOT / "config")
    m = Migrator(eng, cfg)
    m.apply()
    store = RecordStore(eng, cfg, m.metadata, None, AdminDeletesOnly())
    wfs = Workflows(store)
    wfs.register_definitions()
    auto = Automation(store, wfs)
    from engine.actor import Actor
    from engine.systables import users
    with eng.begin() as conn:
        uid = conn.execute(users.insert().values(username="bench", roles=["admin"], active=True)).inserted_primary_key[0]
    actor = Actor(id=uid, username="bench", roles=("admin",))
    customer = store.create("customer", {"name": "Bench", "email": "bench@example.com"}, actor)
    ticket = store.create("ticket", {"subject": "bench", "customer": customer["id"]}, actor)
    with eng.begin() as conn:       # the SLA's own timers would be fired too: keep only ours
        conn.execute(timers.delete())
    base = clock.now() - dt.timedelta(hours=1)
    action = {"actions": [{"notify": "owner", "message": {"en": "bench"}}], "source": "bench"}
    rows = [{"entity": "ticket", "record_id": ticket["id"], "name": f"bench_{i}", "kind": "workflow",
             "due_at": base + dt.timedelta(microseconds=0), "payload": action, "calendar": "calendar",
             "status": "running", "attempts": 0, "created_at": base} for i in range(args.timers)]
    with eng.begin() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(timers.insert(), rows[i:i + 5000])

    # baseline: the same due rows through the same index, one SELECT
    t0 = time.perf_counter()
    with eng.connect() as conn:
        got = conn.execute(sa.select(timers).where(timers.c.status == "running", timers.c.due_at <= clock.now())
                           .order_by(timers.c.due_at, timers.c.id)).all()
    select_s = time.perf_counter() - t0
    assert len(got) == args.timers

    t0 = time.perf_counter()
    result = auto.sweep()
    sweep_s = time.perf_counter() - t0
    with eng.connect() as conn:
        notes = conn.execute(sa.select(sa.func.count()).select_from(notifications)).scalar_one()
    assert result.fired == args.timers, f"fired {result.fired} of {args.timers}"
    assert notes == args.timers, notes           # each effect once
    again = auto.sweep()
    assert again.fired == 0
    auto.close()
    cleanup()
    out = {"timers": args.timers, "database": eng.dialect.name,
           "fired_per_s": round(args.timers / sweep_s, 1), "select_rows_per_s": round(args.timers / select_s, 1),
           "ratio": round(sweep_s / select_s, 1)}
    print(f"fired {args.timers} timers in {sweep_s:.2f} s ({out['fired_per_s']}/s); "
          f"plain indexed SELECT of the same rows {select_s * 1000:.1f} ms; time ratio {out['ratio']}x")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
