"""`POST /api/v1/<entity>/import` and `GET /api/v1/<entity>/export?format=csv|xlsx&<list filters>`
(DESIGN.md "Data in and out"). Imports here run in the request; the UI queues large files as jobs."""
from __future__ import annotations

import json
import os

from flask import Response, current_app, g, jsonify, request, send_file, stream_with_context

from engine import exporter
from engine.errors import BadRequest
from engine.importer import run_import
from engine.query import parse_args

from . import imports

TRUE = ("1", "true", "yes", "on")


def register(bp, runtime, entity_of):
    @bp.post("/<entity>/import")
    def import_records(entity):
        entity_of(entity)
        store = runtime().store
        store.check(entity, "import", g.actor)
        limit = imports.max_mb(current_app)
        request.max_content_length = int(limit * 1024 * 1024) + 65536
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise BadRequest("Send the file as multipart/form-data field `file` (a CSV or XLSX file).")
        data = upload.read()
        chosen = None
        if request.form.get("mapping"):
            try:
                chosen = json.loads(request.form["mapping"])
            except ValueError:
                raise BadRequest("mapping must be a JSON object {column: field}.") from None
            if not isinstance(chosen, dict) or not all(isinstance(v, str) for v in chosen.values()):
                raise BadRequest("mapping must be a JSON object {column: field}.")
        dry = str(request.form.get("dry_run") or request.args.get("dry_run") or "").lower() in TRUE
        key = (request.form.get("key") or request.args.get("key") or "").strip() or None
        res = run_import(store, entity, g.actor, data, upload.filename, key=key, dry_run=dry, chosen=chosen,
                         max_mb=limit)
        return jsonify(res.as_json())

    @bp.get("/<entity>/export")
    def export_records(entity):
        e = entity_of(entity)
        store = runtime().store
        store.check(entity, "export", g.actor)
        fmt = (request.args.get("format") or "csv").lower()
        if fmt not in ("csv", "xlsx"):
            raise BadRequest("format must be csv or xlsx.")
        args = request.args.copy()
        for k in ("format", "page", "per_page", "fields"):
            args.poplist(k)
        req = parse_args(e, args)
        only = [c for c in (request.args.get("fields") or "").split(",") if c.strip()]
        fields = exporter.export_fields(store, entity, g.actor, only)
        header = [f.id for f in fields]
        actor = g.actor
        store.list_conditions(e, store.table(e), req, actor)   # a bad filter is a 400 before the file starts
        if fmt == "csv":
            rows = exporter.rows_of(store, entity, req, actor, fields)
            return Response(stream_with_context(exporter.csv_chunks(header, rows)), mimetype="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="{e.id}.csv"'})
        path = exporter.xlsx_file(header, exporter.rows_of(store, entity, req, actor, fields, typed=True), e.id)
        resp = send_file(path, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                         as_attachment=True, download_name=f"{e.id}.xlsx")
        resp.call_on_close(lambda: os.path.exists(path) and os.remove(path))
        return resp
