"""Importing rows of a file into an entity: columns mapped to fields, cells turned into field
input (labels of options, dates in several forms, links by title or code), every row through the
store's full validation, duplicates and `key` upserts, in batches that commit whole.

A batch's records and the import's progress (`sys_import.rows_done`) commit in one transaction,
so an import killed midway resumes after the last committed batch without writing a row twice. A
dry run does the same work and rolls every batch back.

Duplicate rules are entity config (`duplicates: {match: [[phone], [email], [name]],
on_duplicate: skip|update|flag}`): a row equal to a live record on every field of any match set
is skipped, updates that record, or is flagged as an error row; never a second record.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa

from . import importlog, values
from .actor import Actor
from .errors import BadRequest, EngineError, ValidationFailed
from .importfile import DEFAULT_MAX_MB, Sheet, count_rows, open_sheet
from .model import Entity, Field
from .systables import users

BATCH = 500
SKIP_TYPES = ("table", "attachment")
_DATE = re.compile(r"^\s*(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*$")
_SPLIT = re.compile(r"\s*[,，、;；]\s*")
YES = {"是", "y", "√", "✓"}
NO = {"否", "n", "×"}
NEUTRALISED = ("=", "+", "-", "@", "\t", "\r")


def norm(text) -> str:
    """A column name or name-like value compared loosely: width-folded, case-folded, no spaces."""
    return re.sub(r"[\s_]+", "", unicodedata.normalize("NFKC", str(text or ""))).casefold()


def importable(entity: Entity) -> list[Field]:
    return [f for f in entity.fields.values()
            if f.stored and f.type not in SKIP_TYPES and f.writable and not f.computed]


def guess_mapping(entity: Entity, header: list, saved: dict | None = None) -> tuple[dict, list]:
    """({column index: field id}, [unknown column names]): by a saved choice, else by field id or
    label in English or Chinese, ignoring case and spaces."""
    names = {}
    for f in importable(entity):
        for n in (f.id, *(f.label or {}).values()):
            names.setdefault(norm(n), f.id)
    saved = saved or {}
    mapping, unknown, used = {}, [], set()
    for i, col in enumerate(header):
        key = norm(col)
        if not key:
            continue
        fid = saved.get(key) if key in saved else names.get(key)
        if fid and fid in entity.fields and fid not in used:
            mapping[i] = fid
            used.add(fid)
        elif key not in saved or saved.get(key):
            unknown.append(col)
    return mapping, unknown


@dataclass
class Result:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list = field(default_factory=list)   # [{"line", "field", "message"}]
    rows_done: int = 0
    import_id: int | None = None
    unknown_columns: list = field(default_factory=list)

    def as_json(self) -> dict:
        return {"created": self.created, "updated": self.updated, "skipped": self.skipped, "errors": self.errors,
                "unknown_columns": self.unknown_columns, "import_id": self.import_id}


class Importer:
    def __init__(self, store, entity_id: str, actor: Actor, mapping: dict, key: str | None = None,
                 dry_run: bool = False, batch_size: int = BATCH):
        self.store, self.actor = store, actor
        self.entity = store.entity(entity_id)
        store.check(entity_id, "import", actor)
        self.mapping = {int(i): f for i, f in mapping.items()}
        self.fields = {i: self.entity.fields[f] for i, f in self.mapping.items()}
        self.key = key
        if key is not None and key not in self.mapping.values():
            raise BadRequest(f"--key {key}: no column of the file is mapped to the field {key!r}.")
        self.dry_run, self.batch_size = dry_run, batch_size
        self.table = store.table(self.entity)
        dup = self.entity.duplicates or {}
        self.dup_match = [tuple(g) for g in dup.get("match", ())]
        self.dup_action = dup.get("on_duplicate", "skip")
        self._links: dict = {}
        self._dups: dict | None = None
        self._line = 0
        self._lang = actor.language

    # ---- the run -----------------------------------------------------------------------------
    def run(self, rows, result: Result | None = None, on_batch=None) -> Result:
        """Import (line, cells) rows, skipping the first `result.rows_done` (a resumed import).
        `on_batch(result)` is called after each committed batch (progress; tests kill here)."""
        res = result or Result()
        skip, batch = res.rows_done, []
        for n, item in enumerate(rows):
            if n < skip:
                continue
            batch.append(item)
            if len(batch) >= self.batch_size:
                self._batch(batch, res)
                batch = []
                if on_batch:
                    on_batch(res)
        if batch:
            self._batch(batch, res)
            if on_batch:
                on_batch(res)
        return res

    def _batch(self, batch, res: Result) -> None:
        counts = self._run_batch(batch, res)
        if self.dry_run and res.import_id is not None:
            with transaction(self.store.engine, False) as conn:
                importlog.progress(conn, res.import_id, *counts)
        res.rows_done, res.created, res.updated, res.skipped, res.errors = counts

    def _run_batch(self, batch, res: Result):
        """One transaction. Rows to update are written one by one, each in a savepoint; rows to
        create are collected and written together by the store's bulk create (one validation pass,
        one INSERT) — a row it refuses is reported and the rest written; should the bulk write fail
        otherwise, they are written one by one, each in a savepoint, so nothing half-done remains."""
        c = {"created": res.created, "updated": res.updated, "skipped": res.skipped}
        found: list = []
        with transaction(self.store.engine, self.dry_run) as conn:
            self._pending = {}
            for line, cells in batch:
                try:
                    self._line = line
                    with conn.begin_nested():
                        outcome = self._row(conn, cells)
                    if outcome != "pending":
                        c[outcome] += 1
                except Exception as e:          # noqa: BLE001 — reported per line, see _problems
                    found += _problems(line, e)
            c["created"] += self._create_pending(conn, list(self._pending.items()), found)
            errors = list(res.errors) + sorted(found, key=lambda x: x["line"])
            counts = (res.rows_done + len(batch), c["created"], c["updated"], c["skipped"], errors)
            if not self.dry_run and res.import_id is not None:
                importlog.progress(conn, res.import_id, *counts)
        return counts

    def _create_pending(self, conn, rows: list, found: list) -> int:
        """Create the collected rows [(line, data)] with the bulk create; the lines of refused rows
        go to `found`. Returns the number created."""
        for _attempt in range(3):
            if not rows:
                return 0
            try:
                with conn.begin_nested():
                    ids = self.store.create_many(self.entity.id, [d for _line, d in rows], self.actor,
                                                 mode="form", conn=conn)
            except ValidationFailed as e:
                bad: dict = {}
                for key, text in (e.fields or {}).items():
                    i, _, name = key.partition(".")
                    if not i.isdigit() or int(i) >= len(rows):
                        return self._create_one_by_one(conn, rows, found)   # not a row's error: row by row
                    bad.setdefault(int(i), []).append({"line": rows[int(i)][0], "field": name or "_record",
                                                       "message": str(text)})
                for i in bad:
                    found += bad[i]
                    self._forget(rows[i][1])
                rows = [r for i, r in enumerate(rows) if i not in bad]
                continue
            except (EngineError, sa.exc.DBAPIError):
                return self._create_one_by_one(conn, rows, found)
            for (_line, data), rid in zip(rows, ids):
                self._remember(data, ("line", _line) if self.dry_run else rid, replace=True)
            return len(ids)
        return self._create_one_by_one(conn, rows, found)

    def _create_one_by_one(self, conn, rows: list, found: list) -> int:
        n = 0
        for line, data in rows:
            try:
                with conn.begin_nested():
                    rec = self.store.create(self.entity.id, data, self.actor, mode="form", conn=conn)
                self._remember(data, ("line", line) if self.dry_run else rec["id"], replace=True)
                n += 1
            except Exception as e:              # noqa: BLE001 — reported per line, see _problems
                self._forget(data)
                found += _problems(line, e)
        return n

    # ---- one row -----------------------------------------------------------------------------
    def _row(self, conn, cells) -> str:
        data, problems = {}, {}
        for i, f in self.fields.items():
            raw = cells[i] if i < len(cells) else None
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue
            try:
                data[f.id] = self.cell(conn, f, raw)
            except ValueError as e:
                problems[f.id] = str(e)
        if problems:
            raise ValidationFailed(problems)
        target = None
        if self.key is not None:
            if self.key not in data:
                raise ValidationFailed({self.key: "is empty: the key column says which record to update"})
            target = self._find(conn, {self.key: data[self.key]}, f"key {self.key}")
        elif self.dup_match:
            found = self._duplicate(conn, data)
            if found is not None:
                rid, group = found
                what = f"line {rid[1]}" if isinstance(rid, tuple) else f"{self.entity.label_text(self._lang)} #{rid}"
                if self.dup_action == "skip":
                    return "skipped"
                if self.dup_action == "flag":
                    raise ValidationFailed({group[0]: f"duplicate of {what} (same {', '.join(group)}); not imported"})
                if isinstance(rid, tuple):     # an earlier line of this batch (or of a dry run)
                    if rid[1] in self._pending:
                        self._pending[rid[1]].update(data)
                    return "updated"
                target = rid
        if target is not None:
            self.store.update(self.entity.id, target, data, self.actor, mode="form", conn=conn)
            return "updated"
        if any(f.fetch for f in self.entity.user_fields):
            from .linkopts import fill
            data = fill(self.store, self.entity, data, self.actor)
        self._pending[self._line] = data              # created with the rest of the batch
        if self.dup_match:
            self._remember(data, ("line", self._line))
        return "pending"

    def _find(self, conn, where: dict, what: str):
        t = self.table
        try:
            conds = [self._eq(t, k, v) for k, v in where.items()]
        except ValueError as e:
            raise ValidationFailed({next(iter(where)): str(e)}) from None
        q = sa.select(t.c.id).where(t.c.deleted_at.is_(None), *conds)
        ids = [r[0] for r in conn.execute(q.limit(2))]
        if len(ids) > 1:
            raise ValidationFailed({next(iter(where)): f"{what} matches more than one record; not imported"})
        return ids[0] if ids else None

    def _eq(self, t, name, value):
        """Exact equality (an index on the key field serves it)."""
        return t.c[name] == values.coerce(self.entity.fields[name], value)

    def _dup_key(self, group, row: dict):
        """The normalised values of a match set, hashed (None when a value is missing)."""
        parts = []
        for name in group:
            f = self.entity.fields[name]
            v = row.get(name)
            if values.empty(v):
                return None
            text = norm(v)
            if f.value_type == "phone":
                text = re.sub(r"[^0-9+]", "", text)
            parts.append(text)
        return hashlib.blake2b("\x1f".join((*group, *parts)).encode(), digest_size=8).digest()

    def _dup_index(self, conn) -> dict:
        """{hashed match values: record id} of the live records, built once per import by reading only
        the match columns in id-ordered pages; rows of this import join it as they are written."""
        if self._dups is not None:
            return self._dups
        self._dups = {}
        t = self.table
        names = sorted({n for g in self.dup_match for n in g})
        last = 0
        while True:
            rows = conn.execute(sa.select(t.c.id, *[t.c[n] for n in names]).where(
                t.c.deleted_at.is_(None), t.c.id > last).order_by(t.c.id).limit(20000)).mappings().all()
            for r in rows:
                for g in self.dup_match:
                    k = self._dup_key(g, r)
                    if k is not None:
                        self._dups.setdefault(k, r["id"])
            if len(rows) < 20000:
                return self._dups
            last = rows[-1]["id"]

    def _duplicate(self, conn, data: dict):
        """(record id or ("line", L), match set) of the first match set the row equals, or None."""
        try:
            row = {n: values.coerce(self.entity.fields[n], data.get(n)) for g in self.dup_match for n in g}
        except ValueError:
            return None                    # the store reports the bad value
        index = self._dup_index(conn)
        for g in self.dup_match:
            k = self._dup_key(g, row)
            if k is not None and k in index:
                return index[k], g
        return None

    def _keys(self, data: dict) -> list:
        if self._dups is None:
            return []
        try:
            row = {n: values.coerce(self.entity.fields[n], data.get(n)) for g in self.dup_match for n in g}
        except ValueError:
            return []
        return [k for k in (self._dup_key(g, row) for g in self.dup_match) if k is not None]

    def _remember(self, data: dict, rid, replace: bool = False) -> None:
        """The row's match values point at `rid` (`replace`: the record a pending line became)."""
        for k in self._keys(data):
            if replace and isinstance(self._dups.get(k), tuple):
                self._dups[k] = rid
            else:
                self._dups.setdefault(k, rid)

    def _forget(self, data: dict) -> None:
        """A pending line was refused: later lines are no duplicates of it."""
        for k in self._keys(data):
            if isinstance(self._dups.get(k), tuple):
                del self._dups[k]

    # ---- cells ---------------------------------------------------------------------------------
    def cell(self, conn, f: Field, raw):
        """A cell as field input: the store's coerce does the checking."""
        t = f.value_type
        if isinstance(raw, float) and raw.is_integer() and t not in ("decimal", "money", "percent"):
            raw = int(raw)
        if isinstance(raw, str) and raw[:1] == "'" and raw[1:2] in NEUTRALISED:
            raw = raw[1:]                  # an exported cell kept from running as a formula
        if t == "date":
            return _date(raw)
        if t == "datetime":
            return _datetime(raw)
        if isinstance(raw, (dt.date, dt.datetime)):
            raw = raw.date().isoformat() if isinstance(raw, dt.datetime) and raw.time() == dt.time(0) \
                else raw.isoformat()
        if t == "select":
            return _option(f, str(raw).strip())
        if t == "multiselect":
            return [_option(f, x) for x in _SPLIT.split(str(raw).strip()) if x]
        if t == "boolean":
            s = str(raw).strip().lower()
            return True if s in YES else False if s in NO else s
        if t == "link":
            return self._link(conn, f, str(raw).strip())
        if t == "user":
            return self._user(conn, str(raw).strip())
        return str(raw)

    def _link(self, conn, f: Field, text: str):
        key = (f.to, text)
        if key in self._links:
            return self._links[key]
        target = self.store.config.entities[f.to]
        t = self.store.table(target)
        cols = _name_columns(target)
        ids = []
        if cols:
            conds = [t.c.deleted_at.is_(None), sa.or_(*[t.c[c] == text for c in cols])]
            scope = self.store.row_scope(target, self.actor, t)
            if scope is not None:
                conds.append(scope)
            ids = [r[0] for r in conn.execute(sa.select(t.c.id).where(*conds).limit(2))]
        if len(ids) > 1:
            raise ValueError(f"{text!r} names more than one {target.label_text(self._lang)}; give its code")
        if ids:
            out = ids[0]
        elif text.isdigit():
            out = int(text)           # an id: the store checks that it exists
        else:
            raise ValueError(f"no {target.label_text(self._lang)} is named {text!r}")
        self._links[key] = out
        return out

    def _user(self, conn, text: str):
        key = ("__user__", text)
        if key in self._links:
            return self._links[key]
        ids = [r[0] for r in conn.execute(sa.select(users.c.id).where(
            users.c.active.is_(True), sa.or_(users.c.username == text, users.c.full_name == text,
                                             users.c.email == text)).limit(2))]
        if len(ids) > 1:
            raise ValueError(f"{text!r} names more than one user; give the user name")
        if not ids and not text.isdigit():
            raise ValueError(f"no active user is named {text!r}")
        self._links[key] = ids[0] if ids else int(text)
        return self._links[key]


def _name_columns(entity: Entity) -> list[str]:
    """The columns a link cell may name its record by: the title's fields, name-like fields and codes."""
    out = []
    for name in re.findall(r"\{(\w+)\}", entity.title or ""):
        out.append(name)
    out += [n for n in ("name", "title", "subject", "code") if n in entity.fields]
    out += [f.id for f in entity.fields.values() if f.type == "autonumber" or (f.unique and f.value_type == "string")]
    return [c for c in dict.fromkeys(out) if c in entity.fields and entity.fields[c].stored
            and not entity.fields[c].encrypted and entity.fields[c].value_type in ("string", "autonumber", "email")]


def _option(f: Field, text: str):
    low = text.casefold()
    for o in f.options:
        if low == o.value.casefold() or any(low == str(v).casefold() for v in (o.label or {}).values()):
            return o.value
    return text


def _date(raw):
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    m = _DATE.match(str(raw))
    if m:
        try:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            raise ValueError(f"{raw!r} is not a date") from None
    raise ValueError(f"{raw!r} is not a date (YYYY-MM-DD or YYYY/MM/DD)")


def _datetime(raw):
    if isinstance(raw, dt.datetime):
        return raw
    if isinstance(raw, dt.date):
        return dt.datetime.combine(raw, dt.time(0))
    m = _DATE.match(str(raw))
    if m:
        try:
            return dt.datetime(*(int(g or 0) for g in m.groups()))
        except ValueError:
            raise ValueError(f"{raw!r} is not a date and time") from None
    return str(raw)


def _problems(line: int, e: Exception) -> list[dict]:
    """A refused line as error rows (one per field); anything but a refusal goes on up."""
    if isinstance(e, ValidationFailed):
        return [{"line": line, "field": k, "message": str(v)} for k, v in (e.fields or {}).items()] \
            or [{"line": line, "field": "_record", "message": e.message}]
    if isinstance(e, EngineError):
        return [{"line": line, "field": "_record", "message": e.message}]
    if isinstance(e, sa.exc.DBAPIError):
        return [{"line": line, "field": "_record", "message": str(getattr(e, "orig", e)).splitlines()[0][:300]}]
    raise e


@contextmanager
def transaction(engine, rollback: bool):
    """One batch: committed whole, or (a dry run) rolled back whole."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn = conn.execution_options(sqlite_immediate=True)
        trans = conn.begin()
        try:
            yield conn
        except BaseException:
            trans.rollback()
            raise
        if rollback:
            trans.rollback()
        else:
            trans.commit()


def column_mapping(entity: Entity, header: list, chosen: dict | None, saved: dict | None) -> tuple[dict, list]:
    """The mapping of a run: `chosen` {column name: field id or ""} over the guess."""
    cols, unknown = guess_mapping(entity, header, saved)
    if not chosen:
        return cols, unknown
    ok = {f.id for f in importable(entity)}
    by_norm = {norm(k): v for k, v in chosen.items()}
    for i, col in enumerate(header):
        key = norm(col)
        if key not in by_norm:
            continue
        fid = (by_norm[key] or "").strip()
        cols.pop(i, None)
        if fid:
            if fid not in ok:
                raise BadRequest(f"column {col!r}: {fid!r} is not a field of {entity.id} that can be imported.")
            if fid in cols.values():
                raise BadRequest(f"column {col!r}: the field {fid!r} is chosen for two columns.")
            cols[i] = fid
    unknown = [c for i, c in enumerate(header) if c.strip() and i not in cols]
    return cols, unknown


def prepare(store, entity_id: str, actor: Actor, data: bytes, filename: str, chosen: dict | None = None,
            max_mb: float = DEFAULT_MAX_MB, need_columns: bool = True) -> tuple[Sheet, dict, list]:
    """(sheet, {column index: field}, unknown columns) of a file, or a BadRequest saying why not."""
    entity = store.entity(entity_id)
    store.check(entity_id, "import", actor)
    sheet = open_sheet(data, filename, max_mb)
    saved = importlog.saved_mapping(store.engine, entity_id, actor.id)
    cols, unknown = column_mapping(entity, sheet.header, chosen, saved)
    if not cols and need_columns:
        raise BadRequest(f"No column of the file names a field of {entity.label_text(actor.language)}: the first row "
                         f"must be a header of field names or labels (it reads: {', '.join(sheet.header)[:200]}).")
    return sheet, cols, unknown


def run_import(store, entity_id: str, actor: Actor, data: bytes, filename: str, key: str | None = None,
               dry_run: bool = False, chosen: dict | None = None, max_mb: float = DEFAULT_MAX_MB,
               on_batch=None, import_id: int | None = None, batch_size: int = BATCH, save_mapping: bool = True,
               path: str | None = None) -> Result:
    """Import a whole file. An unfinished import of the same file (same user, entity and key) is
    resumed after its last committed batch; `import_id` continues a queued job's row."""
    sheet, cols, unknown = prepare(store, entity_id, actor, data, filename, chosen, max_mb)
    engine = store.engine
    sha = hashlib.sha256(data).hexdigest()
    if sheet.total is None:
        sheet.total = count_rows(sheet)
    res = Result(unknown_columns=unknown)
    prior = None
    if import_id is not None:
        prior = importlog.get(engine, import_id)
    elif not dry_run:
        prior = importlog.unfinished(engine, entity_id, actor.id, sha, key)
    if prior is not None:
        res.import_id = prior["id"]
        res.rows_done, res.created, res.updated = prior["rows_done"], prior["created"], prior["updated"]
        res.skipped, res.errors = prior["skipped"], prior["errors"]
        if prior["mapping"]:
            cols = {int(i): f for i, f in prior["mapping"].items()}
        importlog.set_status(engine, prior["id"], "running", total=sheet.total)
    else:
        with transaction(engine, False) as conn:
            res.import_id = importlog.start(conn, entity_id, actor.id, filename, sha, key, cols, dry_run,
                                            path=path, total=sheet.total)
    imp = Importer(store, entity_id, actor, cols, key=key, dry_run=dry_run, batch_size=batch_size)
    if save_mapping and not dry_run:
        importlog.save_mapping(engine, entity_id, actor.id,
                               {norm(c): cols.get(i, "") for i, c in enumerate(sheet.header) if norm(c)})
    try:
        imp.run(sheet.rows(), res, on_batch)
    except BaseException as e:
        importlog.finish(engine, res.import_id, "failed", message=f"{type(e).__name__}: {e}"[:2000])
        raise
    importlog.finish(engine, res.import_id, "done", rows_done=res.rows_done, created=res.created,
                     updated=res.updated, skipped=res.skipped, errors=res.errors)
    return res
