"""Packs side by side in one config folder (issue 11 part 3, `flask crm pack ...`).

The instance's config folder is its own pack (pack.yaml). Another pack is installed *into* that
folder: its files land at the same relative paths (entities/x.yaml, workflows/y.yaml, ...) and
its manifest at packs/<id>.yaml, which the loader reads for the pack's modules and roles.
`sys_pack` records, per pack, its version and the exact content it brought (its files, keyed by
folder path): uninstall removes those files, upgrade merges three ways (that content, the new
version, the folder as it is now) and lists conflicts instead of overwriting local changes.
Every change goes through configstore.apply, so it is checked, planned, versioned, audited and
reaches every running process like a studio change. Uninstall keeps the data of the pack's
entities (their tables are kept as `_removed_<table>` and taken back on reinstall) unless purged.
"""
from __future__ import annotations

import datetime as dt
import io
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import sqlalchemy as sa
import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from engine import schemas, yamlio
from engine.db import reading, writing
from engine.migrator import REMOVED
from engine.systables import SYSTEM

from . import auditlog, configstore
from .configstore import Refused

packs = sa.Table(
    "sys_pack", SYSTEM,
    sa.Column("id", sa.String(48), primary_key=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("label", sa.JSON),
    sa.Column("own", sa.Boolean(create_constraint=False), nullable=False, default=False),  # the folder's pack.yaml
    sa.Column("files", sa.JSON, nullable=False),      # {folder path: text as the pack brought it}
    sa.Column("installed_at", sa.DateTime),
    sa.Column("username", sa.String(64)),
)

CONTENT = ("entities", "forms", "workflows", "calendars", "slas", "assignments", "automations", "reports",
           "dashboards", "segments")
TOP_FILES = ("access.yaml", "home.yaml")
MAX_ZIP_BYTES = 20 * 1024 * 1024
MAX_ZIP_FILES = 2000


@dataclass
class Source:
    """A pack read from a folder or zip: its manifest and config files (pack-relative paths)."""

    id: str
    version: str
    label: dict
    depends: list
    manifest: str
    files: dict

    def folder_files(self, own: bool = False) -> dict:
        """{folder path: text} where the pack's files go. Beside the folder's own pack, its
        access.yaml and home.yaml go to access/<id>.yaml and home/<id>.yaml, which the loader
        merges with the folder's own (a role's rights and home come from every pack)."""
        out = {(placed_top(rel, self.id) if not own else rel): text for rel, text in self.files.items()}
        out[manifest_path(self.id, own)] = self.manifest
        return out


def placed_top(rel: str, pack_id: str) -> str:
    return f"{rel[:-len('.yaml')]}/{pack_id}.yaml" if rel in TOP_FILES else rel


def exported_name(path: str, pack_id: str) -> str:
    """A folder path as the pack's own file name (the inverse of `placed_top`)."""
    for top in TOP_FILES:
        if path == placed_top(top, pack_id):
            return top
    return path


def manifest_path(pack_id: str, own: bool = False) -> str:
    return "pack.yaml" if own else f"packs/{pack_id}.yaml"


def _now():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


# ---- reading a pack -------------------------------------------------------------------------------
def _unzip(path: str) -> str:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise Refused(f"{path} is not a readable zip file: {e}")
    tmp = tempfile.mkdtemp(prefix="crm-pack-")
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_FILES or sum(i.file_size for i in infos) > MAX_ZIP_BYTES:
            raise Refused(f"{path} is too large for a pack (at most {MAX_ZIP_FILES} files, "
                          f"{MAX_ZIP_BYTES // (1024 * 1024)} MB).")
        for info in infos:
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts or "\\" in info.filename:
                raise Refused(f"{path}: the member {info.filename!r} points outside the pack.")
            if not info.is_dir():
                target = Path(tmp, *name.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(info))
    root = Path(tmp)
    if not (root / "pack.yaml").exists():
        inner = [p for p in root.iterdir() if p.is_dir() and (p / "pack.yaml").exists()]
        if len(inner) == 1:
            return str(inner[0])
    return tmp


def read_source(src: str) -> Source:
    """Read and check a pack folder or zip; Refused listing every problem (bad manifest, YAML errors)."""
    if not os.path.exists(src):
        raise Refused(f"{src} does not exist: give a pack folder or a .zip.")
    if not os.path.isfile(src):
        return _read(src, Path(src))
    root = _unzip(src)
    try:
        return _read(src, Path(root))
    finally:
        shutil.rmtree(root if "crm-pack-" in Path(root).name else Path(root).parent, ignore_errors=True)


def _read(src: str, root: Path) -> Source:
    manifest = root / "pack.yaml"
    if not manifest.is_file():
        raise Refused(f"{src} has no pack.yaml (the pack manifest: pack, version, label).")
    problems = []
    text = manifest.read_text(encoding="utf-8", errors="replace")
    doc, errs = yamlio.load(text, "pack.yaml")
    problems += errs
    if doc is not None:
        problems += schemas.check(doc, "pack") if isinstance(doc.data, dict) else \
            [doc.problem((), "pack.yaml must be a mapping (pack, version, label, ...)")]
    files = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if not p.is_file() or p.suffix not in (".yaml", ".yml") or rel == "pack.yaml":
            continue
        if not (rel in TOP_FILES or (rel.split("/")[0] in CONTENT and rel.count("/") == 1)):
            continue                                  # demo data, tests, docs: not config
        try:
            body = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            problems.append(f"{rel}: not UTF-8 text")
            continue
        _d, errs = yamlio.load(body, rel)
        problems += errs
        files[rel] = body
    if problems:
        raise Refused(f"The pack in {src} is refused before anything changed:", [str(p) for p in problems])
    data = doc.data
    return Source(id=data["pack"], version=data["version"], label=data.get("label"),
                  depends=list(data.get("depends") or ()), manifest=text, files=files)


# ---- what is installed ----------------------------------------------------------------------------
def _rows(engine) -> dict:
    with reading(engine) as conn:
        return {r["id"]: dict(r) for r in conn.execute(sa.select(packs).order_by(packs.c.own.desc(), packs.c.id))
                .mappings()}


def installed(rt) -> dict:
    """{pack id: row} with the folder's own pack registered on first use."""
    rows = _rows(rt.engine)
    own = rt.config.pack if rt.config is not None else None
    if own is not None and own.id not in rows:
        configstore.sync_history(rt.engine, rt.config_dir)
        first = configstore.get_version(rt.engine, 1)
        others = {p for r in rows.values() for p in r["files"]}
        base = (first or {}).get("files") or configstore.read_folder(rt.config_dir)
        mine = {p: t for p, t in base.items() if not p.startswith("packs/") and p not in others}
        with writing(rt.engine) as conn:
            conn.execute(packs.insert().values(id=own.id, version=own.version, label=own.label, own=True,
                                               files=mine, installed_at=_now(), username="system"))
        rows = _rows(rt.engine)
    return rows


def _check_depends(source: Source, rows: dict, problems: list):
    for dep in source.depends:
        pid, spec = dep.get("pack"), dep.get("version") or ""
        row = rows.get(pid)
        if row is None:
            problems.append(f"pack.yaml: depends: pack {pid!r} is not installed")
            continue
        try:
            ok = Version(row["version"]) in SpecifierSet(spec)
        except (InvalidSpecifier, InvalidVersion) as e:
            problems.append(f"pack.yaml: depends: {pid} {spec!r} is not a version range like '>=1.0,<2': {e}")
            continue
        if not ok:
            problems.append(f"pack.yaml: depends: {pid} {spec} is needed; version {row['version']} is installed")


def _owner(rows: dict, path: str):
    return next((pid for pid, r in rows.items() if path in r["files"]), None)


# ---- install ------------------------------------------------------------------------------------
def _kept_tables(rt, files: dict) -> list:
    """(kept name, table) of this pack's entities whose data an earlier uninstall kept."""
    out = []
    with reading(rt.engine) as conn:
        live = set(sa.inspect(conn).get_table_names())
    for path, text in files.items():
        data = yaml.safe_load(text) if path.startswith("entities/") else None
        if not isinstance(data, dict) or not isinstance(data.get("entity"), str):
            continue
        table = f"e_{data['entity']}"
        kept = sorted((n for n in live if n == f"{REMOVED}{table}" or n.startswith(f"{REMOVED}{table}_")),
                      key=lambda n: (len(n), n))
        if kept and table not in live:
            out.append((kept[-1], table))
    return out


def _rename(rt, pairs):
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    with writing(rt.engine) as conn:
        ops = Operations(MigrationContext.configure(conn))
        for old, new in pairs:
            ops.rename_table(old, new)


def plan_install(rt, source: Source) -> dict:
    rows = installed(rt)
    problems = []
    if source.id in rows:
        have = rows[source.id]["version"]
        problems.append(f"pack {source.id} {have} is installed already; "
                        + ("a lower version is a downgrade, which is refused" if _v(source.version) < _v(have)
                           else "use `flask crm pack upgrade`"))
    _check_depends(source, rows, problems)
    folder = configstore.read_folder(rt.config_dir)
    for path in source.folder_files():
        if path in folder:
            owner = _owner(rows, path)
            problems.append(f"{path} exists already in the config folder"
                            + (f" (brought by pack {owner})" if owner else " (a local file)"))
    if problems:
        return {"problems": problems, "steps": []}
    return configstore.plan(rt, source.folder_files())


def install(rt, source: Source, allow_destructive: bool = False) -> int:
    result = plan_install(rt, source)
    if result["problems"]:
        raise Refused(f"Pack {source.id} {source.version} is not installed; nothing changed:", result["problems"])
    kept = _kept_tables(rt, source.files)
    _rename(rt, kept)
    try:
        number = configstore.apply(rt, source.folder_files(), f"pack install {source.id} {source.version}",
                                   auditlog.cli_actor(), allow_destructive)
    except Refused:
        _rename(rt, [(new, old) for old, new in kept])
        raise
    _record(rt, source, own=False)
    return number


def _record(rt, source: Source, own: bool):
    files = source.folder_files(own)
    with writing(rt.engine) as conn:
        conn.execute(packs.delete().where(packs.c.id == source.id))
        conn.execute(packs.insert().values(id=source.id, version=source.version, label=source.label, own=own,
                                           files=files, installed_at=_now(), username=auditlog.cli_actor().username))


def _v(text):
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


# ---- upgrade: a three-way merge -------------------------------------------------------------------
def _merge_data(base, local, new, path, conflicts):
    if local == new:
        return local
    if local == base:
        return new
    if new == base:
        return local
    if isinstance(base, dict) and isinstance(local, dict) and isinstance(new, dict):
        out = {}
        for k in list(local) + [k for k in new if k not in local]:
            if k in base or k in local or k in new:
                b, lo, n = base.get(k, _MISSING), local.get(k, _MISSING), new.get(k, _MISSING)
                v = _merge_data(b, lo, n, path + (str(k),), conflicts)
                if v is not _MISSING:
                    out[k] = v
        return out
    conflicts.append(".".join(path) or "(the whole file)")
    return local


_MISSING = object()


def merge_file(base: str | None, local: str | None, new: str | None) -> tuple[str | None, list]:
    """(merged text or None = deleted, conflicting key paths) of one file."""
    if local == new:
        return local, []
    if local == base:
        return new, []
    if new == base:
        return local, []
    if base is None or local is None or new is None:
        what = ("added by the new version and present locally with other content" if base is None else
                "deleted locally but changed by the new version" if local is None else
                "changed locally but dropped by the new version")
        return local, [what]
    try:
        b, lo, n = (yaml.safe_load(x) for x in (base, local, new))
    except yaml.YAMLError:
        return local, ["changed locally and in the new version (not YAML)"]
    conflicts: list = []
    merged = _merge_data(b, lo, n, (), conflicts)
    if conflicts:
        return local, [f"{c}: changed locally and in the new version" for c in conflicts]
    return yaml.safe_dump(merged, allow_unicode=True, sort_keys=False, width=120), []


def plan_upgrade(rt, source: Source) -> tuple[dict, dict]:
    rows = installed(rt)
    row = rows.get(source.id)
    if row is None:
        return {"problems": [f"pack {source.id} is not installed; use `flask crm pack install`"], "steps": []}, {}
    problems = []
    if _v(source.version) < _v(row["version"]):
        problems.append(f"{source.id} {source.version} is older than the installed {row['version']}: "
                        "a downgrade is refused")
    elif _v(source.version) == _v(row["version"]):
        problems.append(f"{source.id} {row['version']} is installed already")
    _check_depends(source, rows, problems)
    own = bool(row["own"])
    new_files = source.folder_files(own)
    old_files = row["files"]
    folder = configstore.read_folder(rt.config_dir)
    change = {}
    for path in sorted(set(old_files) | set(new_files)):
        if path not in old_files and path in folder and _owner(rows, path) not in (None, source.id):
            problems.append(f"{path}: brought by pack {_owner(rows, path)}; the new version cannot take it")
            continue
        merged, conflicts = merge_file(old_files.get(path), folder.get(path), new_files.get(path))
        problems += [f"{path}: {c}" for c in conflicts]
        if merged != folder.get(path):
            change[path] = merged
    if problems:
        return {"problems": problems, "steps": []}, change
    result = configstore.plan(rt, change)
    result["files"] = sorted(change)
    return result, change


def upgrade(rt, source: Source, allow_destructive: bool = False) -> int:
    result, change = plan_upgrade(rt, source)
    if result["problems"]:
        raise Refused(f"Pack {source.id} is not upgraded to {source.version}; nothing changed:", result["problems"])
    number = configstore.apply(rt, change, f"pack upgrade {source.id} {source.version}", auditlog.cli_actor(),
                               allow_destructive)
    _record(rt, source, own=bool(installed(rt)[source.id]["own"]))
    return number


# ---- uninstall and export -------------------------------------------------------------------------
def _entities_of(files: dict) -> list:
    out = []
    for path, text in files.items():
        if path.startswith("entities/"):
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError:
                continue
            if isinstance(data, dict) and isinstance(data.get("entity"), str):
                out.append(data["entity"])
    return out


def plan_uninstall(rt, pack_id: str) -> tuple[dict, dict]:
    rows = installed(rt)
    row = rows.get(pack_id)
    if row is None:
        return {"problems": [f"pack {pack_id} is not installed"], "steps": []}, {}
    if row["own"]:
        return {"problems": [f"{pack_id} is the config folder's own pack (pack.yaml); it cannot be uninstalled"],
                "steps": []}, {}
    problems = []
    for other, r in rows.items():
        deps = [d for d in (yaml.safe_load(r["files"].get(manifest_path(other, r["own"]), "")) or {}).get("depends", ())
                if isinstance(d, dict) and d.get("pack") == pack_id] if other != pack_id else []
        if deps:
            problems.append(f"pack {other} depends on {pack_id}; uninstall it first")
    folder = configstore.read_folder(rt.config_dir)
    change = {p: None for p in row["files"] if p in folder}
    if problems:
        return {"problems": problems, "steps": []}, change
    return configstore.plan(rt, change), change


def uninstall(rt, pack_id: str, purge: bool = False) -> tuple[int, list]:
    result, change = plan_uninstall(rt, pack_id)
    if result["problems"]:
        raise Refused(f"Pack {pack_id} is not uninstalled; nothing changed:", result["problems"])
    files = installed(rt)[pack_id]["files"]
    number = configstore.apply(rt, change, f"pack uninstall {pack_id}" + (" --purge" if purge else ""),
                               auditlog.cli_actor(), allow_destructive=True)
    with writing(rt.engine) as conn:
        conn.execute(packs.delete().where(packs.c.id == pack_id))
    dropped = []
    if purge:
        dropped = _purge(rt, _entities_of(files))
        auditlog.record(rt.engine, "config.purge", auditlog.cli_actor(),
                        detail=f"pack {pack_id}: dropped " + (", ".join(dropped) or "nothing"))
    return number, dropped


def _purge(rt, entity_ids) -> list:
    dropped = []
    with writing(rt.engine) as conn:
        live = sa.inspect(conn).get_table_names()
        for eid in entity_ids:
            table = f"e_{eid}"
            for name in live:
                if name == f"{REMOVED}{table}" or re.fullmatch(rf"{re.escape(REMOVED + table)}_[0-9]+", name):
                    conn.execute(sa.text(f'DROP TABLE "{name}"'))
                    dropped.append(name)
    return dropped


def export(rt, pack_id: str, target: str) -> list:
    """Write the pack as it is now in the folder (local changes included) to a zip; its paths.
    The folder's own pack also takes the files no pack owns (what the studio added)."""
    rows = installed(rt)
    row = rows.get(pack_id)
    if row is None:
        raise Refused(f"pack {pack_id} is not installed; `flask crm pack list` shows the installed packs")
    folder = configstore.read_folder(rt.config_dir)
    owned = set(row["files"])
    if row["own"]:
        owned |= {p for p in folder if _owner(rows, p) is None and not p.startswith("packs/")}
    manifest = manifest_path(pack_id, row["own"])
    buf = io.BytesIO()
    names = []
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(owned):
            if path in folder:
                name = "pack.yaml" if path == manifest else (path if row["own"] else exported_name(path, pack_id))
                zf.writestr(name, folder[path])
                names.append(name)
    tmp = target + ".tmp"
    with open(tmp, "wb") as f:
        f.write(buf.getvalue())
    os.replace(tmp, target)
    return names

