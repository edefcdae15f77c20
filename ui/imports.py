"""The import page `/e/<entity>/import`: upload a CSV or XLSX file, check the guessed column
mapping, dry run, run (large files as a background job with a progress bar polled by htmx every
second), and the result with a downloadable error report."""
from __future__ import annotations

import os
import re
import uuid

from flask import Response, abort, current_app, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine import importlog
from engine.errors import BadRequest, EngineError
from engine.importer import importable, norm, prepare, run_import
from platform_ import imports

from .web import actor, bp, entity_or_404, lang, render, runtime, store

_TOKEN = re.compile(r"^[0-9a-f]{32}$")


def _uploads() -> dict:
    return session.setdefault("imports", {})


def _upload(token: str, entity: str) -> dict:
    up = _uploads().get(token) if _TOKEN.match(token or "") else None
    if up is None or up.get("entity") != entity or not os.path.exists(up["path"]):
        abort(400, description=_("The uploaded file is gone; upload it again."))
    return up


def _form_page(e, status=200, error=None):
    return render("import.html", status=status, entity=e, error=error,
                  max_mb=imports.max_mb(current_app))


@bp.get("/e/<entity>/import")
@login_required
def import_start(entity):
    e = entity_or_404(entity)
    store().check(e.id, "import", actor())
    return _form_page(e)


@bp.post("/e/<entity>/import")
@login_required
def import_upload(entity):
    e = entity_or_404(entity)
    a = actor()
    store().check(e.id, "import", a)
    limit = imports.max_mb(current_app)
    request.max_content_length = int(limit * 1024 * 1024) + 65536
    f = request.files.get("file")
    if f is None or not f.filename:
        return _form_page(e, 400, _("Choose a CSV or XLSX file to import."))
    data = f.read()
    try:
        sheet, cols, unknown = prepare(store(), e.id, a, data, f.filename, max_mb=limit, need_columns=False)
    except BadRequest as exc:
        return _form_page(e, 400, exc.message)
    path = imports.keep_upload(current_app, data, f.filename)
    token = uuid.uuid4().hex
    ups = _uploads()
    for old in list(ups)[:-4]:              # keep the last few uploads of the session
        ups.pop(old, None)
    ups[token] = {"entity": e.id, "path": path, "filename": f.filename[:255]}
    session.modified = True
    return _mapping_page(e, token, sheet.header, cols, unknown, f.filename)


def _mapping_page(e, token, header, cols, unknown, filename, status=200, error=None):
    lng = lang()
    fields = [(fld.id, fld.label_text(lng)) for fld in importable(e)]
    columns = [{"i": i, "name": h, "field": cols.get(i, "")} for i, h in enumerate(header) if h.strip()]
    return render("import_mapping.html", status=status, entity=e, token=token, columns=columns, fields=fields,
                  unknown=unknown, filename=filename, error=error)


@bp.post("/e/<entity>/import/run")
@login_required
def import_run(entity):
    e = entity_or_404(entity)
    a = actor()
    store().check(e.id, "import", a)
    up = _upload(request.form.get("token", ""), e.id)
    with open(up["path"], "rb") as fh:
        data = fh.read()
    sheet_args = {}
    for key, value in request.form.items():
        m = re.fullmatch(r"map_(\d+)", key)
        if m:
            sheet_args[int(m.group(1))] = value
    key = (request.form.get("key") or "").strip() or None
    dry = request.form.get("dry_run") == "1"
    try:
        sheet, _cols, _unknown = prepare(store(), e.id, a, data, up["filename"], max_mb=imports.max_mb(current_app),
                                         need_columns=False)
        chosen = {sheet.header[i]: v for i, v in sheet_args.items() if i < len(sheet.header)}
        if len(data) > imports.job_bytes(current_app):
            iid = imports.queue(current_app, store(), e.id, a, up["path"], up["filename"], key, dry, chosen)
        else:
            iid = run_import(store(), e.id, a, data, up["filename"], key=key, dry_run=dry, chosen=chosen,
                             max_mb=imports.max_mb(current_app), path=up["path"]).import_id
    except BadRequest as exc:
        sheet, cols, unknown = prepare(store(), e.id, a, data, up["filename"], need_columns=False)
        return _mapping_page(e, request.form.get("token"), sheet.header, cols, unknown, up["filename"], 400,
                             exc.message)
    return redirect(url_for("ui.import_status", entity=e.id, import_id=iid, token=request.form.get("token")))


def _mine(e, import_id: int) -> dict:
    row = importlog.get(runtime().engine, import_id)
    a = actor()
    if row is None or row["entity"] != e.id or (row["user_id"] != a.id and not a.is_admin):
        abort(404)
    return row


@bp.get("/e/<entity>/import/<int:import_id>")
@login_required
def import_status(entity, import_id):
    e = entity_or_404(entity)
    row = _mine(e, import_id)
    token = request.args.get("token", "")
    can_run = row["dry_run"] and row["status"] == "done" and token in _uploads()
    lines = len({x["line"] for x in row["errors"]})
    total = row["total"] or 0
    pct = 100 if row["status"] == "done" else (int(row["rows_done"] * 100 / total) if total else 0)
    return render("import_status.html", "status", entity=e, row=row, token=token, can_run=can_run,
                  bad_lines=lines, pct=min(100, pct), errors=row["errors"][:200],
                  running=row["status"] in ("queued", "running"),
                  field_label=lambda fid: e.fields[fid].label_text(lang()) if fid in e.fields else fid)


@bp.get("/e/<entity>/import/<int:import_id>/errors.csv")
@login_required
def import_errors(entity, import_id):
    e = entity_or_404(entity)
    row = _mine(e, import_id)
    return Response(imports.error_report(row["errors"]), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{e.id}-import-{import_id}-errors.csv"'})


@bp.post("/e/<entity>/import/<int:import_id>/run")
@login_required
def import_again(entity, import_id):
    """Run for real what was dry-run: the same file, mapping and key."""
    e = entity_or_404(entity)
    a = actor()
    row = _mine(e, import_id)
    token = request.form.get("token", "")
    up = _upload(token, e.id)
    with open(up["path"], "rb") as fh:
        data = fh.read()
    try:
        sheet, _c, _u = prepare(store(), e.id, a, data, up["filename"], need_columns=False)
        chosen = {h: row["mapping"].get(str(i), "") for i, h in enumerate(sheet.header) if h.strip()}
        if len(data) > imports.job_bytes(current_app):
            iid = imports.queue(current_app, store(), e.id, a, up["path"], up["filename"], row["key_field"],
                                False, chosen)
        else:
            iid = run_import(store(), e.id, a, data, up["filename"], key=row["key_field"], chosen=chosen,
                             max_mb=imports.max_mb(current_app), path=up["path"]).import_id
    except EngineError as exc:
        abort(400, description=exc.message)
    _uploads().pop(token, None)
    session.modified = True
    return redirect(url_for("ui.import_status", entity=e.id, import_id=iid))
