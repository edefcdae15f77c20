"""Reports and dashboards over the API (DESIGN.md "Data in and out, reports"):

GET /api/v1/reports                 the reports the token's user may run
GET /api/v1/reports/<id>?<params>   {"columns", "rows", "totals", "labels"}, computed in SQL;
                                    `format=csv` downloads the same table with labels
GET /api/v1/dashboards              the dashboards of the user's roles
"""
from __future__ import annotations

from flask import g, jsonify, request

from engine import dashboards, reports
from engine.errors import BadRequest
from engine.model import label_of
from engine.reportlabels import cell_text, column_label, value_labels
from engine.reportspec import readable

from .csvsafe import csv_response


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
        if fmt not in ("json", "csv"):
            raise BadRequest(f"format must be json or csv, not {fmt[:20]!r}")
        result = reports.run(store, report_id, a, request.args)
        if fmt == "csv":
            header, rows = table_text(store, result, a.language)
            return csv_response(header, rows, f"{report_id}.csv")
        return jsonify(report_json(store, result, a.language))

    @bp.get("/dashboards")
    def list_dashboards():
        cfg = runtime().config
        return jsonify({"items": [{"id": d.id, "label": d.label, "reports": [w.report for w in d.widgets]}
                                  for d in dashboards.for_actor(cfg, g.actor)]})
