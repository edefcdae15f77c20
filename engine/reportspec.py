"""Reports and dashboards in the config language (config/reports/*.yaml, config/dashboards/*.yaml):
frozen specs built from checked YAML, and the cross-checks a JSON Schema cannot make (fields
exist, a bucket is on a date, a measure adds up numbers, a widget names a report) — each problem
at file:line. engine/reports.py turns a spec into one GROUP BY query."""
from __future__ import annotations

from dataclasses import dataclass

from . import rules
from .errors import Problem, RuleError
from .model import NUMERIC_TYPES, norm_label
from .query import OPS
from .schemas import suggest

BUCKETS = ("day", "week", "month", "quarter", "year")
CHARTS = ("bar", "stacked_bar", "line", "pie", "funnel", "table")
FUNCTIONS = ("count", "sum", "avg", "min", "max", "distinct")
ORDERED = NUMERIC_TYPES | {"date", "datetime"}


@dataclass(frozen=True)
class Dim:
    """One group-by column: a field of the source entity or, through links, of a linked one."""
    id: str
    path: tuple              # ("account", "area"): account is a link field of the source entity
    bucket: str | None = None
    label: dict | None = None


@dataclass(frozen=True)
class Measure:
    id: str
    fn: str
    path: tuple = ()         # empty for count
    label: dict | None = None


@dataclass(frozen=True)
class Param:
    id: str
    field: str
    op: str = "eq"
    label: dict | None = None
    default: object = None


@dataclass(frozen=True)
class Chart:
    type: str = "table"
    x: str | None = None
    series: str | None = None
    y: tuple = ()


@dataclass(frozen=True)
class Forecast:
    """`forecast:` of a report grouped by one date bucket: its rows are the open pipeline per period
    (from the current period on); beside them the figure of another report grouped by the same
    bucket (the actuals, up to the current period) and a least-squares trend of those actuals."""
    report: str                  # the report of the actuals
    measure: str                 # its measure shown
    actual_id: str = "actual"
    actual_label: dict | None = None
    periods: int = 6             # the trend fits the last N complete periods of actuals
    trend_id: str = "trend"
    trend_label: dict | None = None


@dataclass(frozen=True)
class Report:
    id: str
    label: dict
    entity: str
    measures: tuple
    group_by: tuple = ()
    filters: tuple = ()      # ((field, op, value or call expression), ...)
    params: tuple = ()
    sort: str | None = None
    limit: int | None = None
    totals: bool = True
    chart: Chart = Chart()
    roles: tuple = ()
    description: dict | None = None
    file: str = ""
    forecast: Forecast | None = None

    def column(self, cid: str):
        return next((c for c in (*self.group_by, *self.measures) if c.id == cid), None)


@dataclass(frozen=True)
class Widget:
    report: str
    chart: str | None = None     # None: the report's own chart
    title: dict | None = None
    measure: str | None = None   # kpi: the figure shown
    date: str | None = None      # the date field that makes the period (kpi: this one vs the one before)
    period: str = "month"
    target: float | None = None
    params: tuple = ()
    wide: bool = False
    compare: tuple | None = None  # (report, measure, date field or None): a figure to reach per group


@dataclass(frozen=True)
class Dashboard:
    id: str
    label: dict
    widgets: tuple
    roles: tuple = ()
    description: dict | None = None
    position: int = 0
    file: str = ""


def parse_filters(raw) -> tuple:
    return tuple((k.partition("__")[0], k.partition("__")[2] or "eq", v) for k, v in (raw or {}).items())


def build_report(doc) -> Report:
    raw = doc.data
    dims = []
    for g in raw.get("group_by", ()):
        g = {"field": g} if isinstance(g, str) else g
        path = tuple(g["field"].split("."))
        default = "_".join(path) + (f"_{g['bucket']}" if g.get("bucket") else "")
        dims.append(Dim(id=g.get("as") or default, path=path, bucket=g.get("bucket"),
                        label=norm_label(g["label"], default) if g.get("label") else None))
    measures = tuple(Measure(id=k, fn=v["fn"], path=tuple(v["field"].split(".")) if v.get("field") else (),
                             label=norm_label(v["label"], k) if v.get("label") else None)
                     for k, v in raw["measures"].items())
    params = tuple(Param(id=k, field=v["field"], op=v.get("op", "eq"),
                         label=norm_label(v["label"], k) if v.get("label") else None, default=v.get("default"))
                   for k, v in (raw.get("params") or {}).items())
    c = raw.get("chart") or {}
    y = c.get("y")
    chart = Chart(type=c.get("type", "bar" if dims else "table"), x=c.get("x"), series=c.get("series"),
                  y=tuple(y) if isinstance(y, list) else ((y,) if y else ()))
    return Report(id=raw["report"], label=norm_label(raw.get("label"), raw["report"]), entity=raw["entity"],
                  forecast=_forecast(raw.get("forecast")),
                  measures=measures, group_by=tuple(dims), filters=parse_filters(raw.get("filter")), params=params,
                  sort=raw.get("sort"), limit=raw.get("limit"), totals=raw.get("totals", True), chart=chart,
                  roles=tuple(raw.get("roles", ())), file=doc.file,
                  description=norm_label(raw["description"], "") if raw.get("description") else None)


def _forecast(raw) -> Forecast | None:
    if not raw:
        return None
    actual, trend = raw["actual"], raw.get("trend") or {}
    return Forecast(report=actual["report"], measure=actual["measure"], actual_id=actual.get("as", "actual"),
                    actual_label=norm_label(actual["label"], "actual") if actual.get("label") else None,
                    periods=trend.get("periods", 6), trend_id=trend.get("as", "trend"),
                    trend_label=norm_label(trend["label"], "trend") if trend.get("label") else None)


def build_dashboard(doc) -> Dashboard:
    raw = doc.data
    widgets = tuple(Widget(report=w["report"], chart=w.get("chart"),
                           title=norm_label(w["title"], w["report"]) if w.get("title") else None,
                           measure=w.get("measure"), date=w.get("date"), period=w.get("period", "month"),
                           target=w.get("target"), params=tuple((w.get("params") or {}).items()),
                           wide=w.get("wide", False),
                           compare=(w["compare"]["report"], w["compare"]["measure"], w["compare"].get("date"))
                           if w.get("compare") else None)
                    for w in raw["widgets"])
    return Dashboard(id=raw["dashboard"], label=norm_label(raw.get("label"), raw["dashboard"]), widgets=widgets,
                     roles=tuple(raw.get("roles", ())), position=raw.get("position", 0), file=doc.file,
                     description=norm_label(raw["description"], "") if raw.get("description") else None)


def resolve(entities: dict, entity, path: tuple):
    """The field at the end of a dotted path from `entity`, through link fields; (field, None) or
    (None, why not)."""
    e = entity
    for i, name in enumerate(path):
        f = e.fields.get(name)
        if f is None or not f.stored:
            return None, f"{e.id} has no field {name!r}{suggest(name, [k for k, v in e.fields.items() if v.stored])}"
        if i == len(path) - 1:
            return f, None
        if f.value_type != "link" or f.to not in entities:
            return None, f"{e.id}.{name} is a {f.value_type} field, not a link: nothing follows it"
        e = entities[f.to]
    return None, "an empty field path"


def check_report(rep: Report, doc, entities: dict, roles: set) -> list[Problem]:
    out = []
    e = entities.get(rep.entity)
    if e is None or e.child:
        return [doc.problem(("entity",), f"{rep.entity!r} is not an entity{suggest(rep.entity, list(entities))}")]
    raw = doc.data
    ids = set()
    for i, d in enumerate(rep.group_by):
        where = ("group_by", i) if isinstance(raw["group_by"][i], str) else ("group_by", i, "field")
        f, why = resolve(entities, e, d.path)
        if why:
            out.append(doc.problem(where, why))
        elif d.bucket and f.value_type not in ("date", "datetime"):
            out.append(doc.problem(("group_by", i, "bucket"), f"{'.'.join(d.path)} is a {f.value_type} field; "
                                                               f"a bucket groups a date or datetime field"))
        elif f.value_type in ("multiselect", "attachment", "text") or f.encrypted:
            out.append(doc.problem(where, f"cannot group by {'.'.join(d.path)} (a {f.value_type} field"
                                          f"{', encrypted' if f.encrypted else ''})"))
        if d.id in ids:
            out.append(doc.problem(where, f"two columns are called {d.id!r}; give one another name with `as`"))
        ids.add(d.id)
    for m in rep.measures:
        where = ("measures", m.id)
        if m.id in ids:
            out.append(doc.problem(where, f"{m.id!r} is also a group-by column; give the measure another name"))
        ids.add(m.id)
        if m.fn == "count":
            if m.path:
                out.append(doc.problem(where + ("field",), "count counts records and takes no field; "
                                                            "use fn: distinct to count different values"))
            continue
        if not m.path:
            out.append(doc.problem(where, f"fn: {m.fn} needs a field"))
            continue
        f, why = resolve(entities, e, m.path)
        if why:
            out.append(doc.problem(where + ("field",), why))
        elif m.fn in ("sum", "avg") and f.value_type not in NUMERIC_TYPES:
            out.append(doc.problem(where + ("field",), f"{'.'.join(m.path)} is a {f.value_type} field; "
                                                       f"{m.fn} needs a number or money field"))
        elif m.fn in ("min", "max") and f.value_type not in ORDERED:
            out.append(doc.problem(where + ("field",), f"{'.'.join(m.path)} is a {f.value_type} field; "
                                                       f"{m.fn} needs a number, money or date field"))
        elif f.encrypted:
            out.append(doc.problem(where + ("field",), f"{'.'.join(m.path)} is encrypted: it cannot be measured"))
    for name, op, value in rep.filters:
        path = ("filter", name if op == "eq" else f"{name}__{op}")
        out += check_filter(doc, path, e, name, op, value)
    for p in rep.params:
        out += check_filter(doc, ("params", p.id, "field"), e, p.field, p.op, p.default)
    for part in (rep.sort or "").split(","):
        cid = part.strip().lstrip("-+")
        if cid and cid not in ids:
            out.append(doc.problem(("sort",), f"{cid!r} is not a column of this report{suggest(cid, ids)}"))
    for key in ("x", "series"):
        cid = getattr(rep.chart, key)
        if cid and cid not in {d.id for d in rep.group_by}:
            out.append(doc.problem(("chart", key), f"{cid!r} is not a group-by column"
                                                   f"{suggest(cid, [d.id for d in rep.group_by])}"))
    for cid in rep.chart.y:
        if cid not in {m.id for m in rep.measures}:
            out.append(doc.problem(("chart", "y"), f"{cid!r} is not a measure{suggest(cid, [m.id for m in rep.measures])}"))
    if rep.chart.type in ("stacked_bar",) and len(rep.group_by) < 2:
        out.append(doc.problem(("chart", "type"), "a stacked bar needs two group-by columns (x and series)"))
    if rep.chart.type not in ("table",) and not rep.group_by:
        out.append(doc.problem(("chart", "type"), f"a {rep.chart.type} chart needs a group_by"))
    out += _check_roles(doc, rep.roles, roles)
    return out


def check_forecast(rep: Report, doc, reports: dict) -> list[Problem]:
    """A forecast report groups by one date bucket; its actuals come from a report grouped by the same
    bucket (and not itself a forecast); the added columns do not clash with the report's own."""
    fc, where = rep.forecast, ("forecast",)
    if len(rep.group_by) != 1 or not rep.group_by[0].bucket:
        return [doc.problem(("group_by",), "a forecast groups by exactly one date field with a bucket "
                                           "(e.g. {field: expected_close, bucket: month})")]
    out = []
    if rep.chart.type not in ("bar", "line", "table"):
        out.append(doc.problem(("chart", "type"), f"a forecast is drawn as bar, line or table, not {rep.chart.type}"))
    other = reports.get(fc.report)
    if other is None:
        return out + [doc.problem(where + ("actual", "report"), f"{fc.report!r} is not a report"
                                                                  f"{suggest(fc.report, list(reports))}")]
    bucket = rep.group_by[0].bucket
    if other.forecast is not None or len(other.group_by) != 1 or other.group_by[0].bucket != bucket:
        out.append(doc.problem(where + ("actual", "report"), f"{fc.report} must group by one date field with "
                                                               f"bucket {bucket} (and not be a forecast)"))
    if fc.measure not in [m.id for m in other.measures]:
        out.append(doc.problem(where + ("actual", "measure"), f"{fc.measure!r} is not a measure of {fc.report}"
                                                                f"{suggest(fc.measure, [m.id for m in other.measures])}"))
    ids = {c.id for c in (*rep.group_by, *rep.measures)}
    for cid, path in ((fc.actual_id, ("actual", "as")), (fc.trend_id, ("trend", "as"))):
        if cid in ids:
            out.append(doc.problem(where + path, f"{cid!r} is already a column of {rep.id}; give it another name with `as`"))
        ids.add(cid)
    return out


def check_filter(doc, path, e, name, op, value) -> list[Problem]:
    f = e.fields.get(name)
    if f is None or not f.stored:
        return [doc.problem(path, f"{e.id} has no field {name!r}{suggest(name, [k for k, v in e.fields.items() if v.stored])}")]
    if op not in OPS:
        return [doc.problem(path, f"unknown operator {op!r}; use one of {', '.join(OPS)}{suggest(op, OPS)}")]
    if isinstance(value, str) and "(" in value:
        try:
            rules.parse(value)
        except RuleError as err:
            return [doc.problem(path, f"cannot read {value!r}: {err.message}")]
    return []


def _check_roles(doc, names, roles) -> list[Problem]:
    return [doc.problem(("roles", i), f"{r!r} is not a role of the pack{suggest(r, roles)}")
            for i, r in enumerate(names) if roles and r not in roles and r != "admin"]


def check_dashboard(dash: Dashboard, doc, reports: dict, entities: dict, roles: set) -> list[Problem]:
    out = _check_roles(doc, dash.roles, roles)
    for i, w in enumerate(dash.widgets):
        rep = reports.get(w.report)
        if rep is None:
            out.append(doc.problem(("widgets", i, "report"), f"{w.report!r} is not a report{suggest(w.report, list(reports))}"))
            continue
        measures = [m.id for m in rep.measures]
        if w.measure and w.measure not in measures:
            out.append(doc.problem(("widgets", i, "measure"), f"{w.measure!r} is not a measure of {rep.id}"
                                                              f"{suggest(w.measure, measures)}"))
        e = entities.get(rep.entity)
        if w.chart == "kpi" and not w.date:
            out.append(doc.problem(("widgets", i), "a kpi tile needs `date`: the date field that makes its period"))
        if w.date and e is not None:
            f = e.fields.get(w.date)
            if f is None or f.value_type not in ("date", "datetime"):
                dates = [k for k, v in e.fields.items() if v.value_type in ("date", "datetime")]
                out.append(doc.problem(("widgets", i, "date"), f"{rep.entity} has no date field {w.date!r}"
                                                               f"{suggest(w.date, dates)}"))
        if w.chart == "kpi":
            pass
        elif w.chart and w.chart != "table" and not rep.group_by:
            out.append(doc.problem(("widgets", i, "chart"), f"{rep.id} has no group_by to draw a {w.chart} of"))
        elif w.chart == "stacked_bar" and len(rep.group_by) < 2:
            out.append(doc.problem(("widgets", i, "chart"), f"a stacked bar needs two group-by columns; {rep.id} has "
                                                            f"{len(rep.group_by)}"))
        if w.compare:
            out += _check_compare(doc, i, w, rep, reports, entities)
        names = {p.id for p in rep.params}
        for k, _v in w.params:
            if k not in names:
                out.append(doc.problem(("widgets", i, "params", k), f"{rep.id} has no parameter {k!r}"
                                                                    f"{suggest(k, names)}"))
    return out


def _check_compare(doc, i, w, rep, reports, entities) -> list[Problem]:
    rid, mid, date = w.compare
    path = ("widgets", i, "compare")
    other = reports.get(rid)
    if other is None:
        return [doc.problem(path + ("report",), f"{rid!r} is not a report{suggest(rid, list(reports))}")]
    out = []
    if [d.id for d in other.group_by] != [d.id for d in rep.group_by]:
        out.append(doc.problem(path + ("report",), f"{rid} must group by the same columns as {rep.id} "
                                                   f"({', '.join(d.id for d in rep.group_by) or 'none'})"))
    if mid not in [m.id for m in other.measures]:
        out.append(doc.problem(path + ("measure",), f"{mid!r} is not a measure of {rid}"
                                                    f"{suggest(mid, [m.id for m in other.measures])}"))
    e = entities.get(other.entity)
    if date and e is not None and (e.fields.get(date) is None or e.fields[date].value_type not in ("date", "datetime")):
        out.append(doc.problem(path + ("date",), f"{other.entity} has no date field {date!r}"))
    return out


def check_all(reports: dict, dashboards: dict, docs_by_id: dict, entities: dict, roles: set) -> list[Problem]:
    out = []
    for rid, rep in reports.items():
        out += check_report(rep, docs_by_id[("report", rid)], entities, roles)
        if rep.forecast is not None:
            out += check_forecast(rep, docs_by_id[("report", rid)], reports)
    for did, dash in dashboards.items():
        out += check_dashboard(dash, docs_by_id[("dashboard", did)], reports, entities, roles)
    return out


def readable(item, actor) -> bool:
    """Whether the actor's roles are among the item's `roles:` (none listed: everyone; admins always)."""
    return not item.roles or actor.is_admin or bool(set(item.roles) & set(actor.roles))
