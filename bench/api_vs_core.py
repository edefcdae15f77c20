#!/usr/bin/env python3
"""Benchmark: the REST API against raw SQLAlchemy Core on the same database, in the same run.

Loads N customers (bulk Core inserts), then measures three operations both ways:
  list   — filter on a select field + sort + page of 50 (with the total count)
  get    — one record by id
  create — one new record (validation, defaults, auto-number, events, one transaction)
The API side goes through the whole WSGI stack (Flask test client: auth, JSON, store); the
baseline is the equivalent Core statement. Prints median times and the ratio API/Core.

    .venv/bin/python bench/api_vs_core.py --records 100000 [--database-url postgresql+psycopg://…]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

ENTITY = "customer"


def load(rt, n: int, batch: int = 10_000):
    """Bulk-insert n customers with plausible values (the baseline must see the same rows)."""
    e = rt.config.entities[ENTITY]
    t = rt.store.table(e)
    select = next((f for f in e.user_fields if f.type == "select" and f.options), None)
    now = dt.datetime(2026, 1, 1)
    rng = random.Random(1)
    done = 0
    with rt.engine.begin() as conn:
        have = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
    while done < n - have:
        rows = []
        for i in range(min(batch, n - have - done)):
            k = have + done + i
            row = {"version": 1, "created_at": now - dt.timedelta(minutes=k), "updated_at": now,
                   "name": f"客户 Customer {k:07d}", "email": f"c{k}@bench.example"}
            if select is not None:
                row[select.id] = rng.choice(select.option_values)
            for f in e.user_fields:
                if f.type == "autonumber":
                    row[f.id] = f"BENCH-{k:08d}"
            rows.append(row)
        with rt.engine.begin() as conn:
            conn.execute(t.insert(), rows)
        done += len(rows)
    return select


def timed(fn, repeat: int) -> float:
    fn()  # warm up
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="crm-bench-")
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{tmp}/bench.db"
    os.environ["CRM_CONFIG_DIR"] = str(ROOT / "config")
    os.environ["SECRET_KEY"] = "bench"
    os.environ.pop("REDIS_URL", None)
    from app import create_app
    from platform_ import auth
    import logging
    logging.disable(logging.INFO)

    app = create_app({"TESTING": True})
    rt = app.extensions["crm"]
    rt.ensure_schema()
    if not auth.find_user(rt.engine, "bench"):
        auth.create_user(rt.engine, "bench", "bench-Passw0rd", ["admin"])
    token = auth.create_token(rt.engine, "bench")
    t0 = time.perf_counter()
    select = load(rt, args.records)
    print(f"loaded {args.records} {ENTITY} rows in {time.perf_counter() - t0:.1f} s "
          f"({rt.engine.dialect.name})")
    client = app.test_client()
    h = {"Authorization": f"Bearer {token}"}
    e = rt.config.entities[ENTITY]
    t = rt.store.table(e)
    value = select.option_values[0] if select else None
    filt = f"{select.id}={value}&" if select else ""
    ids = list(range(1, args.records + 1))
    rng = random.Random(2)

    def api_list():
        r = client.get(f"/api/v1/{ENTITY}?{filt}sort=-created_at&page=3&per_page=50", headers=h)
        assert r.status_code == 200 and len(r.get_json()["items"]) == 50, r.status_code

    def core_list():
        cond = [t.c.deleted_at.is_(None)] + ([t.c[select.id] == value] if select else [])
        with rt.engine.connect() as c:
            c.execute(sa.select(sa.func.count()).select_from(t).where(*cond)).scalar()
            rows = c.execute(sa.select(t).where(*cond).order_by(t.c.created_at.desc(), t.c.id.desc())
                             .limit(50).offset(100)).mappings().all()
        assert len(rows) == 50

    def api_get():
        r = client.get(f"/api/v1/{ENTITY}/{rng.choice(ids)}", headers=h)
        assert r.status_code == 200

    def core_get():
        with rt.engine.connect() as c:
            assert c.execute(sa.select(t).where(t.c.id == rng.choice(ids))).mappings().first() is not None

    counter = [0]

    def api_create():
        counter[0] += 1
        r = client.post(f"/api/v1/{ENTITY}", json={"name": f"新客户 {counter[0]}", "email": f"n{counter[0]}@bench.example"},
                        headers=h)
        assert r.status_code == 201, r.get_json()

    def core_create():
        counter[0] += 1
        now = dt.datetime.now()
        with rt.engine.begin() as c:
            c.execute(t.insert().values(name=f"新客户 core {counter[0]}", email=f"k{counter[0]}@bench.example",
                                        version=1, created_at=now, updated_at=now))

    print(f"{'operation':<10}{'API ms':>10}{'Core ms':>10}{'ratio':>8}")
    for name, api_fn, core_fn in (("list", api_list, core_list), ("get", api_get, core_get),
                                  ("create", api_create, core_create)):
        a = timed(api_fn, args.repeat)
        b = timed(core_fn, args.repeat)
        print(f"{name:<10}{a * 1000:>10.2f}{b * 1000:>10.2f}{a / b:>8.2f}")


if __name__ == "__main__":
    main()
