"""Reports and dashboards over the API (DESIGN.md "Data in and out, reports"):

GET /api/v1/reports                 the reports the token's user may run
GET /api/v1/reports/<id>?<params>   {"columns", "rows", "totals", "labels"}, computed in SQL;
                                    `format=csv|xlsx` downloads the same table with labels
GET /api/v1/dashboards              the dashboards of the user's roles
"""
from __future__ import annotations

import os

from flask import Response, g, jsonify, request, send_file, stream_with_context

from engine import dashboards, exporter, reports
from engine.errors import BadRequest
from engine.model import label_of
from engine.reportlabels import cell_text, column_label, value_labels
from engine.reportspec import readable

from .csvsafe import csv_safe

FORMATS = ("json", "csv", "xlsx")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def table_text(store, result, lang: str) -> tuple[list, list]:
    """(header, rows) of a report as people read it: column labels, value words, totals last."""
    labels = value_labels(store, result, lang)
    header = [column_label(c, lang) for c in result.columns]
    rows = [[cell_text(result, labels, i, v, lang) if c.kind == "group" else v
             for i, (c, v) in enumerate(zip(result.columns, r))] for r in result.rows]
    if result.totals is not None and result.report.group_by:
        rows.append([("合计" if lang == "zh" else "Total") if i == 0 else v
                     for i, v in enumerate(result.totals)])
    return header, rows


def download(store, result, actor, fmt: str) -> Response:
    """The report's table as a CSV (UTF-8 with BOM, written in chunks) or XLSX file (write-only
    openpyxl, numbers as exact decimals with a number format), labels in the user's language. It
    needs the `export` permission on the entity (and, for a forecast, on that of its actuals)."""
    for part in (result, *result.parts.values()):
        store.check(part.report.entity, "export", actor)
    header, rows = table_text(store, result, actor.language)
    name = result.report.id
    if fmt == "csv":
        text = ([None if v is None else csv_safe(str(v)) for v in r] for r in rows)
        return Response(stream_with_context(exporter.csv_chunks(header, text)), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    title = label_of(result.report.label, actor.language, name)
    rows = ([exporter.neutral(v) if isinstance(v, str) else v for v in r] for r in rows)
    path = exporter.xlsx_file(header, rows, "".join(ch for ch in title if ch not in "[]:*?/\\"))
    resp = send_file(path, mimetype=XLSX, as_attachment=True, download_name=f"{name}.xlsx")
    resp.call_on_close(lambda: os.path.exists(path) and os.remove(path))
    return resp


def report_json(store, result, lang: str) -> dict:
    out = result.json()
    for col, c in zip(out["columns"], result.columns):
        col["label"] = column_label(c, lang)
    out["label"] = label_of(result.report.label, lang, result.report.id)
    out["labels"] = {cid: {str(k): v for k, v in m.items()} for cid, m in value_labels(store, result, lang).items()}
    return out


def register(bp, runtime):
    @bp.get("/reports")
    def list_reports():
        a = g.actor
        cfg = runtime().config
        return jsonify({"items": [{"id": r.id, "label": r.label, "entity": r.entity, "chart": r.chart.type,
                                   "columns": [c.id for c in (*r.group_by, *r.measures)]}
                                  for r in cfg.reports.values() if readable(r, a)]})

    @bp.get("/reports/<report_id>")
    def get_report(report_id):
        store, a = runtime().store, g.actor
        fmt = request.args.get("format", "json")
        if fmt not in FORMATS:
            raise BadRequest(f"format must be json, csv or xlsx, not {fmt[:20]!r}")
        result = reports.run(store, report_id, a, request.args)
        if fmt != "json":
            return download(store, result, a, fmt)
        return jsonify(report_json(store, result, a.language))

    @bp.get("/dashboards")
    def list_dashboards():
        cfg = runtime().config
        return jsonify({"items": [{"id": d.id, "label": d.label, "reports": [w.report for w in d.widgets]}
                                  for d in dashboards.for_actor(cfg, g.actor)]})
