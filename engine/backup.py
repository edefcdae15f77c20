"""Backup and restore (H7): every table of the metadata, plus attachment files, in one zip.

The archive holds `manifest.json` (dialect, config digest, tables and row counts),
`tables/<name>.jsonl` (one JSON object per row; dates ISO, decimals as strings) and
`attachments/<sha256>`. Restore replaces all rows in one transaction, so a failed restore
leaves the database as it was; it works across SQLite and PostgreSQL.
"""
from __future__ import annotations

import datetime as dt
import json
import zipfile
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from .crypto import raw_select

from .db import is_sqlite, writing

FORMAT = 1


def _out(v):
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return v


def _in(col: sa.Column, v):
    if v is None:
        return None
    t = col.type
    if isinstance(t, sa.DateTime):
        return dt.datetime.fromisoformat(v)
    if isinstance(t, sa.Date):
        return dt.date.fromisoformat(v)
    if isinstance(t, sa.Numeric) and not isinstance(t, sa.Float):
        return Decimal(v)
    return v


def backup(engine: sa.Engine, metadata: sa.MetaData, path: str | Path, attachments_root: str | Path | None = None,
           digest: str = "") -> dict:
    live = set(sa.inspect(engine).get_table_names())
    counts = {}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z, engine.connect() as conn:
        for t in metadata.sorted_tables:
            if t.name not in live:
                continue
            n = 0
            with z.open(f"tables/{t.name}.jsonl", "w") as f:
                for row in conn.execute(raw_select(t).order_by(*t.primary_key.columns)).mappings():
                    f.write((json.dumps({k: _out(v) for k, v in row.items()}, ensure_ascii=False) + "\n").encode())
                    n += 1
            counts[t.name] = n
        files = 0
        if attachments_root and Path(attachments_root).is_dir():
            for p in Path(attachments_root).rglob("*"):
                if p.is_file() and not p.name.endswith(".part"):
                    z.write(p, f"attachments/{p.name}")
                    files += 1
        manifest = {"format": FORMAT, "dialect": engine.dialect.name, "config_digest": digest,
                    "created_at": dt.datetime.now(dt.timezone.utc).isoformat(), "tables": counts, "files": files}
        z.writestr("manifest.json", json.dumps(manifest, indent=1))
    return manifest


def restore(engine: sa.Engine, metadata: sa.MetaData, path: str | Path,
            attachments_root: str | Path | None = None) -> dict:
    with zipfile.ZipFile(path) as z:
        manifest = json.loads(z.read("manifest.json"))
        if manifest.get("format") != FORMAT:
            raise ValueError(f"unknown backup format {manifest.get('format')!r}")
        missing = [name for name in manifest["tables"] if name not in metadata.tables]
        if missing:
            raise ValueError("the backup has tables the current config does not: " + ", ".join(missing)
                             + " (load the matching config first)")
        tables = [t for t in metadata.sorted_tables if t.name in manifest["tables"]]
        with writing(engine) as conn:
            if not is_sqlite(conn):
                conn.execute(sa.text("SET CONSTRAINTS ALL DEFERRED"))
            for t in reversed(tables):
                conn.execute(t.delete())
            for t in tables:
                batch = []
                with z.open(f"tables/{t.name}.jsonl") as f:
                    for line in f:
                        raw = json.loads(line)
                        batch.append({k: _in(t.c[k], v) for k, v in raw.items() if k in t.c})
                        if len(batch) >= 5000:
                            conn.execute(t.insert(), batch)
                            batch = []
                if batch:
                    conn.execute(t.insert(), batch)
                if not is_sqlite(conn) and "id" in t.c and isinstance(t.c.id.type, sa.Integer) and t.c.id.primary_key:
                    conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence(:t, 'id'), "
                                         f"COALESCE((SELECT MAX(id) FROM \"{t.name}\"), 0) + 1, false)"), {"t": t.name})
        if attachments_root:
            root = Path(attachments_root)
            for name in z.namelist():
                if name.startswith("attachments/") and len(name.split("/")[-1]) == 64:
                    sha = name.split("/")[-1]
                    dst = root / sha[:2] / sha
                    if not dst.exists():
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        dst.write_bytes(z.read(name))
    return manifest
