#!/usr/bin/env python3
"""Benchmark: a grouped report (engine/reports.py) against the same hand-written SQL, same run.

Seeds N sales (default 1,000,000) over 2,000 clients in 8 regions into a throw-away database, then
times the report "amount by close month and client region" (a date bucket, a linked group-by
through a LEFT JOIN, count + sum + avg, totals) through the report engine as an admin, and the
equivalent SQL written by hand (the same GROUP BY; the report has `totals: false`, so both do the
same work); prints the medians and their ratio (lower is better).

    .venv/bin/python bench/report_group.py [--rows 1000000] [--repeat 5] [--database-url postgresql+psycopg://…]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import textwrap
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONFIG = {
    "entities/region.yaml": """
        entity: region
        label: Region
        fields:
          name: {type: string, required: true}
    """,
    "entities/client.yaml": """
        entity: client
        label: Client
        fields:
          name: {type: string, required: true}
          region: {type: link, to: region}
    """,
    "entities/sale.yaml": """
        entity: sale
        label: Sale
        fields:
          name: {type: string}
          client: {type: link, to: client}
          amount: {type: money}
          closed: {type: date}
    """,
    "reports/by_month_region.yaml": """
        report: by_month_region
        entity: sale
        group_by:
          - {field: closed, bucket: month, as: month}
          - {field: client.region, as: region}
        measures:
          count: {fn: count}
          amount: {fn: sum, field: amount}
          average: {fn: avg, field: amount}
        totals: false
    """,
}

HAND_SQL = {
    "sqlite": """SELECT strftime('%Y-%m', s.closed) AS month, c.region, count(*), sum(s.amount), avg(s.amount)
                 FROM e_sale s LEFT JOIN e_client c ON s.client = c.id AND c.deleted_at IS NULL
                 WHERE s.deleted_at IS NULL GROUP BY 1, 2 ORDER BY 1, 2""",
    "postgresql": """SELECT to_char(s.closed, 'YYYY-MM') AS month, c.region, count(*), sum(s.amount), avg(s.amount)
                     FROM e_sale s LEFT JOIN e_client c ON s.client = c.id AND c.deleted_at IS NULL
                     WHERE s.deleted_at IS NULL GROUP BY 1, 2 ORDER BY 1, 2""",
}


def write_config(root: Path) -> Path:
    for name, text in CONFIG.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def seed(store, n: int) -> None:
    rnd = random.Random(7)
    t = {e: store.table(e) for e in ("region", "client", "sale")}
    start = dt.date(2024, 1, 1)
    with store.engine.begin() as c:
        c.execute(t["region"].insert(), [{"id": i, "name": f"R{i}", "version": 1} for i in range(1, 9)])
        c.execute(t["client"].insert(), [{"id": i, "name": f"C{i}", "region": (i % 9) or None, "version": 1}
                                         for i in range(1, 2001)])
    batch = 20000
    for lo in range(0, n, batch):
        rows = [{"name": None, "client": rnd.randint(1, 2000), "version": 1,
                 "amount": Decimal(rnd.randint(100, 1_000_000)) / 100,
                 "closed": start + dt.timedelta(days=rnd.randint(0, 729))} for _ in range(lo, min(n, lo + batch))]
        with store.engine.begin() as c:
            c.execute(t["sale"].insert(), rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = ap.parse_args()
    import logging
    logging.disable(logging.CRITICAL)

    import sqlalchemy as sa

    from bench._db import throwaway
    from engine.actor import Actor
    from engine.loader import load_config
    from engine.migrator import Migrator
    from engine.reports import run
    from engine.store import RecordStore

    cfg = load_config(write_config(Path(tempfile.mkdtemp(prefix="crm-bench-report-cfg-"))))
    eng, cleanup = throwaway(args.database_url, "report_group")
    try:
        m = Migrator(eng, cfg)
        m.apply()
        store = RecordStore(eng, cfg, m.metadata)
        t0 = time.perf_counter()
        seed(store, args.rows)
        seeded = time.perf_counter() - t0
        if eng.dialect.name == "postgresql":
            with eng.begin() as c:
                c.execute(sa.text("ANALYZE"))
        admin = Actor(id=None, username="admin", roles=("admin",))
        sql = sa.text(HAND_SQL[eng.dialect.name])

        def engine_report():
            return run(store, "by_month_region", admin).rows

        def hand():
            with eng.connect() as c:
                return c.execute(sql).all()

        assert len(engine_report()) == len(hand()), "the report and the hand SQL disagree on the groups"
        times = {"engine": [], "hand": []}
        for _ in range(args.repeat):          # interleaved, so both see the same cache state
            for name, fn in (("hand", hand), ("engine", engine_report)):
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
        eng_ms = statistics.median(times["engine"]) * 1000
        hand_ms = statistics.median(times["hand"]) * 1000
        out = {"database": eng.dialect.name, "rows": args.rows, "groups": len(hand()),
               "seed_s": round(seeded, 1), "report_ms": round(eng_ms, 1), "hand_sql_ms": round(hand_ms, 1),
               "ratio": round(eng_ms / hand_ms, 2)}
        print(f"grouped report over {args.rows:,} rows ({out['groups']} groups, {out['database']}): "
              f"engine {eng_ms:.0f} ms, hand-written SQL {hand_ms:.0f} ms, ratio {out['ratio']}")
        print(json.dumps(out))
    finally:
        cleanup()


if __name__ == "__main__":
    main()
