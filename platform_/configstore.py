"""Versions of the config folder: plan, apply, history, restore (issue 11, "Studio and packs").

Each applied change is stored whole (every file's text) as version N in `sys_config_version`, so
any version can be shown, compared and restored. A change is checked on a copy of the folder in a
temp dir first (loader + checker + migration plan + workflow impact); only a clean change is
written into the folder, migrated, audited, and announced by bumping the generation counter in
`sys_config_state`, which every web and worker process polls (platform_/runtime.py `follow`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path, PurePosixPath

import sqlalchemy as sa

from engine.db import reading, writing
from engine.errors import ConfigInvalid, EngineError, MigrationRefused
from engine.loader import load_config
from engine.migrator import Migrator
from engine.systables import SYSTEM
from engine.wftables import definitions

from . import auditlog
from .depguard import removed_in_use

versions = sa.Table(
    "sys_config_version", SYSTEM,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("message", sa.String(500)),
    sa.Column("user_id", sa.Integer),
    sa.Column("username", sa.String(64)),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("files", sa.JSON, nullable=False),       # {"entities/x.yaml": "<text>", ...}
    sa.Column("digest", sa.String(64), nullable=False),
)

state = sa.Table(
    "sys_config_state", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("generation", sa.Integer, nullable=False),
)

SUFFIXES = (".yaml", ".yml")
MAX_FILES = 2000
_lock = threading.Lock()


class Refused(EngineError):
    """A change that is not applied: `status` 422 (problems) or 409 (stale base version)."""

    code = "config_refused"

    def __init__(self, message: str, problems: list[str] | None = None, status: int = 422, steps=None):
        super().__init__(message)
        self.problems, self.status, self.steps = problems or [], status, steps or []


def _now():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


# ---- the folder -----------------------------------------------------------------------------------
def read_folder(root) -> dict:
    """{relative posix path: text} of every YAML file under the folder (hidden entries skipped)."""
    root = Path(root)
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file() or p.suffix not in SUFFIXES:
            continue
        try:
            out[rel.as_posix()] = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    return out


def digest_of(files: dict) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def check_files(files) -> dict:
    """The request's {path: text | None}, every path a relative YAML path inside the folder."""
    if not isinstance(files, dict):
        raise Refused("'files' must be an object of {path: YAML text or null}.", status=400)
    if len(files) > MAX_FILES:
        raise Refused(f"At most {MAX_FILES} files in one change.", status=400)
    bad = []
    for path, text in files.items():
        pp = PurePosixPath(path) if isinstance(path, str) else None
        if (pp is None or not path or pp.is_absolute() or "\\" in path or any(x in ("..", ".", "") for x in path.split("/"))
                or any(x.startswith(".") for x in pp.parts) or pp.suffix not in SUFFIXES):
            bad.append(f"{path}: not a relative .yaml path inside the config folder")
        elif text is not None and not isinstance(text, str):
            bad.append(f"{path}: the content must be YAML text or null (delete the file)")
    if bad:
        raise Refused("The change names bad files.", bad, status=400)
    return files


def write_files(root, files: dict) -> dict:
    """Write (atomically per file) or delete; returns the previous texts for `write_files` to undo."""
    root = Path(root)
    before = {}
    for path, text in files.items():
        target = root / path
        before[path] = target.read_text(encoding="utf-8") if target.is_file() else None
        if text is None:
            if target.is_file():
                target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    return before


def _stage(root, files: dict) -> str:
    tmp = tempfile.mkdtemp(prefix="crm-plan-")
    dest = os.path.join(tmp, "config")
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns(".*"))
    write_files(dest, files)
    return dest


def _shown(problem, staged: str) -> str:
    text = str(problem)
    return text.replace(staged + os.sep, "").replace(staged, "config")


# ---- the generation counter ----------------------------------------------------------------------
def generation(engine, conn=None) -> int:
    def get(c):
        try:
            return c.execute(sa.select(state.c.generation).where(state.c.id == 1)).scalar() or 0
        except sa.exc.DBAPIError:
            return 0
    if conn is not None:
        return get(conn)
    with reading(engine) as c:
        return get(c)


def bump(conn) -> int:
    cur = conn.execute(sa.select(state.c.generation).where(state.c.id == 1)).scalar()
    if cur is None:
        conn.execute(state.insert().values(id=1, generation=1))
        return 1
    conn.execute(state.update().where(state.c.id == 1).values(generation=cur + 1))
    return cur + 1


def bump_generation(engine) -> int:
    """Tell every running process to reload the config folder (used by `flask crm migrate --apply`)."""
    with writing(engine) as conn:
        return bump(conn)


# ---- versions -------------------------------------------------------------------------------------
def _latest(conn):
    return conn.execute(sa.select(versions.c.version, versions.c.digest).order_by(versions.c.version.desc())
                        .limit(1)).first()


def _insert(conn, number, files, message, by):
    uid, name = auditlog.who(by)
    conn.execute(versions.insert().values(version=number, message=(message or "")[:500], user_id=uid,
                                          username=name, at=_now(), files=files, digest=digest_of(files)))


def sync_history(engine, root) -> int:
    """The current version number; the folder as it is now becomes a version first when it differs
    from the last stored one (the first version, or changes made outside the studio)."""
    files = read_folder(root)
    d = digest_of(files)
    try:
        with writing(engine) as conn:
            last = _latest(conn)
            if last is not None and last.digest == d:
                return last.version
            number = (last.version if last else 0) + 1
            _insert(conn, number, files, "initial configuration" if last is None
                    else "changes made outside the studio", None)
            return number
    except sa.exc.IntegrityError:       # another process recorded a version at the same moment
        with reading(engine) as conn:
            return _latest(conn).version


def listing(engine, root) -> list[dict]:
    sync_history(engine, root)
    with reading(engine) as conn:
        rows = conn.execute(sa.select(versions.c.version, versions.c.message, versions.c.username, versions.c.at,
                                      versions.c.digest).order_by(versions.c.version.desc())).mappings().all()
    return [{"version": r["version"], "message": r["message"], "user": r["username"],
             "at": r["at"].isoformat(sep=" ") if r["at"] else None, "digest": r["digest"][:12]} for r in rows]


def get_version(engine, number: int) -> dict | None:
    with reading(engine) as conn:
        r = conn.execute(sa.select(versions).where(versions.c.version == number)).mappings().first()
    return dict(r) if r else None


# ---- plan and apply -------------------------------------------------------------------------------
def _workflow_impact(engine, new_config) -> list[dict]:
    """Records in workflow states the new config no longer has (one step per state)."""
    out = []
    with reading(engine) as conn:
        insp = sa.inspect(conn)
        live = set(insp.get_table_names())
        for wf in new_config.workflows.values():
            entity = new_config.entities.get(wf.entity)
            if entity is None or entity.table_name not in live:
                continue
            cols = {c["name"] for c in insp.get_columns(entity.table_name)}
            if wf.field not in cols:
                continue
            t = sa.table(entity.table_name, sa.column(wf.field), sa.column("deleted_at"))
            col = t.c[wf.field]
            rows = conn.execute(sa.select(col, sa.func.count()).where(
                t.c.deleted_at.is_(None), col.is_not(None), col.not_in(list(wf.states))).group_by(col)).all()
            for st, n in rows:
                kept = any(st in (d.get("states") or {}) for d in conn.execute(
                    sa.select(definitions.c.definition).where(definitions.c.workflow == wf.id)).scalars())
                out.append({"kind": "workflow_state_removed", "table": entity.table_name, "column": wf.field,
                            "detail": f"{n} record(s) of {entity.id} in state {st!r}, which the new version of "
                                      f"{wf.id} lacks; " + ("they keep running on the stored version that has it"
                                                            if kept else "no stored version has it: move them first"),
                            "destructive": True, "rows": n, "blockers": [] if kept else [f"state {st!r} is unknown"]})
    return out


def plan(rt, files: dict) -> dict:
    """{"problems": [...], "steps": [...]} of applying `files` on the current folder; nothing changes."""
    result, _config, staged = _plan(rt, check_files(files))
    shutil.rmtree(os.path.dirname(staged), ignore_errors=True)
    return result


def _plan(rt, files):
    staged = _stage(rt.config_dir, files)
    try:
        new = load_config(staged)
    except ConfigInvalid as e:
        problems = [_shown(p, staged) for p in e.problems]
        if rt.config is not None:
            problems += removed_in_use(rt.config, staged, files)
        return {"problems": problems, "steps": []}, None, staged
    problems = removed_in_use(rt.config, staged, files) if rt.config is not None else []
    steps = [s.as_dict() for s in Migrator(rt.engine, new).plan()]
    steps += _workflow_impact(rt.engine, new)
    for s in steps:
        for b in s["blockers"]:
            problems.append(f"{s['table']}{'.' + s['column'] if s['column'] else ''}: {b}")
    return {"problems": problems, "steps": steps}, new, staged


def apply(rt, files: dict, message: str, by, allow_destructive: bool = False, base_version=None) -> int:
    """Check, write, migrate, store and announce a change; the new version number.
    Raises Refused (422 problems / risky steps not allowed, 409 stale base) with nothing changed."""
    files = check_files(files)
    with _lock:
        current = sync_history(rt.engine, rt.config_dir)
        if base_version is not None and str(base_version) != str(current):
            raise Refused(f"The configuration changed since version {base_version}: it is now at version "
                          f"{current}. Reload, review and apply again.", status=409)
        result, _new, staged = _plan(rt, files)
        content = read_folder(staged)       # the folder as it will be: claimed with the version number
        shutil.rmtree(os.path.dirname(staged), ignore_errors=True)
        if result["problems"]:
            raise Refused("The change is not applied: the configuration would have problems.", result["problems"],
                          steps=result["steps"])
        risky = [s for s in result["steps"] if s["destructive"]]
        if risky and not allow_destructive:
            raise Refused("The change has risky steps; review them and apply with allow_destructive.",
                          [f"risky: {s['kind']} {s['table']}{'.' + s['column'] if s['column'] else ''}: {s['detail']}"
                           for s in risky], steps=result["steps"])
        number = current + 1
        try:
            with writing(rt.engine) as conn:
                _insert(conn, number, content, message, by)     # claims the number before the folder changes
        except sa.exc.IntegrityError:
            raise Refused("Another change was applied at the same moment; reload and apply again.", status=409)
        before = write_files(rt.config_dir, files)
        try:
            config = load_config(rt.config_dir)
            Migrator(rt.engine, config).apply(allow_destructive=allow_destructive, audit_as=by)
        except (ConfigInvalid, MigrationRefused) as e:
            write_files(rt.config_dir, before)
            with writing(rt.engine) as conn:
                conn.execute(versions.delete().where(versions.c.version == number))
            raise Refused("The change is not applied: " + e.message.split("\n")[0],
                          getattr(e, "details", None) or [str(p) for p in getattr(e, "problems", [])])
        content = read_folder(rt.config_dir)
        with writing(rt.engine) as conn:
            conn.execute(versions.update().where(versions.c.version == number).values(
                files=content, digest=digest_of(content)))
            auditlog.append(conn, "config.apply", by, detail=f"version {number}: {message or ''}"[:500]
                            + "; files: " + ", ".join(sorted(files))[:1500])
            bump(conn)
    rt.load()
    rt.ensure_schema(by=by)
    if rt.workflows is not None:
        rt.workflows.register_definitions()
    rt.seen_generation = generation(rt.engine)
    return number


def restore_files(rt, number: int) -> dict:
    """The change that turns the current folder into version `number` (None when there is no such version)."""
    v = get_version(rt.engine, number)
    if v is None:
        return None
    old, now = v["files"] or {}, read_folder(rt.config_dir)
    change = {p: t for p, t in old.items() if now.get(p) != t}
    change.update({p: None for p in now if p not in old})
    return change
