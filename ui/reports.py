"""Report and dashboard pages: /reports, /reports/<id> (table, totals, chart, CSV and XLSX) and
/dashboards/<id> (charts and KPI tiles per role). Figures come from engine/reports.py (SQL under
the user's row scope); the chart data travels in a `data-chart` attribute that ui/static/charts.js
hands to the vendored ECharts — no inline script, so the CSP holds. Every bar, slice and table
row links to the list of the records behind it (/e/<entity>?<the group's filters>)."""
from __future__ import annotations

from urllib.parse import urlencode

from flask import request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine import clock, dashboards
from engine.errors import BadRequest, EngineError, RuleError
from engine.model import label_of
from engine.reportlabels import cell_text, column_label, value_labels
from engine.reports import drill_filters, get_report, run
from engine.reportspec import CHARTS, readable
from platform_.reports_api import download

from .display import number
from .web import actor, bp, config, lang, may, render, store


def drill_url(result, row) -> str | None:
    if result.parts:                       # a forecast: the pipeline's records, else the actuals'
        ahead = any(v is not None for v in row[2:-1])
        part = result.parts["pipeline" if ahead else "actual"]
        return drill_url(part, row[:1]) if ahead or row[1] else None
    filters = drill_filters(result, row)
    if filters is None:
        return None
    return url_for("ui.list_view", entity=result.report.entity) + ("?" + urlencode(filters) if filters else "")


def fmt_measure(col, v) -> str:
    if v is None:
        return "0" if col.fn in ("count", "distinct", "sum") else ""
    if col.fn == "share":
        return f"{v}%"
    if col.fn in ("count", "distinct"):
        return number(int(v), 0)
    if isinstance(v, str):              # min / max of a date
        return v
    scale = col.field.scale if col.field is not None and col.field.scale is not None else 0
    return number(v, max(scale, 2) if col.fn == "avg" else scale)


def table_view(result, lng: str) -> dict:
    labels = value_labels(store(), result, lng)
    ng = len([c for c in result.columns if c.kind == "group"])
    rows = []
    for r in result.rows:
        cells = [cell_text(result, labels, i, v, lng) if c.kind == "group" else fmt_measure(c, v)
                 for i, (c, v) in enumerate(zip(result.columns, r))]
        rows.append({"cells": cells, "url": drill_url(result, r), "numeric": [c.kind == "measure" for c in result.columns]})
    totals = None
    if result.totals is not None and ng:
        totals = [fmt_measure(c, v) if c.kind == "measure" else "" for c, v in zip(result.columns, result.totals)]
    return {"header": [column_label(c, lng) for c in result.columns], "rows": rows, "totals": totals,
            "numeric": [c.kind == "measure" for c in result.columns], "labels": labels}


def chart_data(result, kind: str, labels: dict, lng: str, ys=None) -> dict | None:
    """What charts.js draws: categories along x, one series per measure (or per value of the series
    column for a stacked bar), and the drill-down address of every point."""
    rep = result.report
    groups = [c for c in result.columns if c.kind == "group"]
    if not groups or kind in ("table", "kpi") or not result.rows:
        return None
    ids = [c.id for c in result.columns]
    x = rep.chart.x if rep.chart.x in ids else groups[0].id
    ys = [y for y in (ys or rep.chart.y) if y in ids] or [next(c.id for c in result.columns if c.kind == "measure")]
    xi = ids.index(x)

    def text(i, v):
        return cell_text(result, labels, i, v, lng)

    def num(v):
        return float(v) if v is not None else 0

    if result.parts:
        return forecast_chart(result, kind, labels, lng, ys)

    cats, seen = [], set()
    for r in result.rows:
        if r[xi] not in seen:
            seen.add(r[xi])
            cats.append(r[xi])
    out = {"type": kind, "categories": [text(xi, c) for c in cats], "series": [], "links": []}
    if kind == "stacked_bar":
        series_id = rep.chart.series if rep.chart.series in ids and rep.chart.series != x else \
            next((g.id for g in groups if g.id != x), None)
        if series_id is not None:
            si, yi = ids.index(series_id), ids.index(ys[0])
            keys = []
            for r in result.rows:
                if r[si] not in keys:
                    keys.append(r[si])
            for k in keys:
                by_x = {r[xi]: r for r in result.rows if r[si] == k}
                out["series"].append({"name": text(si, k), "data": [num(by_x[c][yi]) if c in by_x else 0 for c in cats]})
                out["links"].append([drill_url(result, by_x[c]) if c in by_x else None for c in cats])
            return out
        out["type"] = "bar"
    first = {}
    for r in result.rows:
        first.setdefault(r[xi], r)
    for y in (ys if kind in ("bar", "line") else ys[:1]):
        yi = ids.index(y)
        out["series"].append({"name": column_label(result.columns[yi], lng),
                              "data": [num(first[c][yi]) for c in cats]})
        out["links"].append([drill_url(result, first[c]) for c in cats])
    return out


def forecast_chart(result, kind: str, labels: dict, lng: str, ys=None) -> dict:
    """A forecast: the actuals and the chart's pipeline measures as bars stacked per period (won so
    far this month + what the pipeline adds) — or lines — and the trend as a line; null where a
    series has no figure, so neither the trend nor the pipeline is drawn where it does not apply."""
    ids = [c.id for c in result.columns]
    actual, trend = result.columns[1], result.columns[-1]
    ys = [y for y in (ys or result.report.chart.y) if y in ids[2:-1]] or [ids[2]]
    out = {"type": "bar", "categories": [cell_text(result, labels, 0, r[0], lng) for r in result.rows],
           "series": [], "links": []}
    for cid in [actual.id, *ys, trend.id]:
        i = ids.index(cid)
        line = cid == trend.id or kind == "line"
        out["series"].append({"name": column_label(result.columns[i], lng), "type": "line" if line else "bar",
                              "stack": None if line else "forecast", "dashed": cid == trend.id,
                              "data": [None if r[i] is None else float(r[i]) for r in result.rows]})
        part = None if cid == trend.id else result.parts["actual" if cid == actual.id else "pipeline"]
        out["links"].append([drill_url(part, r[:1]) if part is not None and r[i] is not None else None
                             for r in result.rows])
    return out


@bp.get("/reports")
@login_required
def reports_index():
    a, lng, cfg = actor(), lang(), config()
    items = []
    for r in cfg.reports.values():
        e = cfg.entities.get(r.entity)
        if e is None or not readable(r, a) or "read" not in store().actions(e.id, a):
            continue
        items.append({"id": r.id, "label": label_of(r.label, lng, r.id), "entity": e.plural_text(lng),
                      "description": label_of(r.description, lng, "") if r.description else ""})
    boards = [{"id": d.id, "label": label_of(d.label, lng, d.id),
               "description": label_of(d.description, lng, "") if d.description else ""}
              for d in dashboards.for_actor(cfg, a)]
    return render("reports.html", items=items, boards=boards)


def _param_fields(rep, lng):
    e = config().entities[rep.entity]
    out = []
    for p in rep.params:
        f = e.fields[p.field]
        kind = {"date": "date", "datetime": "date", "integer": "number", "money": "number",
                "decimal": "number", "percent": "number"}.get(f.value_type, "text")
        out.append({"id": p.id, "label": label_of(p.label or f.label, lng, p.id), "kind": kind,
                    "value": request.args.get(p.id, "")})
    return out


@bp.get("/reports/<report_id>")
@login_required
def report_page(report_id):
    a, lng = actor(), lang()
    rep = get_report(config(), report_id, a)
    result = run(store(), rep.id, a, request.args)
    view = table_view(result, lng)
    kind = request.args.get("chart") if request.args.get("chart") in CHARTS else rep.chart.type
    chart = chart_data(result, kind, view["labels"], lng)
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("lang",)]
    return render("report.html", rep=rep, title=label_of(rep.label, lng, rep.id), view=view, chart=chart,
                  description=label_of(rep.description, lng, "") if rep.description else "",
                  params=_param_fields(rep, lng), entity=config().entities[rep.entity],
                  can_export=all(may(part.report.entity, "export") for part in (result, *result.parts.values())),
                  csv_url=url_for("ui.report_csv", report_id=rep.id) + ("?" + urlencode(args) if args else ""),
                  xlsx_url=url_for("ui.report_csv", report_id=rep.id) + "?" + urlencode(
                      [(k, v) for k, v in args if k != "format"] + [("format", "xlsx")]))


@bp.get("/reports/<report_id>/export")
@login_required
def report_csv(report_id):
    """The report's table as a file: `?format=csv` (the default) or `xlsx`, with the page's parameters."""
    a = actor()
    fmt = request.args.get("format") or "csv"
    if fmt not in ("csv", "xlsx"):
        raise BadRequest(_("The format must be csv or xlsx."))
    result = run(store(), report_id, a, request.args)
    return download(store(), result, a, fmt)


@bp.get("/dashboards")
@login_required
def dashboards_index():
    return reports_index()


def _kpi_view(w, rep, lng):
    k = dashboards.kpi(store(), w, actor())
    col = next(c for c in rep.measures if c.id == (w.measure or rep.measures[0].id))
    from engine.reports import Column
    column = Column(col.id, "measure", col.label or {}, k.field, fn=col.fn)
    url = url_for("ui.list_view", entity=rep.entity) + "?" + urlencode(
        [(n if op == "eq" else f"{n}__{op}", v) for n, op, v in (k.filters or [])])
    return {"value": fmt_measure(column, k.value), "previous": fmt_measure(column, k.previous),
            "change": None if k.change is None else f"{k.change:+.1f}%", "up": k.change is not None and k.change >= 0,
            "target": fmt_measure(column, k.target) if k.target is not None else None,
            "attainment": None if k.attainment is None else f"{k.attainment:.0f}%", "url": url}


@bp.get("/dashboards/<dashboard_id>")
@login_required
def dashboard_page(dashboard_id):
    a, lng, cfg = actor(), lang(), config()
    d = dashboards.get_dashboard(cfg, dashboard_id, a)
    widgets = []
    for i, w in enumerate(d.widgets):
        rep = cfg.reports[w.report]
        kind = w.chart or rep.chart.type
        item = {"n": i, "kind": kind, "report": rep.id, "wide": w.wide,
                "title": label_of(w.title or rep.label, lng, rep.id), "error": None}
        try:
            if kind == "kpi":
                item["kpi"] = _kpi_view(w, rep, lng)
            else:
                if w.compare:
                    result = dashboards.compare_result(store(), w, a)
                    ys = [w.measure or rep.measures[0].id, "target"]
                else:
                    result, ys = dashboards.chart_result(store(), w, a), None
                item["view"] = table_view(result, lng)
                item["chart"] = chart_data(result, kind, item["view"]["labels"], lng, ys)
        except (EngineError, RuleError) as e:     # a widget the user may not see says so; the rest still show
            item["error"] = getattr(e, "message", str(e))
        widgets.append(item)
    return render("dash.html", board=d, title=label_of(d.label, lng, d.id), widgets=widgets,
                  kpis=[w for w in widgets if w["kind"] == "kpi"], charts=[w for w in widgets if w["kind"] != "kpi"],
                  boards=[(b.id, label_of(b.label, lng, b.id)) for b in dashboards.for_actor(cfg, a)],
                  today=clock.today())
