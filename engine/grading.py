"""RFM grading (config/segments/*.yaml with `grading: rfm`): each record of an entity gets a grade
from the recency, frequency and amount of the source records linked to it (orders of a customer),
written into one of its select fields.

Computed in one SQL query: the source is grouped by its link over the window (last date, count,
sum); each of R, F and M is scored 1..k (k = `scores`, default 3) by rank among the graded records
— score = 1 + floor(k × (records with a strictly lower value) / records graded), so ties share a
score and the figures can be checked by hand; the total R+F+M picks the highest grade whose cut
point it reaches (`grades`, default high 7, medium 5, low 0 for k = 3). A record with no source
record in the window gets the lowest grade. Only the (id, grade) pairs that differ from the stored
value come back to Python, and they are written through the record store (`write_many`, in
batches; inside a timer's transaction `_update` on its connection) so audit, events and triggers
see every change.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from . import clock
from .errors import Problem
from .model import NUMERIC_TYPES, norm_label
from .query import ListRequest, where_clauses
from .schemas import suggest

BATCH = 500
DEFAULT_GRADES = (("high", 7), ("medium", 5), ("low", 0))


@dataclass(frozen=True)
class Source:
    entity: str
    link: str
    date: str
    amount: str
    filters: tuple = ()        # ((field, op, value), ...) as a report's `filter:`


@dataclass(frozen=True)
class Grading:
    id: str
    label: dict
    entity: str
    method: str
    source: Source
    field: str
    window_days: int = 365
    scores: int = 3
    grades: tuple = DEFAULT_GRADES     # ((value, minimum total), ...), highest minimum first
    cron: str | None = None
    timezone: str | None = None
    description: dict | None = None
    file: str = ""
    kind = "grading"


def build(doc, filters_of) -> Grading:
    raw = doc.data
    src = raw.get("source") or {}         # missing: reported by `check`
    grades = tuple(sorted(raw["grades"].items(), key=lambda kv: -kv[1])) if raw.get("grades") else DEFAULT_GRADES
    return Grading(id=raw["segment"], label=norm_label(raw.get("label"), raw["segment"]), entity=raw["entity"],
                   method=raw["grading"], field=raw.get("field", ""), window_days=raw.get("window_days", 365),
                   scores=raw.get("scores", 3), grades=grades, cron=raw.get("cron"), timezone=raw.get("timezone"),
                   source=Source(entity=src.get("entity", ""), link=src.get("link", ""), date=src.get("date", ""),
                                 amount=src.get("amount", ""), filters=filters_of(src.get("filter"))),
                   description=norm_label(raw["description"], "") if raw.get("description") else None,
                   file=doc.file)


def check(g: Grading, doc, entities: dict, check_filter) -> list[Problem]:
    """What a schema cannot see: entities and fields exist and have the right types, the grades are
    options of the field, the cut points fit the scores, the cron line and zone are valid."""
    out = []
    raw = doc.data
    missing = [k for k in ("field", "source") if k not in raw]
    if missing:
        return [doc.problem(("segment",), f"a grading needs {' and '.join(f'`{k}:`' for k in missing)}: the select "
                                          f"field the grade is written into and the source records (entity, link, "
                                          f"date, amount)")]
    if g.timezone and not g.cron:
        out.append(doc.problem(("timezone",), "`timezone:` is the zone of `cron:`, which is missing"))
    if "filter" in raw:
        out.append(doc.problem(("filter",), "a grading grades every record of its entity; filter its source "
                                            "instead (source.filter)"))
    e = entities.get(g.entity)
    if e is None or e.child:
        return out + [doc.problem(("entity",), f"{g.entity!r} is not an entity{suggest(g.entity, list(entities))}")]
    f = e.fields.get(g.field)
    if f is None or not f.stored:
        out.append(doc.problem(("field",), f"{e.id} has no field {g.field!r}{suggest(g.field, list(e.fields))}"))
    elif f.type != "select" or not f.writable:
        out.append(doc.problem(("field",), f"{e.id}.{g.field} is a {f.type} field{' (read-only)' if not f.writable else ''}"
                                           f"; a grade is written into a writable select field"))
    else:
        for value, _ in g.grades:
            if value not in f.option_values:
                where = ("grades", value) if raw.get("grades") else ("field",)
                out.append(doc.problem(where, f"{value!r} is not an option of {e.id}.{g.field} "
                                              f"({', '.join(f.option_values)}){suggest(value, f.option_values)}"))
    top = 3 * g.scores
    if raw.get("grades"):
        for value, cut in g.grades:
            if cut > top:
                out.append(doc.problem(("grades", value), f"{cut} is above the highest total {top} "
                                                          f"(R + F + M, each scored 1..{g.scores})"))
    elif g.scores != 3:
        out.append(doc.problem(("scores",), f"with scores: {g.scores} give `grades:` (cut points for totals "
                                            f"3..{top}); the defaults are for scores: 3"))
    s = entities.get(g.source.entity)
    if s is None or s.child:
        return out + [doc.problem(("source", "entity"), f"{g.source.entity!r} is not an entity"
                                                        f"{suggest(g.source.entity, list(entities))}")]
    for key, types, what in (("link", ("link",), f"a link to {e.id}"), ("date", ("date", "datetime"), "a date"),
                             ("amount", NUMERIC_TYPES, "a number or money field")):
        name = getattr(g.source, key)
        sf = s.fields.get(name)
        if sf is None or not sf.stored:
            out.append(doc.problem(("source", key), f"{s.id} has no field {name!r}"
                                                    f"{suggest(name, [k for k, v in s.fields.items() if v.stored])}"))
        elif sf.value_type not in types or (key == "link" and sf.to != e.id) or sf.encrypted:
            out.append(doc.problem(("source", key), f"{s.id}.{name} is a {sf.value_type} field; expected {what}"))
    for name, op, value in g.source.filters:
        out += check_filter(doc, ("source", "filter", name if op == "eq" else f"{name}__{op}"), s, name, op, value)
    if g.cron:
        from croniter import croniter
        if len(g.cron.split()) != 5 or not croniter.is_valid(g.cron):
            out.append(doc.problem(("cron",), f"{g.cron!r} is not a valid cron line (five fields: minute hour "
                                              f"day-of-month month day-of-week)"))
    if g.timezone:
        try:
            from zoneinfo import ZoneInfo
            ZoneInfo(g.timezone)
        except Exception:  # noqa: BLE001 - any failure is an unknown zone
            out.append(doc.problem(("timezone",), f"{g.timezone!r} is not a time zone (e.g. Asia/Shanghai)"))
    return out


def _changes_query(store, g: Grading, today: dt.date):
    """SELECT id, grade of every live record whose stored grade differs from the computed one."""
    from .daily import filter_value
    entities = store.config.entities
    e, src = entities[g.entity], entities[g.source.entity]
    t, s = store.table(e), store.table(src)
    link, date, amount = s.c[g.source.link], s.c[g.source.date], s.c[g.source.amount]
    lo, hi = today - dt.timedelta(days=g.window_days), today + dt.timedelta(days=1)
    if src.fields[g.source.date].value_type == "datetime":
        lo, hi = dt.datetime.combine(lo, dt.time()), dt.datetime.combine(hi, dt.time())
    req = ListRequest(filters=[(n, op, filter_value(v)) for n, op, v in g.source.filters])
    conds = [s.c.deleted_at.is_(None), link.is_not(None), date >= lo, date < hi,
             *where_clauses(src, s, req, None, store.engine.dialect.name)]
    agg = (sa.select(link.label("rid"), sa.func.max(date).label("r"), sa.func.count().label("f"),
                     sa.func.coalesce(sa.func.sum(amount), 0).label("m"))
           .where(*conds).group_by(link).subquery("agg"))
    k = g.scores
    n = sa.func.count().over()

    def score(col):
        return 1 + (k * (sa.func.rank().over(order_by=col) - 1)) // n

    scored = (sa.select(agg.c.rid, (score(agg.c.r) + score(agg.c.f) + score(agg.c.m)).label("total"))
              .select_from(agg.join(t, t.c.id == agg.c.rid)).where(t.c.deleted_at.is_(None)).subquery("scored"))
    lowest = g.grades[-1][0]
    grade = sa.case((scored.c.rid.is_(None), lowest),
                    *[(scored.c.total >= cut, value) for value, cut in g.grades[:-1]], else_=lowest)
    col = t.c[g.field]
    return (sa.select(t.c.id, grade.label("grade"))
            .select_from(t.outerjoin(scored, scored.c.rid == t.c.id))
            .where(t.c.deleted_at.is_(None), sa.or_(col.is_(None), col != grade))
            .order_by(t.c.id))


def changes(store, g: Grading, conn=None, today: dt.date | None = None) -> list[tuple[int, str]]:
    """[(record id, new grade)] of the records whose grade changes, read in batches."""
    from .db import reading
    q = _changes_query(store, g, today or clock.today())
    if conn is not None:
        return _fetch(conn, q)
    with reading(store.engine) as c:
        return _fetch(c, q)


def _fetch(conn, q) -> list:
    out, result = [], conn.execute(q)
    while rows := result.fetchmany(BATCH):
        out += [(r[0], r[1]) for r in rows]
    return out


def run(store, g: Grading, actor, conn=None) -> dict:
    """Grade every record; returns {"graded": records of the entity, "changed": records written}.
    Without `conn`: one write_many transaction per batch. With `conn` (a timer's transaction): the
    store's update on that connection (a second transaction would wait for this one's lock)."""
    with clock.in_zone(g.timezone):
        todo = changes(store, g, conn)
    entity = store.entity(g.entity)
    for i in range(0, len(todo), BATCH):
        part = todo[i:i + BATCH]
        if conn is None:
            store.write_many(entity.id, [{"id": rid, g.field: grade} for rid, grade in part], actor, mode="internal")
        else:
            for rid, grade in part:
                store.update_in_transaction(conn, entity, rid, {g.field: grade}, actor)
    return {"changed": len(todo), "graded": _count(store, entity, conn)}


def _count(store, entity, conn) -> int:
    from .db import reading
    t = store.table(entity)
    q = sa.select(sa.func.count()).select_from(t).where(t.c.deleted_at.is_(None))
    if conn is not None:
        return conn.execute(q).scalar_one()
    with reading(store.engine) as c:
        return c.execute(q).scalar_one()


def scheduled(config) -> list[Grading]:
    """The gradings with their own `cron:` (planned by the automation scheduler)."""
    return [g for g in getattr(config, "segments", {}).values() if isinstance(g, Grading) and g.cron]
