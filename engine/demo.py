"""Generic demo data: realistic, consistent records for any config (Chinese and English).

Driven by the entities' `demo:` hints (see docs/config-reference.md); without hints, values come
from the field type. Rows are bulk-inserted with Core in batches (one transaction each), link
fields point at existing rows of the target (targets are filled first), child tables get 1–4
rows per parent, computed fields are evaluated with the rule engine, auto-number series continue
after the demo numbers. Faker values are drawn from pools so a million rows stays fast.
"""
from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import sqlalchemy as sa
from faker import Faker

from . import autonumber, rules, values
from .db import writing
from .errors import RuleError
from .model import Config, Entity, Field
from .systables import series, users

POOL = 400
BATCH = 2000
LOCALES = ("zh_CN", "en_US")


class _Pools:
    def __init__(self, seed: int):
        self.fakers = [Faker(loc) for loc in LOCALES]
        for i, f in enumerate(self.fakers):
            f.seed_instance(seed + i)
        self.cache: dict = {}

    def draw(self, rng: random.Random, method: str, args: dict | None = None):
        key = (method, tuple(sorted((args or {}).items())))
        pool = self.cache.get(key)
        if pool is None:
            pool = []
            for i in range(POOL):
                fk = self.fakers[0] if i % 5 < 3 else self.fakers[1]   # ~60 % Chinese
                try:
                    pool.append(getattr(fk, method)(**(args or {})))
                except AttributeError:
                    pool.append(getattr(self.fakers[1], method)(**(args or {})))
            self.cache[key] = pool
        return rng.choice(pool)


def _order(config: Config) -> list[Entity]:
    """Top-level entities, link targets first (cycles broken by leaving a back link empty)."""
    todo = [e for e in config.entities.values() if not e.child]
    done, out = set(), []
    while todo:
        progress = False
        for e in list(todo):
            deps = {f.to for f in e.user_fields if f.type == "link" and f.to != e.id and f.required}
            deps |= {f.to for f in e.user_fields if f.type == "link" and f.to != e.id
                     and f.to in {x.id for x in todo} and not _links_back(config, f.to, e.id)}
            if deps <= done or not (deps & {x.id for x in todo}):
                out.append(e)
                done.add(e.id)
                todo.remove(e)
                progress = True
        if not progress:          # a cycle of optional links: take the first and leave its link empty
            e = todo.pop(0)
            out.append(e)
            done.add(e.id)
    return out


def _links_back(config, a: str, b: str) -> bool:
    return any(f.type == "link" and f.to == b for f in config.entities[a].user_fields)


class _Gen:
    def __init__(self, engine, config, metadata, seed, actor_id):
        self.engine, self.config, self.metadata = engine, config, metadata
        self.rng = random.Random(seed)
        self.pools = _Pools(seed)
        self.ids: dict[str, list[int]] = {}
        self.today = dt.date.today()
        self.now = dt.datetime.now().replace(microsecond=0)
        self.unique_seq = 0
        self.taken: dict[tuple, set] = {}      # values of unique fields in use, per (entity, field)
        self.actor_id = actor_id
        with engine.connect() as c:
            self.users = [r.id for r in c.execute(sa.select(users.c.id).where(users.c.active.is_(True)))]
        if actor_id and actor_id not in self.users:
            self.users.append(actor_id)
        self.counters: dict[str, int] = {}

    def target_ids(self, entity_id: str) -> list[int]:
        if entity_id not in self.ids:
            t = self.metadata.tables[self.config.entities[entity_id].table_name]
            with self.engine.connect() as c:
                self.ids[entity_id] = [r[0] for r in c.execute(sa.select(t.c.id).where(t.c.deleted_at.is_(None)))]
        return self.ids[entity_id]

    def value(self, e: Entity, f: Field, row: dict):
        hint = f.demo
        rng = self.rng
        if hint is False:
            return None
        if isinstance(hint, dict) and hint.get("empty") and not f.required and rng.random() < hint["empty"]:
            return None
        t = f.value_type
        if isinstance(hint, str):
            v = self.pools.draw(rng, hint)
        elif isinstance(hint, dict) and "faker" in hint:
            v = self.pools.draw(rng, hint["faker"], hint.get("args"))
        elif isinstance(hint, dict) and "choices" in hint:
            v = rng.choice(hint["choices"])
        elif t in ("integer", "decimal", "money", "percent"):
            lo = (hint or {}).get("min", f.min if f.min is not None else 0) if isinstance(hint, dict) else (f.min or 0)
            hi = (hint or {}).get("max", f.max if f.max is not None else {"percent": 100, "integer": 1000}.get(t, 100000)) \
                if isinstance(hint, dict) else (f.max if f.max is not None else {"percent": 100, "integer": 1000}.get(t, 100000))
            v = rng.randint(int(lo), int(hi)) if t == "integer" else \
                Decimal(str(round(rng.uniform(float(lo), float(hi)), 2)))
        elif t in ("date", "datetime"):
            a, b = hint["days"] if isinstance(hint, dict) and "days" in hint else (-365, 365)
            d = self.today + dt.timedelta(days=rng.randint(a, b))
            v = d if t == "date" else dt.datetime.combine(d, dt.time(rng.randint(8, 19), rng.choice((0, 15, 30, 45))))
        elif t == "boolean":
            v = rng.random() < 0.5
        elif t == "select":
            v = rng.choice(f.option_values) if f.options else None
        elif t == "multiselect":
            v = rng.sample(list(f.option_values), rng.randint(0, min(2, len(f.option_values))))
        elif t == "link":
            ids = self.target_ids(f.to) if f.to in self.config.entities else []
            v = rng.choice(ids) if ids else None
        elif t == "user":
            v = rng.choice(self.users) if self.users else None
        elif t == "email":
            v = self.pools.draw(rng, "email")
        elif t == "phone":
            v = self.pools.draw(rng, "phone_number")
        elif t == "url":
            v = self.pools.draw(rng, "url")
        elif t == "text":
            v = self.pools.draw(rng, "paragraph")
        elif t == "string":
            v = self.pools.draw(rng, "catch_phrase")
        else:
            return None
        if isinstance(v, str) and t in ("string", "email", "phone", "url", "text"):
            limit = f.max_length or {"string": 255, "email": 254, "phone": 64, "url": 1024}.get(t)
            if limit:
                v = v[:limit]
        if t == "phone" and isinstance(v, str) and not values.PHONE_RX.match(v):
            v = "+86 " + "".join(ch for ch in v if ch.isdigit())[:11] or None
        if f.unique and v is not None:
            v = self.unique(e, f, v, hint)
        return v

    def unique(self, e: Entity, f: Field, v, hint):
        """A value of a unique field not taken yet: an unused demo choice as it is (a region is
        called 华东, not 华东-4), else the value with a sequence number (or days) added."""
        key = (e.id, f.id)
        if key not in self.taken:
            t = self.metadata.tables[e.table_name]
            with self.engine.connect() as c:
                self.taken[key] = {r[0] for r in c.execute(sa.select(t.c[f.id]).where(t.c[f.id].is_not(None)))}
        taken = self.taken[key]
        if v in taken and isinstance(hint, dict) and "choices" in hint:
            v = next((c for c in hint["choices"] if c not in taken), v)
        if v in taken:
            self.unique_seq += 1
            if isinstance(v, dt.date):
                v = v + dt.timedelta(days=self.unique_seq)
            elif isinstance(v, str):
                v = f"{v}-{self.unique_seq}"[: (f.max_length or 255)]
        taken.add(v)
        return v

    def state(self, f: Field):
        wf = self.config.workflows.get(f.workflow)
        if wf is None:
            return None
        if self.rng.random() < 0.4:
            return wf.initial
        open_states = [s.id for s in wf.states.values() if not s.final]
        final = [s.id for s in wf.states.values() if s.final]
        pool = open_states if (self.rng.random() < 0.8 or not final) else final
        return self.rng.choice(pool)

    def number(self, e: Entity, f: Field) -> str:
        rendered = autonumber.render_prefix(f.format, self.today)
        m = autonumber.HASHES.search(rendered)
        key = f"{e.id}.{f.id}:{rendered[:m.start()]}|{rendered[m.end():]}"
        if key not in self.counters:
            with self.engine.connect() as c:
                self.counters[key] = c.execute(sa.select(series.c.value).where(series.c.key == key)).scalar() or 0
        self.counters[key] += 1
        width = len(m.group(1) or m.group(2))
        return rendered[:m.start()] + str(self.counters[key]).zfill(width) + rendered[m.end():]

    def compute(self, e: Entity, row: dict, rows: dict):
        for f in e.user_fields:
            if f.computed and f.stored:
                names = {k: row.get(k) for k in e.fields}
                names.update(rows)
                try:
                    v = rules.evaluate(f.compute, names, self.actor_id)
                    row[f.id] = values.coerce(f, v) if v is not None else None
                except (RuleError, ValueError):
                    row[f.id] = None

    def record(self, e: Entity) -> tuple[dict, dict]:
        row: dict = {}
        children: dict = {}
        for f in e.user_fields:
            if not f.stored or f.computed or f.id == "owner":
                continue
            if f.type == "autonumber":
                row[f.id] = self.number(e, f)
            elif f.type == "state":
                row[f.id] = self.state(f)
            elif f.type == "attachment":
                row[f.id] = None
            else:
                row[f.id] = self.value(e, f, row)
            if row[f.id] is None and f.required:
                if f.default is not None and not rules.is_call_expression(f.default):
                    row[f.id] = values.coerce(f, f.default)
                elif isinstance(f.default, str) and rules.is_call_expression(f.default):
                    row[f.id] = values.coerce(f, rules.evaluate(f.default, {}, self.actor_id))
        for tf in e.table_fields:
            child = self.config.entities[tf.of]
            lines = []
            for i in range(self.rng.randint(1, 4)):
                line = {cf.id: self.value(child, cf, {}) for cf in child.user_fields if cf.stored and not cf.computed}
                self.compute(child, line, {})
                lines.append(line)
            children[tf.id] = lines
        self.compute(e, row, children)
        if not e.child:
            created = self.now - dt.timedelta(minutes=self.rng.randint(0, 525600))
            owner = self.rng.choice(self.users) if self.users else self.actor_id
            row.update(version=1, created_at=created, updated_at=created, created_by=owner, updated_by=owner,
                       owner=owner, deleted_at=None)
        return row, children


def count_for(e: Entity, records: int) -> int:
    weight = 1.0 if e.demo_weight is None else e.demo_weight
    if weight <= 0:
        return 0          # `demo: {weight: 0}`: no demo rows (calendars, holidays: real data only)
    return max(3, round(records * weight))


def generate(engine, config: Config, metadata: sa.MetaData, records: int, seed: int = 0, progress=None,
             actor_id=None) -> dict[str, int]:
    gen = _Gen(engine, config, metadata, seed, actor_id)
    counts: dict[str, int] = {}
    for e in _order(config):
        t = metadata.tables[e.table_name]
        total = count_for(e, records)
        with engine.connect() as c:
            next_id = (c.execute(sa.select(sa.func.max(t.c.id))).scalar() or 0) + 1
        made = 0
        while made < total:
            n = min(BATCH, total - made)
            parents, kids = [], {}
            for i in range(n):
                row, children = gen.record(e)
                row["id"] = next_id + made + i
                parents.append(row)
                for fid, lines in children.items():
                    kids.setdefault(fid, []).extend(
                        {**line, "parent_id": row["id"], "idx": j} for j, line in enumerate(lines))
            with writing(engine) as conn:
                conn.execute(t.insert(), parents)
                for fid, lines in kids.items():
                    if lines:
                        conn.execute(metadata.tables[config.entities[e.fields[fid].of].table_name].insert(), lines)
            made += n
            if progress:
                progress(e.id, made, total)
        gen.ids.pop(e.id, None)  # reloaded from the table when a later entity links here
        counts[e.id] = total
    with writing(engine) as conn:
        for key, value in gen.counters.items():
            dialect = conn.dialect.name
            from sqlalchemy.dialects import postgresql, sqlite
            ins = (postgresql if dialect == "postgresql" else sqlite).insert(series).values(key=key, value=value)
            conn.execute(ins.on_conflict_do_update(index_elements=[series.c.key], set_={"value": value}))
        if conn.dialect.name == "postgresql":
            for e in config.entities.values():
                name = e.table_name
                conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence(:t, 'id'), "
                                     f"COALESCE((SELECT MAX(id) FROM \"{name}\"), 0) + 1, false)"), {"t": name})
    return counts


def is_empty(engine, config: Config, metadata: sa.MetaData) -> bool:
    with engine.connect() as c:
        for e in config.entities.values():
            if not e.child:
                t = metadata.tables[e.table_name]
                if c.execute(sa.select(t.c.id).limit(1)).first() is not None:
                    return False
    return True
