#!/usr/bin/env python3
"""Benchmark (issue 13, DESIGN.md "Operations"): the API at N customers, in one run, on one database.

Seeds N customers (realistic Chinese company names, e-mail, phone, address; Core executemany) into a
throw-away database (bench/_db.py), then measures through Flask test clients:
  list    — `?<select field>=<value>&sort=-created_at&per_page=50`, pages 1-5, with the count
            (p95), against the same count + page as SQLAlchemy Core
  search  — `?q=` with a Chinese fragment (≈0.2 % of names) and with a latin one (≈0.25 % of e-mails)
  get     — one record by id, against a minimal hand-written Flask + SQLAlchemy endpoint (median ratio)
  create  — one record (name + e-mail), against a minimal Flask endpoint inserting it with Core
  bulk    — `POST /<entity>/bulk` in batches of 1,000 records, against Core executemany of the same rows

    .venv/bin/python -m bench --records 100000 --json [--database-url postgresql+psycopg://…] [--repeat 50]

Prints a table and, as its last line (always with --json), one JSON object.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import shutil
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

ENTITY = "customer"

# -- realistic rows ---------------------------------------------------------------------------------
CITIES = [("北京", "beijing", "10"), ("上海", "shanghai", "21"), ("广州", "guangzhou", "20"),
          ("深圳", "shenzhen", "755"), ("杭州", "hangzhou", "571"), ("南京", "nanjing", "25"),
          ("苏州", "suzhou", "512"), ("成都", "chengdu", "28"), ("武汉", "wuhan", "27"), ("西安", "xian", "29"),
          ("重庆", "chongqing", "23"), ("天津", "tianjin", "22"), ("宁波", "ningbo", "574"),
          ("青岛", "qingdao", "532"), ("厦门", "xiamen", "592"), ("长沙", "changsha", "731"),
          ("郑州", "zhengzhou", "371"), ("济南", "jinan", "531"), ("合肥", "hefei", "551"),
          ("福州", "fuzhou", "591"), ("无锡", "wuxi", "510"), ("佛山", "foshan", "757"),
          ("东莞", "dongguan", "769"), ("昆明", "kunming", "871"), ("沈阳", "shenyang", "24")]
BRAND_A = [("华", "hua"), ("鑫", "xin"), ("恒", "heng"), ("瑞", "rui"), ("博", "bo"), ("金", "jin"),
           ("宏", "hong"), ("天", "tian"), ("中", "zhong"), ("新", "xin"), ("远", "yuan"), ("泰", "tai"),
           ("盛", "sheng"), ("永", "yong"), ("嘉", "jia"), ("德", "de"), ("信", "xin"), ("安", "an"),
           ("明", "ming"), ("海", "hai")]
BRAND_B = [("达", "da"), ("源", "yuan"), ("通", "tong"), ("科", "ke"), ("联", "lian"), ("创", "chuang"),
           ("丰", "feng"), ("诚", "cheng"), ("晟", "sheng"), ("邦", "bang"), ("威", "wei"), ("润", "run"),
           ("拓", "tuo"), ("辉", "hui"), ("峰", "feng"), ("航", "hang"), ("众", "zhong"), ("益", "yi"),
           ("盈", "ying"), ("翔", "xiang")]
INDUSTRIES = [("机械", "jixie", "manufacturing"), ("贸易", "trading", "retail"), ("科技", "tech", "it"),
              ("电子", "electronics", "it"), ("物流", "logistics", "logistics"), ("医药", "pharma", "healthcare"),
              ("食品", "food", "retail"), ("建材", "materials", "manufacturing"), ("化工", "chem", "manufacturing"),
              ("纺织", "textile", "manufacturing"), ("能源", "energy", "other"), ("环保", "enviro", "other"),
              ("传媒", "media", "other"), ("咨询", "consulting", "other"), ("软件", "soft", "it"),
              ("投资", "capital", "finance"), ("教育", "edu", "education"), ("汽配", "autoparts", "manufacturing"),
              ("家居", "home", "retail"), ("供应链", "supply", "logistics")]
SUFFIXES = ["有限公司"] * 6 + ["股份有限公司", "集团有限公司", "有限责任公司", "贸易商行"]
DISTRICTS = ["高新区", "经开区", "滨江区", "朝阳区", "海淀区", "天河区", "南山区", "江北区", "鼓楼区", "新城区",
             "工业园区", "开发区"]
STREETS = ["人民路", "解放路", "中山路", "建设路", "长江路", "和平路", "文化路", "科技路", "创业大道", "光明街",
           "迎宾大道", "学府路", "滨河路", "工业大道"]
LOCALS = ["info", "sales", "contact", "service", "office", "hr", "purchase", "admin"]
LEVELS = (["high"] * 2 + ["medium"] * 5 + ["low"] * 3)
STATUSES = (["active"] * 6 + ["prospect"] * 2 + ["churn_risk", "inactive"])
SOURCES = ["web", "referral", "exhibition", "phone", "dealer"]
# The search fragments: city 杭州 (1/25) × first brand syllable 华 (1/20) ≈ 0.2 % of names; the
# e-mail domain of brand 瑞 + 通 (1/400) ≈ 0.24 % of e-mails.
SEARCH_ZH = "杭州华"
SEARCH_EN = "ruitong"
EPOCH = dt.datetime(2026, 1, 1)


def make_record(rng: random.Random, k: int) -> dict:
    """One customer as an API client would send it (user fields only)."""
    city, city_py, area = rng.choice(CITIES)
    a, a_py = rng.choice(BRAND_A)
    b, b_py = rng.choice(BRAND_B)
    ind, ind_py, industry = rng.choice(INDUSTRIES)
    rec = {"name": f"{city}{a}{b}{ind}{rng.choice(SUFFIXES)} {k:07d}",
           "email": (None if rng.random() < 0.05 else
                     f"{rng.choice(LOCALS)}{k}@{a_py}{b_py}-{ind_py}.com"),
           "phone": (f"+86 1{rng.choice('3589')}{rng.randrange(10 ** 9):09d}" if rng.random() < 0.4
                     else f"+86 {area} {rng.randrange(10 ** 7, 10 ** 8)}"),
           "address": f"{city}市{rng.choice(DISTRICTS)}{rng.choice(STREETS)}{rng.randrange(1, 999)}号",
           "industry": industry, "level": rng.choice(LEVELS), "status": rng.choice(STATUSES),
           "source": rng.choice(SOURCES)}
    return rec


def make_row(rng: random.Random, k: int, columns, code_prefix: str, created: dt.datetime) -> dict:
    """One customer as a table row (record + the columns the store would fill)."""
    row = make_record(rng, k)
    row.update(annual_revenue=Decimal(rng.randrange(100, 500_000) * 1000), employees=rng.randrange(5, 20_000),
               version=1, created_at=created, updated_at=created, code=f"{code_prefix}-{k:08d}")
    return {c: v for c, v in row.items() if c in columns}


def seed(engine, table, n: int, batch: int = 20_000, per_tx: int = 200_000) -> float:
    """n rows by Core executemany, `batch` rows a statement, `per_tx` rows a transaction; seconds."""
    rng = random.Random(1)
    cols = set(table.c.keys())
    t0 = time.perf_counter()
    done = 0
    while done < n:
        with engine.begin() as conn:
            stop = min(n, done + per_tx)
            while done < stop:
                rows = [make_row(rng, k, cols, "SEED", EPOCH - dt.timedelta(seconds=60 * k + rng.randrange(60)))
                        for k in range(done, min(stop, done + batch))]
                conn.execute(table.insert(), rows)
                done += len(rows)
                el = time.perf_counter() - t0
                print(f"  seeded {done:,}/{n:,} ({done / el:,.0f} rows/s)", file=sys.stderr, flush=True)
    return time.perf_counter() - t0


# -- measuring --------------------------------------------------------------------------------------
def p95(samples) -> float:
    s = sorted(samples)
    return s[max(0, math.ceil(0.95 * len(s)) - 1)]


def sample(fn, repeat: int, warmup: int = 3) -> list[float]:
    """Seconds of `repeat` calls of fn(i), after `warmup` calls not counted."""
    for i in range(warmup):
        fn(-1 - i)
    out = []
    for i in range(repeat):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


def paired(fn_a, fn_b, repeat: int, warmup: int = 3) -> tuple[list[float], list[float]]:
    """Interleaved samples of two functions (alternating which goes first), so that a noisy
    neighbour on the machine weighs on both sides alike."""
    for i in range(warmup):
        fn_a(-1 - i)
        fn_b(-1 - i)
    a, b = [], []
    for i in range(repeat):
        for fn, out in (((fn_a, a), (fn_b, b)) if i % 2 == 0 else ((fn_b, b), (fn_a, a))):
            t0 = time.perf_counter()
            fn(i)
            out.append(time.perf_counter() - t0)
    return a, b


def ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000, 2)


def minimal_app(engine, table):
    """The hand-written baseline: a tiny Flask app on the same engine and table — select by id and
    jsonify; insert with Core in a transaction and return the row as JSON. No auth, no rules."""
    from flask import Flask, abort, jsonify, request
    app = Flask("bench_minimal")

    @app.get("/c/<int:rid>")
    def get_one(rid):
        with engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.id == rid)).mappings().first()
        if row is None:
            abort(404)
        return jsonify(dict(row))

    @app.post("/c")
    def create_one():
        data = request.get_json()
        now = dt.datetime.now()
        with engine.begin() as conn:
            row = conn.execute(table.insert().values(name=data["name"], email=data.get("email"), version=1,
                                                     created_at=now, updated_at=now)
                               .returning(*table.c)).mappings().one()
        resp = jsonify(dict(row))
        resp.status_code = 201
        return resp

    return app


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=50, help="samples for list, search, get and create")
    ap.add_argument("--bulk-rows", type=int, default=20_000, help="rows sent to /bulk (batches of 1,000)")
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    ap.add_argument("--json", action="store_true", help="print the JSON object as the last line")
    args = ap.parse_args()

    import logging
    logging.disable(logging.INFO)
    from bench._db import throwaway
    eng, cleanup = throwaway(args.database_url, "bench")
    url = eng.url.render_as_string(hide_password=False)
    eng.dispose()
    sqlite_dir = os.path.dirname(eng.url.database) if eng.dialect.name == "sqlite" and eng.url.database \
        and "crm-bench-" in eng.url.database else None
    rt = None
    try:
        os.environ["DATABASE_URL"] = url
        os.environ["CRM_CONFIG_DIR"] = str(ROOT / "config")
        os.environ["SECRET_KEY"] = "bench"
        os.environ.pop("REDIS_URL", None)
        from app import create_app
        app = create_app({"TESTING": True})
        logging.disable(logging.INFO)
        rt = app.extensions["crm"]
        out = run(app, rt, args)
    finally:
        if rt is not None:
            rt.engine.dispose()
        cleanup()
        if sqlite_dir:
            shutil.rmtree(sqlite_dir, ignore_errors=True)
    from bench.config_rules import measure_config, measure_rules
    out |= measure_config(200) | measure_rules()
    print(f"config: 200 entities loaded and checked in {out['config_load_s']:.3f} s; rules: {out['rule_us']:.1f} µs "
          f"per evaluation against {out['rule_python_us']:.2f} µs as a Python lambda ({out['rule_ratio_python']}×)")
    if args.json:
        print(json.dumps(out, ensure_ascii=False))


def run(app, rt, args) -> dict:
    from platform_ import auth
    rt.ensure_schema()
    engine = rt.engine
    db = engine.dialect.name
    e = rt.config.entities[ENTITY]
    t = rt.store.table(e)
    auth.create_user(engine, "bench", "bench-Passw0rd", ["admin"])
    token = auth.create_token(engine, "bench")
    h = {"Authorization": f"Bearer {token}"}
    R = args.repeat
    out: dict = {"records": args.records, "database": db, "cpu_count": os.cpu_count(),
                 "machine": f"{platform.machine()} {platform.system()} {os.cpu_count()} cpu, "
                            f"python {platform.python_version()}", "repeat": R}

    print(f"seeding {args.records:,} {ENTITY} rows into {db} …", file=sys.stderr, flush=True)
    seed_s = seed(engine, t, args.records)
    if db == "postgresql":                     # what autovacuum would do shortly after a bulk load
        with engine.begin() as conn:
            conn.execute(sa.text(f'ANALYZE "{t.name}"'))
    out["seed_s"] = round(seed_s, 1)
    print(f"seeded {args.records:,} rows in {seed_s:.1f} s ({args.records / seed_s:,.0f} rows/s, {db})")
    with engine.connect() as conn:
        lo, hi = conn.execute(sa.select(sa.func.min(t.c.id), sa.func.max(t.c.id))).one()

    client = app.test_client()
    rows_out = []                              # (operation, p95/median ms, baseline ms, ratio, note)

    # -- list ----------------------------------------------------------------------------------------
    select = next((f for f in e.user_fields if f.type == "select" and f.options and f.index), None) \
        or next(f for f in e.user_fields if f.type == "select" and f.options)
    value = "high" if "high" in select.option_values else select.option_values[0]
    seen_total, seen_exact = set(), set()

    def api_list(i):
        page = i % 5 + 1 if i >= 0 else 1
        r = client.get(f"/api/v1/{ENTITY}", query_string={select.id: value, "sort": "-created_at",
                                                         "per_page": 50, "page": page}, headers=h)
        assert r.status_code == 200, (r.status_code, r.get_data(as_text=True)[:300])
        body = r.get_json()
        assert len(body["items"]) == 50
        seen_total.add(body["total"])
        seen_exact.add(body.get("total_exact", True))

    cond = [t.c.deleted_at.is_(None), t.c[select.id] == value]
    api_list(-1)
    # the same count as the API's: exact, or up to its cap when it answers `total_exact: false`
    cap = None if all(seen_exact) else max(seen_total)

    def sql_list(i):
        page = i % 5 + 1 if i >= 0 else 1
        with engine.connect() as c:
            if cap is None:
                c.execute(sa.select(sa.func.count()).select_from(t).where(*cond)).scalar_one()
            else:
                sub = sa.select(t.c.id).where(*cond).limit(max(cap, page * 50) + 1).subquery()
                c.execute(sa.select(sa.func.count()).select_from(sub)).scalar_one()
            rows = c.execute(sa.select(t).where(*cond).order_by(t.c.created_at.desc(), t.c.id.desc())
                             .limit(50).offset((page - 1) * 50)).mappings().all()
        assert len(rows) == 50

    a = sample(api_list, R)
    b = sample(sql_list, R)
    out.update(list_p95_ms=ms(p95(a)), list_median_ms=ms(statistics.median(a)), list_count=max(seen_total),
               list_count_exact=all(seen_exact), list_filter=f"{select.id}={value}", list_sql_p95_ms=ms(p95(b)),
               list_ratio_sql=round(p95(a) / p95(b), 2))
    rows_out.append((f"list {select.id}={value} p95", p95(a), p95(b), p95(a) / p95(b),
                     f"count {max(seen_total):,}{'' if all(seen_exact) else '+ (capped)'}, pages 1-5"))

    # -- search --------------------------------------------------------------------------------------
    searchable = [f for f in e.searchable_fields if f.stored]

    def api_search(q):
        found = {}

        def go(_i):
            r = client.get(f"/api/v1/{ENTITY}", query_string={"q": q}, headers=h)
            assert r.status_code == 200, (r.status_code, r.get_data(as_text=True)[:300])
            found["total"] = r.get_json()["total"]
        return go, found

    def sql_search(q):
        like = sa.or_(*[t.c[f.id].icontains(q, autoescape=True) if f.value_type in ("string", "text", "email",
                                                                                   "phone", "url", "autonumber")
                        else sa.cast(t.c[f.id], sa.String).icontains(q, autoescape=True) for f in searchable])
        sort = [t.c.created_at.desc(), t.c.id.desc()]

        def go(_i):
            with engine.connect() as c:
                c.execute(sa.select(sa.func.count()).select_from(t).where(t.c.deleted_at.is_(None), like)).scalar_one()
                c.execute(sa.select(t).where(t.c.deleted_at.is_(None), like).order_by(*sort).limit(e.per_page)).all()
        return go

    for key, q in (("search", SEARCH_ZH), ("search_en", SEARCH_EN)):
        go, found = api_search(q)
        a = sample(go, R)
        share = found["total"] / args.records
        out.update({f"{key}_p95_ms": ms(p95(a)), f"{key}_median_ms": ms(statistics.median(a)), f"{key}_q": q,
                    f"{key}_count": found["total"], f"{key}_share_pct": round(share * 100, 3)})
        # the baseline costs as much as the API's search (a scan): fewer samples at large N
        nb = R if args.records <= 200_000 else max(5, R // 5)
        b = sample(sql_search(q), nb, warmup=1)
        out.update({f"{key}_sql_p95_ms": ms(p95(b)), f"{key}_ratio_sql": round(p95(a) / p95(b), 2)})
        rows_out.append((f"search q={q} p95", p95(a), p95(b), p95(a) / p95(b),
                         f"{found['total']:,} hits ({share * 100:.2f} %), baseline n={nb}"))

    # -- get -----------------------------------------------------------------------------------------
    mini = minimal_app(engine, t).test_client()
    rng = random.Random(2)
    ids = [rng.randint(lo, hi) for _ in range(R + 10)]

    def api_get(i):
        r = client.get(f"/api/v1/{ENTITY}/{ids[i]}", headers=h)
        assert r.status_code == 200, r.status_code

    def flask_get(i):
        r = mini.get(f"/c/{ids[i]}")
        assert r.status_code == 200, r.status_code

    a, b = paired(api_get, flask_get, R)
    ga, gb = statistics.median(a), statistics.median(b)
    out.update(get_api_median_ms=ms(ga), get_flask_median_ms=ms(gb), get_ratio_flask=round(ga / gb, 2),
               get_api_p95_ms=ms(p95(a)))
    rows_out.append(("get by id median", ga, gb, ga / gb, "baseline: minimal Flask + SQLAlchemy"))

    # -- create --------------------------------------------------------------------------------------
    def api_create(i):
        r = client.post(f"/api/v1/{ENTITY}", json={"name": f"新建客户{i + 10}有限公司", "email": f"api{i + 10}@bench.example"},
                        headers=h)
        assert r.status_code == 201, (r.status_code, r.get_data(as_text=True)[:300])

    def flask_create(i):
        r = mini.post("/c", json={"name": f"新建客户{i + 10}有限公司", "email": f"min{i + 10}@bench.example"})
        assert r.status_code == 201, r.status_code

    a, b = paired(api_create, flask_create, R)
    ca, cb = statistics.median(a), statistics.median(b)
    out.update(create_api_median_ms=ms(ca), create_flask_median_ms=ms(cb), create_ratio_flask=round(ca / cb, 2),
               create_api_p95_ms=ms(p95(a)))
    rows_out.append(("create median", ca, cb, ca / cb, "baseline: minimal Flask + Core insert"))

    # -- bulk ----------------------------------------------------------------------------------------
    out.update(bulk(client, h, engine, t, args))
    if out.get("bulk_rows_per_s") and out.get("bulk_raw_rows_per_s"):
        rows_out.append(("bulk rows/s", out["bulk_rows_per_s"], out["bulk_raw_rows_per_s"], out["bulk_ratio_raw"],
                         f"{out['bulk_rows']:,} rows, batches of 1,000"))

    # -- table ---------------------------------------------------------------------------------------
    print(f"\n{args.records:,} {ENTITY} rows on {db}, {os.cpu_count()} cpu, {R} samples after warm-up")
    print(f"{'operation':<28}{'API':>12}{'baseline':>12}{'ratio':>8}  note")
    for name, x, y, r, note in rows_out:
        if name.startswith("bulk"):
            print(f"{name:<28}{x:>12,.0f}{y:>12,.0f}{r:>8.2f}  {note}")
        else:
            print(f"{name:<28}{x * 1000:>10.2f}ms{y * 1000:>10.2f}ms{r:>8.2f}  {note}")
    if out.get("bulk_rows_per_s") is None:
        print(f"{'bulk rows/s':<28}{'null':>12}{out.get('bulk_raw_rows_per_s') or 0:>12,}{'':>8}  {out['bulk_note']}")
    return out


def bulk(client, h, engine, table, args) -> dict:
    """POST /<entity>/bulk in batches of 1,000 (one warm-up batch not counted), then Core executemany of
    rows built the same way, a transaction per batch."""
    size, n = 1000, max(args.bulk_rows, 1000)
    rng = random.Random(3)
    base = args.records + 1_000_000
    batches = [[make_record(rng, base + k) for k in range(s, min(n, s + size))] for s in range(0, n, size)]
    warm = [make_record(rng, base - 1 - k) for k in range(size)]
    res: dict = {"bulk_rows_per_s": None, "bulk_rows": n, "bulk_batch": size}
    r = client.post(f"/api/v1/{ENTITY}/bulk", json={"records": warm}, headers=h)
    if r.status_code in (404, 405):
        res["bulk_note"] = f"POST /api/v1/{ENTITY}/bulk answers {r.status_code}: not there yet"
    elif r.status_code != 201 or (r.get_json() or {}).get("created") != size:
        res["bulk_note"] = f"warm-up batch: HTTP {r.status_code} {r.get_data(as_text=True)[:200]}"
    else:
        t0 = time.perf_counter()
        for recs in batches:
            r = client.post(f"/api/v1/{ENTITY}/bulk", json={"records": recs}, headers=h)
            body = r.get_json() or {}
            if r.status_code != 201 or body.get("created") != len(recs) or len(body.get("ids") or ()) != len(recs):
                res["bulk_note"] = f"HTTP {r.status_code} {r.get_data(as_text=True)[:200]}"
                break
        else:
            res["bulk_rows_per_s"] = round(n / (time.perf_counter() - t0))
            res["bulk_note"] = "ok"
    # the raw baseline: the same records as rows, Core executemany, a transaction per batch of 1,000
    cols = set(table.c.keys())
    now = dt.datetime.now()
    rows = []
    for recs in batches:
        rows.append([{**{c: v for c, v in rec.items() if c in cols}, "version": 1, "created_at": now,
                      "updated_at": now, "code": f"RAW-{base + i:08d}-{len(rows)}"} for i, rec in enumerate(recs)])
    with engine.begin() as conn:               # warm-up
        conn.execute(table.insert(), [{**rows[0][0], "code": "RAW-WARM"}])
    t0 = time.perf_counter()
    for chunk in rows:
        with engine.begin() as conn:
            conn.execute(table.insert(), chunk)
    raw = n / (time.perf_counter() - t0)
    res["bulk_raw_rows_per_s"] = round(raw)
    res["bulk_ratio_raw"] = round(res["bulk_rows_per_s"] / raw, 3) if res["bulk_rows_per_s"] else None
    print(f"bulk: {res['bulk_note']}", file=sys.stderr)
    return res


if __name__ == "__main__":
    main()
