"""Run a report (engine/reportspec.py) as one GROUP BY query built from SQLAlchemy expressions.

The WHERE clause is the list's own (`RecordStore.list_conditions`): read permission, row scope,
the report's filters and parameters, any extra list filters — so a report never shows a figure
the same user could not reach through the list. A field the user may not see cannot be grouped
or measured (403). Linked group-bys (`customer.region`) are LEFT JOINs of the linked tables.
Date buckets are text on every database: day `2026-11-23`, week `2026-11-23` (its Monday),
month `2026-11`, quarter `2026-Q4`, year `2026`, computed in UTC.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa

from .actor import Actor
from .daily import filter_value
from .db import reading
from .errors import BadRequest, Forbidden, NotFound
from .query import ListRequest, parse_args
from .reportspec import Report, readable, resolve

NOT_FILTERS = ("lang", "format", "sort", "page", "per_page", "deleted", "chart", "sla")


@dataclass
class Column:
    id: str
    kind: str                 # "group" or "measure"
    label: dict
    field: object = None      # the engine Field grouped or measured (None for count)
    bucket: str | None = None
    fn: str | None = None

    @property
    def type(self) -> str:
        if self.bucket:
            return self.bucket
        if self.fn in ("count", "distinct"):
            return "integer"
        if self.fn in ("avg", "trend") and (self.field is None or self.field.value_type == "integer"):
            return "decimal"
        return self.field.value_type if self.field is not None else "integer"


@dataclass
class Result:
    report: Report
    columns: list
    rows: list
    totals: list | None = None
    filters: list = field(default_factory=list)    # [(field, op, value)] the rows were filtered by
    parts: dict = field(default_factory=dict)       # a forecast: {"actual": Result, "pipeline": Result}

    def json(self) -> dict:
        return {"id": self.report.id, "columns": [{"id": c.id, "kind": c.kind, "type": c.type} for c in self.columns],
                "rows": self.rows, "totals": self.totals}


def get_report(config, report_id: str, actor: Actor) -> Report:
    rep = config.reports.get(report_id)
    if rep is None:
        raise NotFound(f"There is no report {report_id!r}.")
    if not readable(rep, actor):
        raise Forbidden(f"The report {report_id!r} is not for your roles.")
    return rep


def request_filters(store, rep: Report, args, actor: Actor) -> tuple[list, str | None]:
    """The report's fixed filters, its parameters (from `args`, else their defaults) and any other
    list filters of the source entity in `args`, as [(field, op, text)]; and the search text."""
    entity = store.entity(rep.entity)
    out = [(name, op, filter_value(value, actor.id)) for name, op, value in rep.filters]
    given = dict(args.items()) if args is not None else {}
    for p in rep.params:
        raw = given.get(p.id)
        value = filter_value(p.default, actor.id) if raw is None else str(raw).strip()
        if value not in ("", None):
            out.append((p.field, p.op, value))
    names = {p.id for p in rep.params}
    rest = {}
    if args is not None:
        for key in args:
            if key in names or key in NOT_FILTERS or key.startswith("_"):
                continue
            rest[key] = args.getlist(key) if hasattr(args, "getlist") else [args[key]]
    if rest:
        extra = parse_args(entity, _Multi(rest), reserved=("q",))
        out += extra.filters
    q = (given.get("q") or "").strip() or None
    return out, q


class _Multi(dict):
    def getlist(self, key):
        return self[key]

    def get(self, key, default=None):
        v = super().get(key)
        return v[0] if v else default


class _Joins:
    """The FROM clause: the source table, LEFT JOINed once per linked path prefix."""

    def __init__(self, store, entity, table, actor):
        self.store, self.entity, self.table, self.actor = store, entity, table, actor
        self.from_ = table
        self.aliases = {(): (entity, table)}

    def column(self, path: tuple):
        entities = self.store.config.entities
        e, t = self.entity, self.table
        for i, name in enumerate(path):
            if name in self.store.hidden_fields(e, self.actor):
                raise Forbidden(f"This report uses {e.label_text(self.actor.language)}.{name}, "
                                f"which you may not see.")
            if i == len(path) - 1:
                return t.c[name]
            prefix = path[:i + 1]
            if prefix not in self.aliases:
                target = entities[e.fields[name].to]
                self.store.policy.check(target, "read", self.actor)
                alias = self.store.table(target).alias("j_" + "_".join(prefix))
                self.from_ = self.from_.outerjoin(alias, sa.and_(t.c[name] == alias.c.id,
                                                                  alias.c.deleted_at.is_(None)))
                self.aliases[prefix] = (target, alias)
            e, t = self.aliases[prefix]
        raise BadRequest("an empty field path")


def bucket_expr(col, bucket: str, dialect: str):
    """A date/datetime column as the text of its bucket, the same text on SQLite and PostgreSQL."""
    if dialect == "postgresql":
        fmt = {"day": "YYYY-MM-DD", "week": "YYYY-MM-DD", "month": "YYYY-MM", "quarter": 'YYYY-"Q"Q',
               "year": "YYYY"}[bucket]
        src = sa.cast(col, sa.DateTime)
        if bucket == "week":
            src = sa.func.date_trunc("week", src, type_=sa.DateTime)
        return sa.func.to_char(src, fmt, type_=sa.String)
    if bucket == "week":     # the Monday on or before the day
        return sa.func.strftime("%Y-%m-%d", col, "weekday 0", "-6 days")
    if bucket == "quarter":
        month = sa.cast(sa.func.strftime("%m", col), sa.Integer)
        quarter = sa.cast((month + 2) // 3, sa.String)
        return sa.func.strftime("%Y", col, type_=sa.String).op("||")("-Q").op("||")(quarter)
    return sa.func.strftime({"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}[bucket], col)


def _measure(m, col, ftype):
    if m.fn == "count":
        return sa.func.count()
    if m.fn == "distinct":
        return sa.func.count(sa.distinct(col))
    if m.fn == "avg":
        return sa.func.avg(col, type_=sa.Numeric(asdecimal=True))
    return getattr(sa.func, m.fn)(col, type_=col.type)


def _number(v, f, fn):
    if v is None or fn in ("count", "distinct"):
        return v
    if f is not None and f.value_type in ("money", "percent", "decimal", "integer"):
        scale = f.scale if f.scale is not None else (0 if f.value_type == "integer" else 4)
        if fn == "avg":
            scale = max(scale, 2)
        d = Decimal(str(v))
        return d.quantize(Decimal(1).scaleb(-scale)) if scale else (d.to_integral_value() if fn != "avg" else d)
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return v


def run(store, report_id: str, actor: Actor, args=None, extra_filters=(), group: bool = True) -> Result:
    """The report's rows (and totals), computed in SQL. `extra_filters` narrow it further (a KPI's
    period); `group=False` computes only the totals row (one row of measures). A report with
    `forecast:` answers its periods with the actuals and the trend beside the pipeline."""
    rep = get_report(store.config, report_id, actor)
    if rep.forecast is not None and group:
        return forecast(store, rep, actor, args)
    return _grouped(store, rep, actor, args, extra_filters, group)


def _grouped(store, rep: Report, actor: Actor, args, extra_filters, group: bool) -> Result:
    entity = store.entity(rep.entity)
    filters, q = request_filters(store, rep, args, actor)
    filters += list(extra_filters)
    t = store.table(entity)
    conds, _hidden = store.list_conditions(entity, t, ListRequest(filters=filters, q=q), actor)
    joins = _Joins(store, entity, t, actor)
    dialect = store.engine.dialect.name
    cols, dims, meas = [], [], []
    entities = store.config.entities
    for d in rep.group_by if group else ():
        f, _ = resolve(entities, entity, d.path)
        expr = joins.column(d.path)
        if d.bucket:
            expr = bucket_expr(expr, d.bucket, dialect)
        dims.append(expr.label(d.id))
        cols.append(Column(d.id, "group", d.label or f.label, f, d.bucket))
    for m in rep.measures:
        f = resolve(entities, entity, m.path)[0] if m.path else None
        expr = _measure(m, joins.column(m.path) if m.path else None, f)
        meas.append(expr.label(m.id))
        label = m.label or (f.label if f is not None else {"en": "Count", "zh": "数量"})
        cols.append(Column(m.id, "measure", label, f, fn=m.fn))
    exprs = {c.key: c for c in (*dims, *meas)}
    rows, totals = [], None
    with reading(store.engine) as conn:
        if dims:
            q_ = sa.select(*dims, *meas).select_from(joins.from_).where(*conds).group_by(*[d.element for d in dims])
            q_ = q_.order_by(*_order(rep, exprs, dims))
            if rep.limit:
                q_ = q_.limit(rep.limit)
            for r in conn.execute(q_):
                rows.append([_number(v, c.field, c.fn) if c.kind == "measure" else _group_value(v)
                             for v, c in zip(r, cols)])
        if rep.totals or not dims:
            r = conn.execute(sa.select(*meas).select_from(joins.from_).where(*conds)).first()
            totals = [None] * len(dims) + [_number(v, c.field, c.fn) for v, c in zip(r, cols[len(dims):])]
            if not dims:
                rows = [totals[len(dims):]]
    return Result(rep, cols, rows, totals if rep.totals or not dims else None, filters)


def _group_value(v):
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    return v


def _order(rep: Report, exprs: dict, dims: list) -> list:
    out = []
    for part in (rep.sort or "").split(","):
        part = part.strip()
        if not part:
            continue
        e = exprs[part.lstrip("-+")]
        e = e.element if hasattr(e, "element") else e
        out.append(e.desc() if part.startswith("-") else e.asc())
    return out + [d.element.asc() for d in dims]


def period_bounds(period: str, today: dt.date, back: int = 0) -> tuple[dt.date, dt.date]:
    """[start, end) of the period containing `today`, or of the one `back` periods before it."""
    if period == "day":
        start = today - dt.timedelta(days=back)
        return start, start + dt.timedelta(days=1)
    if period == "week":
        start = today - dt.timedelta(days=today.weekday()) - dt.timedelta(weeks=back)
        return start, start + dt.timedelta(weeks=1)
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    first = (today.month - 1) // months * months          # 0-based first month of the period
    index = today.year * 12 + first - back * months
    start = dt.date(index // 12, index % 12 + 1, 1)
    index += months
    return start, dt.date(index // 12, index % 12 + 1, 1)


def bucket_bounds(bucket: str, text: str) -> tuple[dt.date, dt.date] | None:
    """[start, end) of a bucket's text (`2026-11`, `2026-Q4`, …), or None when it is not one."""
    try:
        if bucket in ("day", "week"):
            day = dt.date.fromisoformat(text)
            return period_bounds(bucket, day)
        if bucket == "month":
            y, m = text.split("-")
            return period_bounds("month", dt.date(int(y), int(m), 1))
        if bucket == "quarter":
            y, q = text.split("-Q")
            return period_bounds("quarter", dt.date(int(y), int(q) * 3 - 2, 1))
        if bucket == "year":
            return period_bounds("year", dt.date(int(text), 1, 1))
    except (ValueError, TypeError):
        return None
    return None


def drill_filters(result: Result, row: list) -> list | None:
    """The list filters [(key, value)] of the source entity that show the records behind a row,
    or None when a group is on a linked field (the list cannot filter by it)."""
    out = [(name if op == "eq" else f"{name}__{op}", value) for name, op, value in result.filters]
    for c, v in zip(result.columns, row):
        if c.kind != "group":
            continue
        dim = result.report.column(c.id)
        if len(dim.path) != 1:
            return None
        name = dim.path[0]
        if v is None:
            out.append((f"{name}__isnull", "1"))
        elif c.bucket:
            bounds = bucket_bounds(c.bucket, str(v))
            if bounds is None:
                return None
            out += [(f"{name}__gte", bounds[0].isoformat()), (f"{name}__lt", bounds[1].isoformat())]
        else:
            out.append((name, "true" if v is True else "false" if v is False else str(v)))
    return out


# ---- forecast: the pipeline per period beside the actuals and their trend ---------------------------

TREND = {"en": "Trend", "zh": "趋势"}
MAX_SPAN = 120      # periods; a wider span (a stray date far off) shows only the periods with figures


def period_index(bucket: str, day: dt.date) -> int:
    """A running number of the bucket's period containing `day` (consecutive periods differ by 1)."""
    start = period_bounds(bucket, day)[0]
    if bucket == "day":
        return start.toordinal()
    if bucket == "week":
        return (start.toordinal() - 1) // 7         # ordinal 1 (0001-01-01) is a Monday
    months = start.year * 12 + start.month - 1
    return {"month": months, "quarter": months // 3, "year": start.year}[bucket]


def period_text(bucket: str, index: int) -> str:
    """The bucket text of a period number (the inverse of period_index over bucket texts)."""
    if bucket == "day":
        return dt.date.fromordinal(index).isoformat()
    if bucket == "week":
        return dt.date.fromordinal(index * 7 + 1).isoformat()
    if bucket == "month":
        return f"{index // 12:04d}-{index % 12 + 1:02d}"
    if bucket == "quarter":
        return f"{index // 4:04d}-Q{index % 4 + 1}"
    return f"{index:04d}"


def linear_trend(points: list) -> tuple[Decimal, Decimal] | None:
    """Least squares over [(x, y)]: (intercept, slope) of y = a + b·x, in exact decimals; None for
    fewer than two points."""
    n = len(points)
    if n < 2:
        return None
    sx = sum(Decimal(x) for x, _ in points)
    sy = sum(Decimal(str(y)) for _, y in points)
    sxx = sum(Decimal(x) * x for x, _ in points)
    sxy = sum(Decimal(x) * Decimal(str(y)) for x, y in points)
    slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
    return (sy - slope * sx) / n, slope


def forecast(store, rep: Report, actor: Actor, args=None, today: dt.date | None = None) -> Result:
    """Per period of the report's bucket: the actuals (another report's measure, 0 in the periods
    without any up to now), the report's own measures from the current period on (the open pipeline,
    e.g. the weighted amount by expected close month) and a least-squares trend fitted to the last
    `periods` complete periods of actuals, carried on to the last period shown. The figures are the
    two reports' GROUP BY rows; only the trend is arithmetic on those few aggregates."""
    from . import clock
    fc = rep.forecast
    bucket = rep.group_by[0].bucket
    pipe = _grouped(store, rep, actor, args, (), True)
    actual = run(store, fc.report, actor, args)
    now = period_index(bucket, today or clock.today())
    acol = next(c for c in actual.columns if c.id == fc.measure)
    ai = actual.columns.index(acol)

    def index(text):
        bounds = bucket_bounds(bucket, str(text)) if text is not None else None
        return period_index(bucket, bounds[0]) if bounds else None

    done = {}
    for r in actual.rows:
        i = index(r[0])
        if i is not None:
            done[i] = r[ai]
    ahead = {}
    for r in pipe.rows:
        i = index(r[0])
        if i is not None and i >= now:
            ahead[i] = r[1:]
    known = set(done) | set(ahead) | {now}
    span = range(min(known), max(known) + 1)
    axis = list(span) if len(span) <= MAX_SPAN else sorted(known)
    first = min(done) if done else None
    zero = Decimal(0) if acol.fn not in ("count", "distinct") else 0
    fit = [(i, done.get(i) or zero) for i in range(max(now - fc.periods, first if first is not None else now), now)]
    line = linear_trend(fit)
    scale = acol.field.scale if acol.field is not None and acol.field.scale is not None else 2
    quantum = Decimal(1).scaleb(-scale)
    start = fit[0][0] if fit else now
    nm = len(pipe.columns) - 1
    rows = []
    for i in axis:
        a = done.get(i, zero if first is not None and first <= i <= now else None)
        t = (line[0] + line[1] * i).quantize(quantum) if line and i >= start else None
        rows.append([period_text(bucket, i), a, *(ahead.get(i) or [None] * nm), t])
    dim = pipe.columns[0]
    cols = [dim, Column(fc.actual_id, "measure", fc.actual_label or acol.label, acol.field, fn=acol.fn),
            *pipe.columns[1:], Column(fc.trend_id, "measure", fc.trend_label or TREND, acol.field, fn="trend")]
    totals = None
    if rep.totals:
        totals = [None]
        for k, c in enumerate(cols[1:], 1):
            vals = [r[k] for r in rows if r[k] is not None]
            totals.append(sum(vals, zero if k == 1 else 0) if c.fn in ("sum", "count") and vals else None)
    return Result(rep, cols, rows, totals, pipe.filters, {"actual": actual, "pipeline": pipe})
