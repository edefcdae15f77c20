"""Imports as the platform runs them: the size limit, the upload kept on disk for a job, the job
itself (a daemon thread of the web process, or an rq worker with REDIS_URL), and the command
`flask crm import ENTITY FILE [--dry-run] [--key FIELD]` (DESIGN.md "Data in and out").
"""
from __future__ import annotations

import csv
import io
import logging
import os
import sys
import threading
import uuid
from pathlib import Path

import click

from engine import importlog
from engine.errors import BadRequest, EngineError
from engine.importer import run_import

log = logging.getLogger(__name__)


def max_mb(app) -> float:
    """The largest import file in MB: CRM_IMPORT_MAX_MB (default 50)."""
    raw = os.environ.get("CRM_IMPORT_MAX_MB") or app.config.get("CRM_IMPORT_MAX_MB") or 50
    try:
        return float(raw)
    except ValueError:
        return 50.0


def job_bytes(app) -> int:
    """Files larger than this run as a background job with a progress bar (CRM_IMPORT_JOB_BYTES, 1 MB)."""
    return int(app.config.get("CRM_IMPORT_JOB_BYTES", 1024 * 1024))


def upload_dir(app) -> Path:
    d = Path(app.instance_path) / "imports"
    d.mkdir(parents=True, exist_ok=True)
    return d


KEEP_DAYS = 7


def keep_upload(app, data: bytes, filename: str) -> str:
    """Keep an upload for the next steps (mapping, dry run, run, a job's resume); uploads older than
    a week are removed on the way."""
    import time
    d = upload_dir(app)
    for old in d.iterdir():
        try:
            if old.stat().st_mtime < time.time() - KEEP_DAYS * 86400:
                old.unlink()
        except OSError:
            pass
    ext = os.path.splitext(filename or "")[1].lower()[:8]
    path = d / f"{uuid.uuid4().hex}{ext}"
    path.write_bytes(data)
    return str(path)


def summary(counts) -> str:
    """The last line of the command: `created N updated N errors N` (errors: rows with an error)."""
    lines = {e["line"] for e in counts["errors"]}
    return f"created {counts['created']} updated {counts['updated']} errors {len(lines)} skipped {counts['skipped']}"


def error_report(errors: list) -> bytes:
    """The downloadable error report: CSV (UTF-8 with BOM) of line, field, message."""
    from .csvsafe import csv_safe
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf)
    w.writerow(["line", "field", "message"])
    for e in errors:
        w.writerow([e["line"], csv_safe(str(e["field"])), csv_safe(str(e["message"]))])
    return buf.getvalue().encode("utf-8")


# ---- background jobs -----------------------------------------------------------------------------
def queue(app, store, entity_id: str, actor, path: str, filename: str, key, dry_run: bool, chosen) -> int:
    """Record a queued import and start it in the background; its id (the page polls its progress)."""
    import hashlib

    from engine.importer import transaction, prepare
    data = Path(path).read_bytes()
    sheet, cols, _unknown = prepare(store, entity_id, actor, data, filename, chosen, max_mb(app))
    with transaction(store.engine, False) as conn:
        iid = importlog.start(conn, entity_id, actor.id, filename, hashlib.sha256(data).hexdigest(), key, cols,
                              dry_run, path=path, status="queued")
    args = (iid, entity_id, actor.id, filename, key, dry_run, chosen)
    if app.config.get("REDIS_URL"):
        from .jobs import QUEUE
        from redis import Redis
        from rq import Queue
        Queue(QUEUE, connection=Redis.from_url(app.config["REDIS_URL"])).enqueue(
            "platform_.imports.import_job", *args, job_timeout=6 * 3600, result_ttl=60, failure_ttl=7 * 86400)
    else:
        real = app._get_current_object() if hasattr(app, "_get_current_object") else app
        threading.Thread(target=_run, args=(real, *args), name=f"crm-import-{iid}", daemon=True).start()
    return iid


def _run(app, iid, entity_id, user_id, filename, key, dry_run, chosen):
    from .auth import get_actor
    with app.app_context():
        rt = app.extensions["crm"]
        row = importlog.get(rt.engine, iid)
        try:
            actor = get_actor(rt.engine, user_id) if user_id is not None else None
            if actor is None:
                raise BadRequest("the user who started the import no longer exists")
            data = Path(row["path"]).read_bytes()
            run_import(rt.store, entity_id, actor, data, filename, key=key, dry_run=dry_run, chosen=chosen,
                       max_mb=max_mb(app), import_id=iid)
        except EngineError as e:
            importlog.finish(rt.engine, iid, "failed", message=e.message)
        except Exception as e:  # noqa: BLE001 - the job reports, the page shows it
            log.exception("import #%s failed", iid)
            importlog.finish(rt.engine, iid, "failed", message=f"{type(e).__name__}: {e}"[:2000])


def import_job(iid, entity_id, user_id, filename, key, dry_run, chosen):
    """The rq job (runs in `flask crm worker`)."""
    from .jobs import job_app
    _run(job_app(), iid, entity_id, user_id, filename, key, dry_run, chosen)


# ---- the command -----------------------------------------------------------------------------------
def register(crm, loaded):
    @crm.command("import")
    @click.argument("entity")
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.option("--dry-run", is_flag=True, help="Check every row and report; change nothing.")
    @click.option("--key", default=None, help="Update the record with the same value of this field "
                                              "instead of creating a second one.")
    @click.option("--batch", default=500, show_default=True, help="Rows per transaction.")
    def import_cmd(entity, file, dry_run, key, batch):
        """Import ENTITY records from a CSV (UTF-8 or GBK) or XLSX FILE whose first row names the fields
        (ids or labels in English or Chinese). Prints `line L: field: message` for each bad row, then
        `created N updated N errors N`. Re-running an interrupted import resumes after its last batch."""
        from flask import current_app

        from .auditlog import cli_actor
        rt = loaded()
        rt.ensure_schema()
        try:
            data = Path(file).read_bytes()
        except OSError as e:
            raise click.ClickException(f"cannot read {file}: {e.strerror}")
        actor = cli_actor()
        prior = None if dry_run else _unfinished(rt, entity, actor, data, key)
        if prior is not None:
            click.echo(f"resuming import #{prior['id']} after row {prior['rows_done']}")

        def progress(res):
            if sys.stderr.isatty():
                click.echo(f"\r{res.rows_done} rows", nl=False, err=True)
        try:
            res = run_import(rt.store, entity, actor, data, os.path.basename(file), key=key, dry_run=dry_run,
                             max_mb=max_mb(current_app), on_batch=progress, batch_size=max(1, batch))
        except EngineError as e:
            raise click.ClickException(e.message)
        for col in res.unknown_columns:
            click.echo(f"column {col!r}: not a field of {entity}; not imported")
        for e in res.errors:
            click.echo(f"line {e['line']}: {e['field']}: {e['message']}")
        if dry_run:
            click.echo("dry run: nothing was changed")
        click.echo(summary(res.as_json()))


def _unfinished(rt, entity, actor, data, key):
    import hashlib
    try:
        return importlog.unfinished(rt.engine, entity, actor.id, hashlib.sha256(data).hexdigest(), key)
    except Exception:  # noqa: BLE001 - only a note for the user
        return None
