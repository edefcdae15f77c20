"""The tables of imports: one row per import run (its progress, counts and errors) and the column
mapping saved per entity and user, so the next file of the same shape maps itself.

`rows_done` is written in the same transaction as each batch of records, so an import killed
midway resumes after the last batch that committed and never writes a row twice.
"""
from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa

from .db import reading, writing
from .systables import SYSTEM

imports = sa.Table(
    "sys_import", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("user_id", sa.Integer),                      # None: the command line
    sa.Column("filename", sa.String(255)),
    sa.Column("path", sa.String(1024)),                    # the uploaded file kept for a job
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("key_field", sa.String(64)),
    sa.Column("mapping", sa.Text),                         # JSON {column: field}
    sa.Column("dry_run", sa.Boolean(create_constraint=False), nullable=False, default=False),
    sa.Column("status", sa.String(16), nullable=False),    # queued, running, done, failed
    sa.Column("total", sa.Integer),                        # data rows in the file (when known)
    sa.Column("rows_done", sa.Integer, nullable=False, default=0),
    sa.Column("created", sa.Integer, nullable=False, default=0),
    sa.Column("updated", sa.Integer, nullable=False, default=0),
    sa.Column("skipped", sa.Integer, nullable=False, default=0),
    sa.Column("errors", sa.Text),                          # JSON [{"line", "field", "message"}]
    sa.Column("message", sa.Text),                         # why a failed import stopped
    sa.Column("created_at", sa.DateTime),
    sa.Column("finished_at", sa.DateTime),
)

mappings = sa.Table(
    "sys_import_mapping", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("user_id", sa.Integer),
    sa.Column("mapping", sa.Text, nullable=False),         # JSON {normalised column: field or ""}
    sa.Column("updated_at", sa.DateTime),
    sa.UniqueConstraint("entity", "user_id", name="uq_sys_import_mapping"),
)

MAX_KEPT_ERRORS = 10000


def _now():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def start(conn, entity: str, user_id, filename: str, sha256: str, key: str | None, mapping: dict,
          dry_run: bool, path: str | None = None, total: int | None = None, status: str = "running") -> int:
    return conn.execute(imports.insert().values(
        entity=entity, user_id=user_id, filename=(filename or "")[:255], path=path, sha256=sha256, key_field=key,
        mapping=json.dumps(mapping, ensure_ascii=False), dry_run=dry_run, status=status, total=total, rows_done=0,
        created=0, updated=0, skipped=0, errors="[]", created_at=_now())).inserted_primary_key[0]


def unfinished(engine, entity: str, user_id, sha256: str, key: str | None) -> dict | None:
    """The latest import of the same file by the same user that stopped before its end."""
    with reading(engine) as conn:
        row = conn.execute(sa.select(imports).where(
            imports.c.entity == entity, imports.c.sha256 == sha256, imports.c.dry_run.is_(False),
            imports.c.status.in_(("running", "failed")),
            imports.c.user_id.is_(None) if user_id is None else imports.c.user_id == user_id,
            imports.c.key_field.is_(None) if key is None else imports.c.key_field == key)
            .order_by(imports.c.id.desc()).limit(1)).mappings().first()
    return decode(row) if row else None


def progress(conn, import_id: int, rows_done: int, created: int, updated: int, skipped: int, errors: list) -> None:
    """Counts after a batch, in that batch's transaction."""
    conn.execute(imports.update().where(imports.c.id == import_id).values(
        rows_done=rows_done, created=created, updated=updated, skipped=skipped,
        errors=json.dumps(errors[:MAX_KEPT_ERRORS], ensure_ascii=False)))


def finish(engine, import_id: int, status: str, message: str | None = None, **counts) -> None:
    with writing(engine) as conn:
        values = dict(status=status, message=message, finished_at=_now())
        if "errors" in counts:
            counts["errors"] = json.dumps(counts["errors"][:MAX_KEPT_ERRORS], ensure_ascii=False)
        values.update(counts)
        conn.execute(imports.update().where(imports.c.id == import_id).values(**values))


def set_status(engine, import_id: int, status: str, **values) -> None:
    with writing(engine) as conn:
        conn.execute(imports.update().where(imports.c.id == import_id).values(status=status, **values))


def get(engine, import_id: int) -> dict | None:
    with reading(engine) as conn:
        row = conn.execute(sa.select(imports).where(imports.c.id == import_id)).mappings().first()
    return decode(row) if row else None


def decode(row) -> dict:
    out = dict(row)
    out["errors"] = json.loads(out.get("errors") or "[]")
    out["mapping"] = json.loads(out.get("mapping") or "{}")
    return out


def saved_mapping(engine, entity: str, user_id) -> dict:
    with reading(engine) as conn:
        raw = conn.execute(sa.select(mappings.c.mapping).where(
            mappings.c.entity == entity,
            mappings.c.user_id.is_(None) if user_id is None else mappings.c.user_id == user_id)).scalar()
    return json.loads(raw) if raw else {}


def save_mapping(engine, entity: str, user_id, mapping: dict) -> None:
    """Remember {normalised column: field} for the entity (merged over what was saved before)."""
    merged = saved_mapping(engine, entity, user_id) | mapping
    text = json.dumps(merged, ensure_ascii=False)
    with writing(engine) as conn:
        cond = [mappings.c.entity == entity,
                mappings.c.user_id.is_(None) if user_id is None else mappings.c.user_id == user_id]
        if conn.execute(sa.select(mappings.c.id).where(*cond)).first():
            conn.execute(mappings.update().where(*cond).values(mapping=text, updated_at=_now()))
        else:
            conn.execute(mappings.insert().values(entity=entity, user_id=user_id, mapping=text, updated_at=_now()))
