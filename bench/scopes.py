#!/usr/bin/env python3
"""Benchmark: list and search latency with row scopes, as a ratio against the same query for an admin.

Seeds N customers owned by 50 salespeople in 10 teams with a sub-team each (plus contacts following them), then times,
through the record store (the layer every path goes through): a filtered, sorted page of 50 with its
count, and a text search, for a salesperson (scope `team`; contacts `via` customer) and for an
admin (no scope), in the same run. Target (issue 8): ratio ≤ 1.3.

    .venv/bin/python bench/scopes.py --records 100000 [--database-url postgresql+psycopg://…]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = ap.parse_args()
    import logging
    logging.disable(logging.CRITICAL)

    from engine.access import AccessPolicy
    from engine.actor import Actor
    from engine.loader import load_config
    from engine.migrator import Migrator
    from engine.query import ListRequest
    from engine.store import RecordStore
    from engine.systables import teams, users

    from bench._db import throwaway
    eng, cleanup = throwaway(args.database_url, "scopes")
    cfg = load_config(ROOT / "config")
    m = Migrator(eng, cfg)
    m.apply()
    tables = {eid: m.metadata.tables[e.table_name] for eid, e in cfg.entities.items()}
    store = RecordStore(eng, cfg, m.metadata, None, AccessPolicy(cfg, tables))
    rng = random.Random(7)
    with eng.begin() as conn:
        # a team tree: hq > t0..t9 > t0-sub..t9-sub; reps 0-39 in the teams, 40-49 in the sub-teams
        conn.execute(teams.insert(), [{"id": "hq"}] + [{"id": f"t{k}", "parent": "hq"} for k in range(10)]
                     + [{"id": f"t{k}-sub", "parent": f"t{k}"} for k in range(10)])
        ids = [conn.execute(users.insert().values(username=f"rep{i}", roles=["sales"], active=True,
                                                  team=f"t{i % 10}" + ("-sub" if i >= 40 else "")))
               .inserted_primary_key[0] for i in range(50)]
        t = tables["customer"]
        words = ["杭州", "宁波", "苏州", "上海", "Acme", "Globex", "Initech", "机械", "贸易", "科技"]
        rows = [{"name": f"{rng.choice(words)}{rng.choice(words)} {i}", "email": f"c{i}@example.com",
                 "level": rng.choice(["high", "medium", "low"]), "owner": rng.choice(ids), "version": 1}
                for i in range(args.records)]
        for i in range(0, len(rows), 5000):
            conn.execute(t.insert(), rows[i:i + 5000])
    sales = Actor(id=ids[0], username="rep0", roles=("sales",))
    admin = Actor(id=None, username="admin", roles=("admin",))

    def timed(actor, req):
        samples = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            store.list("customer", req, actor)
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples) * 1000

    listing = ListRequest(filters=[("level", "eq", "high")], sort="-created_at", per_page=50)
    exact = ListRequest(filters=[("level", "eq", "high")], sort="-created_at", per_page=50, exact_count=True)
    search = ListRequest(filters=[], q="宁波", per_page=50)
    out = {"records": args.records, "database": eng.dialect.name}
    # "list": as the UI and API ask (the count stops at 10,000: the admin's 33,000 matches are not all
    # counted, a salesperson's 3,300 are); "list_exact": both count every match — the scope's own cost
    for name, req in (("list", listing), ("list_exact", exact), ("search", search)):
        timed(admin, req)                                              # warm up
        a, s = timed(admin, req), timed(sales, req)
        out[f"{name}_admin_ms"], out[f"{name}_scoped_ms"], out[f"{name}_ratio"] = round(a, 2), round(s, 2), round(s / a, 2)
        print(f"{name}: admin {a:.2f} ms, salesperson (team scope) {s:.2f} ms, ratio {s / a:.2f}")
    cleanup()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
