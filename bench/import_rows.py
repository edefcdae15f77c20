#!/usr/bin/env python3
"""Benchmark: importing N customer rows from a CSV with full validation (engine/importer.py: mapping,
coercion, rules, duplicate rules, auto-numbers, audit, batches of 500) against a raw executemany of
the same rows into the same table, in the same run; then the peak memory of exporting M rows.

    .venv/bin/python bench/import_rows.py --rows 100000 [--export-rows 1000000] [--database-url URL]

Prints the figures and, as its last line, one JSON object.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

ENTITY = "customer"
LEVELS = ("high", "medium", "low")


def rows(n: int, prefix: str):
    for i in range(n):
        yield [f"{prefix}客户{i:07d}有限公司", f"{prefix.lower()}{i}@bench.example", f"+86 10 {i:08d}",
               LEVELS[i % 3], str(1000 + i % 5000)]


def csv_bytes(n: int, prefix: str) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["name", "email", "phone", "level", "annual_revenue"])
    w.writerows(rows(n, prefix))
    return buf.getvalue().encode("utf-8")


def raw_insert(engine, table, n: int, prefix: str, batch: int = 500) -> float:
    """The same rows, already typed, inserted with executemany in transactions of `batch` rows."""
    from decimal import Decimal
    now = dt.datetime.now()
    data = [{"name": r[0], "email": r[1], "phone": r[2], "level": r[3], "annual_revenue": Decimal(r[4]),
             "status": "active", "code": f"RAW-{i:08d}", "version": 1, "created_at": now, "updated_at": now}
            for i, r in enumerate(rows(n, prefix))]
    t0 = time.perf_counter()
    for k in range(0, len(data), batch):
        with engine.begin() as conn:
            conn.execute(table.insert(), data[k:k + batch])
    return time.perf_counter() - t0


def bulk_load(engine, table, n: int, batch: int = 20000) -> None:
    now = dt.datetime(2026, 1, 1)
    done = 0
    while done < n:
        chunk = [{"name": f"导出客户 {k:07d}", "email": f"x{k}@bench.example", "level": LEVELS[k % 3],
                  "status": "active", "code": f"EXP-{k:08d}", "version": 1, "created_at": now, "updated_at": now}
                 for k in range(done, min(n, done + batch))]
        with engine.begin() as conn:
            conn.execute(table.insert(), chunk)
        done += len(chunk)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--export-rows", type=int, default=0, help="also measure the export of this many rows")
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="crm-bench-")
    url, cleanup = args.database_url or f"sqlite:///{tmp}/bench.db", (lambda: None)
    if url.startswith("postgresql"):          # a throw-away schema, dropped at the end
        import uuid
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

        def cleanup():
            with admin.connect() as c:
                c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        url += ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
    os.environ["DATABASE_URL"] = url
    os.environ["CRM_CONFIG_DIR"] = str(ROOT / "config")
    os.environ["SECRET_KEY"] = "bench"
    os.environ.pop("REDIS_URL", None)
    import logging
    logging.disable(logging.INFO)
    from app import create_app
    from engine import exporter
    from engine.actor import SYSTEM_ACTOR
    from engine.importer import run_import
    from engine.query import ListRequest

    app = create_app({"TESTING": True})
    rt = app.extensions["crm"]
    rt.ensure_schema()
    table = rt.store.table(rt.config.entities[ENTITY])
    data = csv_bytes(args.rows, "IMP")
    t0 = time.perf_counter()
    res = run_import(rt.store, ENTITY, SYSTEM_ACTOR, data, "bench.csv", max_mb=1024)
    t_import = time.perf_counter() - t0
    assert res.created == args.rows and not res.errors, (res.created, res.errors[:3])
    t_raw = raw_insert(rt.engine, table, args.rows, "RAW")
    out = {"database": rt.engine.dialect.name, "rows": args.rows,
           "import_rows_per_s": round(args.rows / t_import), "raw_rows_per_s": round(args.rows / t_raw),
           "import_over_raw": round(t_import / t_raw, 2)}
    print(f"import {args.rows} rows with full validation: {t_import:.1f} s ({out['import_rows_per_s']} rows/s); "
          f"raw executemany: {t_raw:.2f} s ({out['raw_rows_per_s']} rows/s); ratio {out['import_over_raw']}x")
    if args.export_rows:
        with rt.engine.begin() as conn:
            have = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
        bulk_load(rt.engine, table, max(0, args.export_rows - have))
        fields = exporter.export_fields(rt.store, ENTITY, SYSTEM_ACTOR)
        tracemalloc.start()
        t0 = time.perf_counter()
        n = 0
        for chunk in exporter.csv_chunks([f.id for f in fields], exporter.rows_of(
                rt.store, ENTITY, ListRequest(filters=[]), SYSTEM_ACTOR, fields)):
            n += len(chunk)
        t_export = time.perf_counter() - t0
        _cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out.update(export_rows=max(have, args.export_rows), export_s=round(t_export, 1),
                   export_peak_mb=round(peak / 1048576, 1), export_mb=round(n / 1048576, 1))
        print(f"export {out['export_rows']} rows as CSV ({out['export_mb']} MB) in {t_export:.1f} s; "
              f"peak Python memory {out['export_peak_mb']} MB (tracemalloc)")
    rt.engine.dispose()
    cleanup()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
