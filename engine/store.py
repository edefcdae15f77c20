"""The record store: every read and write of entity records, with the acting user.

One write is one transaction: validation (all field errors at once), defaults, computed fields,
auto-numbers, child rows, link integrity, uniqueness, rules, optimistic locking (a stale
`version` is a Conflict) and the events that audit and jobs subscribe to.
"""
from __future__ import annotations

import datetime as dt
import re
from contextlib import contextmanager
from collections.abc import Mapping
from functools import lru_cache

import sqlalchemy as sa

from . import autonumber, clock, events, rules, search, values
from .actor import Actor
from .db import reading, writing
from .errors import BadRequest, Conflict, EngineError, Forbidden, NotFound, RuleError, ValidationFailed
from .formrules import required_by_form
from .model import Config, Entity, Field, label_of
from .policy import Policy
from .query import COUNT_CAP, ListRequest, order_by, where_clauses
from .systables import users
from .tables import build_metadata
from .validation import check_input

MAX_BULK = 5000      # records one bulk write may carry (POST /<entity>/bulk)

MESSAGES = {
    "required": {"en": "is required", "zh": "必填"},
    "missing_link": {"en": "refers to {entity} #{id}, which does not exist or was deleted",
                     "zh": "引用的{entity} #{id} 不存在或已删除"},
    "missing_user": {"en": "user #{id} does not exist or is inactive", "zh": "用户 #{id} 不存在或已停用"},
    "unique": {"en": "{value!r} is already used by {entity} #{id}", "zh": "{value!r} 已被{entity} #{id} 使用"},
    "unique_batch": {"en": "{value!r} is given to more than one record of this batch",
                     "zh": "{value!r} 在本批中出现多次"},
}


@contextmanager
def db_errors(store, entity: Entity):
    """The database as the last line of defence: a unique or foreign-key violation the checks could
    not see (two writers racing) becomes a 422 naming the field; a serialization failure or deadlock
    a 409 to retry. Never a raw driver error."""
    try:
        yield
    except sa.exc.IntegrityError as e:
        raise _integrity_error(store, entity, e) from None
    except sa.exc.OperationalError as e:
        code = getattr(getattr(e, "orig", None), "sqlstate", None)
        if code in ("40001", "40P01") or "database is locked" in str(e.orig):
            raise Conflict(f"{entity.label_text()}: another change was saved at the same moment; try again.") from None
        raise


def _integrity_error(store, entity, e) -> EngineError:
    text = str(getattr(e, "orig", e))
    code = getattr(getattr(e, "orig", None), "sqlstate", None)
    cols: list[str] = []
    m = re.search(r"Key \(([^)]*)\)=", text)                       # PostgreSQL
    if m:
        cols = [c.strip() for c in m.group(1).split(",")]
    else:                                                          # SQLite: "... failed: e_x.code, e_x.name"
        m = re.search(r"constraint failed: (.+)$", text.splitlines()[0])
        if m:
            cols = [c.strip().split(".")[-1] for c in m.group(1).split(",")]
    fields = [c for c in cols if c in entity.fields] or ["_record"]
    if code == "23503" or "FOREIGN KEY" in text:
        return ValidationFailed({f: "refers to a record that does not exist" for f in fields},
                                "A linked record does not exist (or was removed at the same moment).")
    if code == "23505" or "UNIQUE" in text:
        return ValidationFailed({f: "is already used by another record" for f in fields},
                                "Another record with the same value was saved at the same moment.")
    return ValidationFailed({f: "violates a database constraint" for f in fields},
                            "The change violates a database constraint.")


def now() -> dt.datetime:
    return clock.now()


def msg(key: str, lang: str, **kw) -> str:
    return MESSAGES[key]["zh" if lang.startswith("zh") else "en"].format(**kw)


@lru_cache(maxsize=8192)
def _derefs(expr: str) -> frozenset:
    return frozenset(n.split(".")[0] for n in rules.names_used(expr) if "." in n)


class LazyRecord(Mapping):
    """A linked record (or user) loaded on first access by a rule: `customer.level`."""

    def __init__(self, loader):
        self._loader, self._data = loader, None

    def _load(self):
        if self._data is None:
            self._data = self._loader() or {}
        return self._data

    def __getitem__(self, k):
        return self._load()[k]

    def get(self, k, default=None):
        return self._load().get(k, default)

    def __iter__(self):
        return iter(self._load())

    def __len__(self):
        return len(self._load())


class RecordStore:
    def __init__(self, engine: sa.Engine, config: Config, metadata: sa.MetaData | None = None,
                 attachments=None, policy: Policy | None = None):
        self.engine, self.config = engine, config
        self.metadata = metadata if metadata is not None else build_metadata(config)
        self.attachments = attachments
        self.policy = policy or Policy()
        # named list filters other parts add: {"sla": fn(entity, table, value) -> WHERE clause}
        self.filter_hooks: dict = {}
        self._fts_ready: set = set()            # entities whose SQLite text index exists (engine/search.py)
        self._by_id: dict = {}                  # entity id → SELECT of one row by :rid
        self._insert_returning: dict = {}       # entity id → INSERT … RETURNING every column

    # ---- lookups ------------------------------------------------------------------------
    def entity(self, name: str) -> Entity:
        e = self.config.entities.get(name)
        if e is None or e.child:
            raise NotFound(f"There is no entity {name!r}.")
        return e

    def table(self, entity: Entity | str) -> sa.Table:
        eid = entity if isinstance(entity, str) else entity.id
        return self.metadata.tables[self.config.entities[eid].table_name]

    def title(self, entity: Entity, record: Mapping) -> str:
        if entity.title:
            out = entity.title
            for f in entity.fields:
                if "{" + f + "}" in out:
                    out = out.replace("{" + f + "}", "" if record.get(f) is None else str(record.get(f)))
            if out.strip():
                return out
        for key in ("name", "title", "subject", "code"):
            if record.get(key):
                return str(record[key])
        return f"{entity.label_text()} #{record.get('id')}"

    # ---- reads --------------------------------------------------------------------------
    def _row(self, conn, entity: Entity, rid, include_deleted=False, for_update=False):
        t = self.table(entity)
        try:
            rid = int(rid)
        except (TypeError, ValueError):
            raise NotFound(f"{entity.id} #{rid} does not exist.") from None
        if not 0 < rid <= values.MAX_ID:
            raise NotFound(f"{entity.label_text()} #{rid} does not exist.")
        q = self._by_id.get(entity.id)
        if q is None:                         # built once: the hot path of every read skips building SQL
            q = self._by_id[entity.id] = sa.select(t).where(t.c.id == sa.bindparam("rid"))
        if for_update and conn.dialect.name == "postgresql":
            q = q.with_for_update()
        row = conn.execute(q, {"rid": rid}).mappings().first()
        if row is None or (row.get("deleted_at") is not None and not include_deleted):
            raise NotFound(f"{entity.label_text()} #{rid} does not exist.")
        return dict(row)

    def _children(self, conn, entity: Entity, rid) -> dict:
        out = {}
        for f in entity.table_fields:
            ct = self.table(f.of)
            rows = conn.execute(sa.select(ct).where(ct.c.parent_id == rid).order_by(ct.c.idx, ct.c.id)).mappings()
            out[f.id] = [{k: v for k, v in r.items() if k not in ("parent_id", "idx")} for r in rows]
        return out

    def _read(self, conn, entity: Entity, rid, include_deleted=False, for_update=False) -> dict:
        rec = self._row(conn, entity, rid, include_deleted, for_update)
        rec.update(self._children(conn, entity, rec["id"]))
        return rec

    def fetch(self, conn, entity: Entity, rid, for_update=False, include_deleted=False) -> dict:
        """A record with its child rows inside the caller's transaction, without permission checks
        (for the engine's own work: timers, triggers, transitions, approvals). NotFound when missing,
        or when deleted unless `include_deleted`; `for_update` locks the row on PostgreSQL."""
        return self._read(conn, entity, rid, include_deleted, for_update)

    def check_scope(self, conn, entity: Entity, actor: Actor, rid, action: str = "read") -> None:
        """NotFound unless record `rid` lies inside the actor's row scope for `action` (read, update,
        delete), inside the caller's transaction: for the engine's parts that read a record with
        `fetch` and must refuse one the actor may not see (transitions, the actions on offer)."""
        self._check_scope(conn, entity, actor, rid, action)

    def get(self, entity_id: str, rid, actor: Actor, include_deleted=False) -> dict:
        entity = self.entity(entity_id)
        with reading(self.engine) as conn:
            rec = self._read(conn, entity, rid, include_deleted)
            self._check_scope(conn, entity, actor, rec["id"])
        self.policy.check(entity, "read", actor, rec)
        return self.visible(entity, actor, rec)

    def hidden_fields(self, entity: Entity, actor: Actor) -> frozenset:
        """Fields the actor's roles may not see (H4): absent from every record the store hands out."""
        fn = getattr(self.policy, "hidden_fields", None)
        return fn(entity, actor) if fn else frozenset()

    def visible(self, entity: Entity, actor: Actor, rec: dict) -> dict:
        hidden = self.hidden_fields(entity, actor)
        return {k: v for k, v in rec.items() if k not in hidden} if hidden else rec

    def readonly_fields(self, entity: Entity, actor: Actor) -> frozenset:
        """Fields the actor sees but may not change (H4): forms show them disabled."""
        fn = getattr(self.policy, "readonly_fields", None)
        return fn(entity, actor) if fn else frozenset()

    def actions(self, entity_id: str, actor: Actor) -> frozenset:
        """The actions (read, create, update, delete, export, import, assign, admin) the actor may
        take on the entity, so pages offer only what will be allowed."""
        fn = getattr(self.policy, "actions", None)
        if fn is not None:
            return fn(entity_id, actor)
        out = set()
        for a in ("read", "create", "update", "delete", "export", "import", "assign", "restore"):
            try:
                self.policy.check(self.entity(entity_id), a, actor)
                out.add("admin" if a == "restore" else a)
            except Forbidden:
                pass
        return frozenset(out)

    def visible_count(self, entity_id: str, actor: Actor) -> tuple[int, int]:
        """(records the actor's row scope shows, all live records) of the entity."""
        entity = self.entity(entity_id)
        t = self.table(entity)
        alive = t.c.deleted_at.is_(None)
        clause = self.row_scope(entity, actor, t)
        with reading(self.engine) as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(t).where(alive)).scalar()
            if clause is None:
                return total, total
            return conn.execute(sa.select(sa.func.count()).select_from(t).where(alive, clause)).scalar(), total

    def check(self, entity_id: str, action: str, actor: Actor) -> None:
        """Forbidden unless the actor may take `action` on the entity (export, import, …)."""
        self.policy.check(self.entity(entity_id), action, actor)

    def _check_changes(self, entity, actor, changed, current, given=()) -> None:
        fn = getattr(self.policy, "check_changes", None)
        if fn is not None:
            fn(entity, actor, changed, current, given)

    def _check_write(self, entity, actor, data) -> None:
        fn = getattr(self.policy, "check_write", None)
        if fn is not None and isinstance(data, dict):
            fn(entity, actor, data)

    def _check_scope(self, conn, entity, actor, rid, action: str = "read"):
        t = self.table(entity)
        clause = self.row_scope(entity, actor, t, action)
        if clause is not None and conn.execute(sa.select(t.c.id).where(t.c.id == rid, clause)).first() is None:
            raise NotFound(f"{entity.label_text()} #{rid} does not exist.")

    def row_scope(self, entity, actor, table, action: str = "read"):
        """The policy's row scope for `action` (read, update, delete) as a WHERE clause, or None;
        public for the parts that build their own queries (imports resolving links, counts)."""
        try:
            return self.policy.scope(entity, actor, table, action=action)
        except TypeError:                       # a policy written before scopes knew the action
            return self.policy.scope(entity, actor, table)

    def list(self, entity_id: str, req: ListRequest, actor: Actor) -> dict:
        entity = self.entity(entity_id)
        t = self.table(entity)
        conds, hidden = self.list_conditions(entity, t, req, actor)
        with reading(self.engine) as conn:
            total, exact = self._count(conn, t, conds, req)
            q = (sa.select(t).where(*conds).order_by(*order_by(entity, t, req.sort))
                 .limit(req.per_page).offset((req.page - 1) * req.per_page))
            items = [dict(r) for r in conn.execute(q).mappings()]
        if hidden:
            items = [{k: v for k, v in r.items() if k not in hidden} for r in items]
        return {"items": items, "total": total, "total_exact": exact, "page": req.page, "per_page": req.per_page}

    @staticmethod
    def _count(conn, t, conds, req: ListRequest) -> tuple[int, bool]:
        """(matches, exact). A page never counts a million rows to be drawn: matches are counted up
        to COUNT_CAP (or to the end of the page asked for, if further) unless the request wants the
        exact figure; past the cap the answer is (cap, False), shown as "10,000+"."""
        if req.exact_count:
            return conn.execute(sa.select(sa.func.count()).select_from(t).where(*conds)).scalar_one(), True
        cap = max(COUNT_CAP, req.page * req.per_page)
        sub = sa.select(t.c.id).where(*conds).limit(cap + 1).subquery()
        n = conn.execute(sa.select(sa.func.count()).select_from(sub)).scalar_one()
        return (n, True) if n <= cap else (cap, False)

    def totals(self, entity_id: str, req: ListRequest, actor: Actor, fields) -> dict:
        """{field: sum} over every record `list` would return for `req` (all pages), in one
        aggregate query under the same row scope; fields the actor may not see are left out."""
        entity = self.entity(entity_id)
        t = self.table(entity)
        conds, hidden = self.list_conditions(entity, t, req, actor)
        names = [f for f in fields if f in entity.fields and entity.fields[f].stored and f not in hidden
                 and not entity.fields[f].encrypted]
        if not names:
            return {}
        with reading(self.engine) as conn:
            row = conn.execute(sa.select(*[sa.func.sum(t.c[f]) for f in names]).where(*conds)).first()
        return {f: row[i] for i, f in enumerate(names)}

    def list_conditions(self, entity: Entity, t: sa.Table, req: ListRequest, actor: Actor):
        """(WHERE clauses, hidden fields) of a list request: permission, row scope, filters, search.
        Public: reports, totals and exports aggregate or stream under the list's own WHERE."""
        self.policy.check(entity, "read", actor)
        if req.deleted:                      # the recycle bin is for those who may restore
            self.policy.check(entity, "restore", actor)
        conds = [t.c.deleted_at.is_not(None) if req.deleted else t.c.deleted_at.is_(None)]
        scope = self.row_scope(entity, actor, t)
        if scope is not None:
            conds.append(scope)
        hidden = self.hidden_fields(entity, actor)
        named = {name for name, _op, _raw in req.filters} | {p.strip().lstrip("-+") for p in (req.sort or "").split(",")}
        if hidden & named:
            raise BadRequest(f"cannot filter or sort by {', '.join(sorted(hidden & named))}: not visible to you")
        conds += where_clauses(entity, t, req, actor.id, self.engine.dialect.name,
                               req.q is not None and self._has_fts(entity))
        if req.sla:
            hook = self.filter_hooks.get("sla")
            if hook is None:
                raise BadRequest(f"{entity.label_text()} has no SLA to filter by.")
            conds.append(hook(entity, t, req.sla))
        return conds, hidden

    def _has_fts(self, entity: Entity) -> bool:
        if self.engine.dialect.name != "sqlite":
            return False
        if entity.id not in self._fts_ready:
            with reading(self.engine) as conn:
                if search.fts_ready(conn, entity):
                    self._fts_ready.add(entity.id)
        return entity.id in self._fts_ready

    def titles(self, entity_id: str, ids, actor: Actor | None = None) -> dict:
        """{id: title} for link display, one query. With `actor`, only records in the actor's scope
        (a typed-in id must not reveal a record's name); without, for links of a record already shown."""
        ids = {int(i) for i in ids if i is not None and str(i).strip().isdigit() and int(i) <= values.MAX_ID}
        if not ids:
            return {}
        entity = self.config.entities[entity_id]
        t = self.table(entity)
        conds = [t.c.id.in_(ids)]
        scope = self.row_scope(entity, actor, t) if actor is not None else None
        if scope is not None:
            conds.append(scope)
        with reading(self.engine) as conn:
            rows = conn.execute(sa.select(t).where(*conds)).mappings()
            return {r["id"]: self.title(entity, r) for r in rows}

    # ---- writes -------------------------------------------------------------------------
    def create(self, entity_id: str, data, actor: Actor, mode: str = "json", conn=None, trusted=False) -> dict:
        entity = self.entity(entity_id)
        self._check_write(entity, actor, data)       # a hidden field is named first: the more precise 403
        self.policy.check(entity, "create", actor)
        if conn is not None:
            return self.visible(entity, actor, self._create(conn, entity, data, actor, mode, trusted))
        with db_errors(self, entity), writing(self.engine) as conn:
            return self.visible(entity, actor, self._create(conn, entity, data, actor, mode, trusted))

    def create_in_transaction(self, conn, entity: Entity, data, actor: Actor, mode: str = "internal",
                              trusted: bool = True) -> dict:
        """Create a record inside the caller's transaction, as the engine's own work (a workflow
        action's `create`): validation, defaults, auto-numbers and events as `create`, but without
        the entity-level permission check and the hidden-field filter, which the caller answers for.
        Returns the record as stored, child rows included."""
        return self._create(conn, entity, data, actor, mode, trusted)

    def _create(self, conn, entity, data, actor, mode, trusted):
        vals, children, errors = self._prepare(conn, entity, data, actor, None, mode, trusted)
        if errors:
            raise ValidationFailed(errors)
        if mode != "internal":
            self._check_changes(entity, actor, vals, None, frozenset(data) if isinstance(data, dict) else ())
        [context] = self._complete_new(conn, entity, [vals], [data], actor)
        t = self.table(entity)
        ins = self._insert_returning.get(entity.id)
        if ins is None:
            ins = self._insert_returning[entity.id] = t.insert().returning(*t.c)
        rec = dict(conn.execute(ins, vals).mappings().one())          # the row as stored
        self._write_children(conn, entity, rec["id"], children)
        rec.update(self._children(conn, entity, rec["id"]))
        events.record_created.send(entity.id, conn=conn, store=self, record=rec, before=None, actor=actor,
                                   context=context)
        return rec

    def _complete_new(self, conn, entity, all_vals: list, items: list, actor) -> list[dict]:
        """The last steps of new records' column values, one or a batch: auto-numbers (one block per
        series), the initial state, version and stamps, `record_creating` (which may fill fields)
        and the default owner. Returns each record's event context."""
        for f in entity.user_fields:
            if f.type == "autonumber":
                missing = [vals for vals in all_vals if not vals.get(f.id)]
                if missing:
                    for vals, number in zip(missing, autonumber.next_values(conn, entity.id, f.id, f.format,
                                                                            len(missing))):
                        vals[f.id] = number
            if f.type == "state":
                wf = self.config.workflows.get(f.workflow)
                for vals in all_vals:
                    vals[f.id] = vals.get(f.id) or (wf.initial if wf else None)
        stamp = now()
        contexts = []
        for vals, data in zip(all_vals, items):
            vals.update(version=1, created_at=stamp, created_by=actor.id, updated_at=stamp, updated_by=actor.id)
            contexts.append({})
            events.record_creating.send(entity.id, conn=conn, store=self, values=vals, actor=actor,
                                        context=contexts[-1],
                                        given=frozenset(data) if isinstance(data, dict) else frozenset())
            if vals.get("owner") is None:
                vals["owner"] = actor.id
        return contexts

    def create_many(self, entity_id: str, items: list, actor: Actor, mode: str = "json", conn=None,
                    trusted=False) -> list[int]:
        """Create every item or none (a bulk load): each validated as `create` validates one, with
        link and unique checks in one query per field, auto-numbers reserved as a block, one INSERT
        for all, and the events sent per record. Errors of all items at once, keyed `<index>.<field>`.
        Returns the new ids in the order of `items`."""
        entity = self.entity(entity_id)
        for data in items:
            self._check_write(entity, actor, data)
        self.policy.check(entity, "create", actor)
        if conn is not None:
            return self._create_many(conn, entity, items, actor, mode, trusted)
        with db_errors(self, entity), writing(self.engine) as conn:
            return self._create_many(conn, entity, items, actor, mode, trusted)

    @staticmethod
    def _next_ids(conn, t: sa.Table, n: int) -> list[int]:
        """Ids for `n` new rows, given before the INSERT so the rows go in one executemany (neither
        SQLite's RETURNING nor a huge multi-VALUES text keeps that fast and ordered).
        SQLite: the writer holds the database (BEGIN IMMEDIATE), so the next ids after the largest
        are the ones SQLite would give. PostgreSQL: drawn from the table's sequence."""
        if conn.dialect.name == "sqlite":
            top = conn.execute(sa.select(sa.func.max(t.c.id))).scalar() or 0
            return list(range(top + 1, top + 1 + n))
        return list(conn.execute(sa.text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
                                 {"t": t.name, "n": n}).scalars())

    def write_many(self, entity_id: str, items: list, actor: Actor, mode: str = "json") -> dict:
        """A bulk write in one transaction, all or nothing: an item with an `id` updates that record
        (checked against its `version` when given), the others are created together. Errors of all
        items at once, keyed `<index>.<field>`. Returns {"created": [ids], "updated": [ids]}."""
        entity = self.entity(entity_id)
        new, old = [], []
        for i, data in enumerate(items):
            (old if isinstance(data, dict) and "id" in data else new).append((i, data))
            self._check_write(entity, actor, data)
        if new:
            self.policy.check(entity, "create", actor)
        errors, created, updated = {}, [], []
        with db_errors(self, entity), writing(self.engine) as conn:
            if new:
                try:
                    created = self._create_many(conn, entity, [d for _i, d in new], actor, mode, False)
                except ValidationFailed as e:
                    for key, text in (e.fields or {"_record": e.message}).items():
                        j, _, rest = key.partition(".")
                        if j.isdigit() and int(j) < len(new):
                            errors[f"{new[int(j)][0]}.{rest}"] = text
                        else:                       # raised by an event handler for the batch as a whole
                            errors[key] = text
            for i, data in old:
                data = dict(data)
                rid = data.pop("id")
                if isinstance(rid, bool) or not isinstance(rid, int) or not 0 < rid <= values.MAX_ID:
                    errors[f"{i}.id"] = "must be the id of a record, a whole number"
                    continue
                try:
                    updated.append(self._update(conn, entity, rid, data, actor, mode, False, None)["id"])
                except ValidationFailed as e:
                    errors.update({f"{i}.{k}": v for k, v in e.fields.items()})
                except (NotFound, Conflict) as e:
                    errors[f"{i}.id"] = e.message
            if errors:
                raise _batch_refused(errors, len(items))
        return {"created": created, "updated": updated}

    def _create_many(self, conn, entity, items, actor, mode, trusted) -> list[int]:
        if not items:
            return []
        lang = actor.language
        prepared, batch = [], []
        for data in items:
            prepared.append(self._prepare(conn, entity, data, actor, None, mode, trusted, batch=batch))
            if len(batch) < len(prepared):          # refused before its fields were read (not an object)
                batch.append(({}, {}, prepared[-1][2], {}))
        self._check_links_many(conn, entity, [(m, inc, err) for m, inc, err, _ in batch], lang)
        self._check_unique_many(conn, entity, [(m, inc, None, err) for m, inc, err, _ in batch], lang)
        errors = {}
        for i, (merged, _inc, errs, rows) in enumerate(batch):
            if not errs:
                self._check_rules(conn, entity, merged, rows, actor, errs, None, mode)
            errors.update({f"{i}.{k}": v for k, v in errs.items()})
        if errors:
            raise _batch_refused(errors, len(items))
        all_vals = [vals for vals, _children, _errs in prepared]
        if mode != "internal":
            for vals, data in zip(all_vals, items):
                self._check_changes(entity, actor, vals, None, frozenset(data))
        contexts = self._complete_new(conn, entity, all_vals, items, actor)
        t = self.table(entity)
        columns = {k for vals in all_vals for k in vals}
        rows = [{c: vals.get(c) for c in columns} for vals in all_vals]
        ids = self._next_ids(conn, t, len(rows))
        for rid, row in zip(ids, rows):
            row["id"] = rid
        conn.execute(t.insert(), rows)          # one executemany (pipelined by psycopg)
        records = []
        if entity.table_fields:
            for rid, (_vals, children, _errs) in zip(ids, prepared):
                self._write_children(conn, entity, rid, children)
                records.append(self._read(conn, entity, rid))
        else:
            blank = {c.name: None for c in t.columns}
            records = [{**blank, **row, "id": rid} for rid, row in zip(ids, rows)]
        events.record_created.send_many(entity.id, [{"record": r, "context": c} for r, c in zip(records, contexts)],
                                        conn=conn, store=self, before=None, actor=actor)
        return ids

    def update(self, entity_id: str, rid, data, actor: Actor, mode: str = "json", conn=None,
               trusted=False, version=None) -> dict:
        entity = self.entity(entity_id)
        self._check_write(entity, actor, data)
        if conn is not None:
            return self.visible(entity, actor, self._update(conn, entity, rid, data, actor, mode, trusted, version))
        with db_errors(self, entity), writing(self.engine) as conn:
            rec = self._update(conn, entity, rid, data, actor, mode, trusted, version)
            return self.visible(entity, actor, self._read(conn, entity, rec["id"]))

    def update_in_transaction(self, conn, entity: Entity, rid, data, actor: Actor, mode: str = "internal",
                              trusted: bool = True, version=None, current: dict | None = None) -> dict:
        """Update a record inside the caller's transaction, as the engine's own work (transitions,
        triggers, assignment): `current` is the record as the caller already read (and locked) it.
        With mode "internal" the row scope and field-level checks are left to the caller; the
        policy's update check, optimistic locking (`version`) and events still apply. Returns the
        record as stored, without the hidden-field filter."""
        return self._update(conn, entity, rid, data, actor, mode, trusted, version, current)

    def _update(self, conn, entity, rid, data, actor, mode, trusted, version, current=None):
        """`current`: the record as already read (and locked) in this transaction by the caller."""
        if not isinstance(data, dict):
            raise ValidationFailed({"_body": "expected a JSON object of fields"})
        if current is None:
            current = self._read(conn, entity, rid, for_update=True)
        if mode != "internal":                # the engine's own writes (transitions, triggers) checked their caller
            self._check_scope(conn, entity, actor, current["id"], "update")
        self.policy.check(entity, "update", actor, current)
        version = data.get("version", version)
        if version is not None:
            try:
                version = int(version)
            except (TypeError, ValueError):
                raise ValidationFailed({"version": "must be a whole number"}) from None
            if version != current["version"]:
                raise self._conflict(conn, entity, current)
        vals, children, errors = self._prepare(conn, entity, data, actor, current, mode, trusted)
        if errors:
            raise ValidationFailed(errors)
        changed = {k: v for k, v in vals.items() if current.get(k) != v}
        if not changed and children is None:
            return current
        if mode != "internal":
            self._check_changes(entity, actor, changed, current)
        t = self.table(entity)
        changed.update(version=current["version"] + 1, updated_at=now(), updated_by=actor.id)
        res = conn.execute(t.update().where(t.c.id == current["id"], t.c.version == current["version"])
                           .values(**changed))
        if res.rowcount != 1:
            raise self._conflict(conn, entity, self._read(conn, entity, rid, include_deleted=True))
        if children is not None:
            self._write_children(conn, entity, current["id"], children, replace=True)
        rec = self._read(conn, entity, current["id"])
        events.record_updated.send(entity.id, conn=conn, store=self, record=rec, before=current, actor=actor)
        return rec

    def conflict(self, conn, entity: Entity, current: dict) -> Conflict:
        """The Conflict to raise when `current` (the stored record) has moved past the version a
        caller expected: names who changed it last and when, and carries the record."""
        return self._conflict(conn, entity, current)

    def _conflict(self, conn, entity, current) -> Conflict:
        who = None
        if current.get("updated_by"):
            who = conn.execute(sa.select(users.c.username).where(users.c.id == current["updated_by"])).scalar()
        return Conflict(f"{entity.label_text()} #{current['id']} was changed by {who or 'someone else'} at "
                        f"{current.get('updated_at')} (now version {current['version']}); reload it or overwrite.",
                        current=current)

    def delete(self, entity_id: str, rid, actor: Actor, version=None) -> None:
        entity = self.entity(entity_id)
        with db_errors(self, entity), writing(self.engine) as conn:
            current = self._read(conn, entity, rid)
            self._check_scope(conn, entity, actor, current["id"], "delete")
            self.policy.check(entity, "delete", actor, current)
            if version is not None and int(version) != current["version"]:
                raise self._conflict(conn, entity, current)
            t = self.table(entity)
            res = conn.execute(t.update().where(t.c.id == current["id"], t.c.deleted_at.is_(None),
                                                t.c.version == current["version"])
                               .values(deleted_at=now(), version=current["version"] + 1, updated_by=actor.id))
            if res.rowcount != 1:
                raise self._conflict(conn, entity, current)
            events.record_deleted.send(entity.id, conn=conn, store=self, record=current, before=current, actor=actor)

    def restore(self, entity_id: str, rid, actor: Actor, version=None) -> dict:
        entity = self.entity(entity_id)
        with db_errors(self, entity), writing(self.engine) as conn:
            current = self._read(conn, entity, rid, include_deleted=True)
            self.policy.check(entity, "restore", actor, current)
            self._check_scope(conn, entity, actor, current["id"], "update")
            if version is not None and int(version) != current["version"]:
                raise self._conflict(conn, entity, current)
            if current["deleted_at"] is None:
                return current
            t = self.table(entity)
            conn.execute(t.update().where(t.c.id == current["id"])
                         .values(deleted_at=None, version=current["version"] + 1, updated_by=actor.id, updated_at=now()))
            rec = self._read(conn, entity, current["id"])
            events.record_restored.send(entity.id, conn=conn, store=self, record=rec, before=current, actor=actor)
            return self.visible(entity, actor, rec)

    # ---- validation -----------------------------------------------------------------------
    def _writable(self, f: Field, trusted: bool) -> bool:
        if trusted:
            return not f.system or f.id == "owner"
        return f.writable

    def _prepare(self, conn, entity: Entity, data, actor: Actor, current: dict | None, mode: str, trusted: bool,
                 batch: list | None = None):
        """Coerce, default, compute and check. Returns (column values, child rows or None, errors).
        With `batch` (a bulk write), link, unique and rule checks are left to the caller, which runs
        them for all rows at once: (merged, incoming, errors, child rows by field) is appended to it."""
        lang = actor.language
        if not isinstance(data, dict):
            return {}, None, {"_body": "expected a JSON object of fields"}
        errors = check_input(entity, data, partial=current is not None) if mode == "json" else {}
        if mode != "json":
            for k in data:
                if k not in entity.fields and k != "version":
                    errors.setdefault(k, "unknown field")
        incoming, children = {}, None
        for key, raw in data.items():
            f = entity.fields.get(key)
            if f is None or key in errors or not self._writable(f, trusted):
                continue
            if f.type == "table":
                rows, row_errors = self._prepare_rows(conn, entity, f, raw, actor)
                errors.update(row_errors)
                children = (children or {}) | {f.id: rows}
                continue
            if f.type == "attachment" and isinstance(raw, dict) and "content_base64" in raw:
                if self.attachments is None:
                    errors[key] = "attachments are not configured"
                    continue
                try:
                    raw = self.attachments.put_base64(raw, f.max_size_mb)
                except ValueError as e:
                    errors[key] = str(e)
                    continue
            try:
                incoming[key] = values.coerce(f, raw)
            except ValueError as e:
                errors[key] = str(e)
                continue
            problem = self._missing_file(f, incoming[key], (current or {}).get(key))
            if problem:
                errors[key] = problem
                del incoming[key]
        merged = {f.id: None for f in entity.stored_fields}
        if current:
            merged.update({k: v for k, v in current.items() if k in merged})
        merged.update(incoming)
        names_rows = dict(children or {})
        if current is not None:
            for f in entity.table_fields:
                names_rows.setdefault(f.id, current.get(f.id, []))
        else:
            for f in entity.table_fields:
                names_rows.setdefault(f.id, [])
        if current is None:
            for f in entity.user_fields:
                if f.stored and f.id not in incoming and f.default is not None and not f.computed:
                    try:
                        merged[f.id] = self._default(conn, entity, f, merged, names_rows, actor)
                    except (ValueError, RuleError) as e:
                        errors.setdefault(f.id, f"default: {e}")
            if merged.get("owner") is None:
                merged["owner"] = actor.id
            self._initial_state(conn, entity, merged, names_rows, actor, errors)
        self._compute(conn, entity, merged, names_rows, actor, errors)
        for f in entity.user_fields:
            if not f.stored or f.id in errors:
                continue
            v = merged.get(f.id)
            if f.required and values.empty(v) and not f.computed and f.type not in ("autonumber", "state"):
                if current is None or f.id in incoming or current.get(f.id) is not None:
                    errors[f.id] = msg("required", lang)
                continue
            problem = values.check_limits(f, v) if f.id in incoming or f.computed else None
            if problem:
                errors[f.id] = problem
        if batch is not None:
            batch.append((merged, incoming, errors, names_rows))
        else:
            self._check_links(conn, entity, merged, incoming, errors, lang)
            self._check_unique(conn, entity, merged, incoming, current, errors, lang)
            if not errors:
                self._check_rules(conn, entity, merged, names_rows, actor, errors, current, mode)
        stored = {k: v for k, v in merged.items() if k in incoming or entity.fields[k].computed
                  or (current is None and v is not None)}
        return stored, children, errors

    def _initial_state(self, conn, entity, merged, rows, actor, errors) -> None:
        """A new record starts in its workflow's initial state with that state's `set` values, before
        computed fields are worked out (a weighted amount uses the initial probability)."""
        sf = entity.state_field
        wf = self.config.workflows.get(sf.workflow) if sf is not None else None
        if wf is None:
            return
        if values.empty(merged.get(sf.id)):
            merged[sf.id] = wf.initial
        if merged[sf.id] != wf.initial or wf.initial not in wf.states:
            return
        first = wf.states[wf.initial]
        proposed = {k: v for k, v in first.suggest.items() if values.empty(merged.get(k))}
        for k, expr in {**proposed, **first.set}.items():
            f = entity.fields.get(k)
            try:
                v = rules.evaluate(expr, self._names(conn, entity, merged, rows, expr), actor.id,
                                   rule=f"{wf.id}.states.{wf.initial}.set.{k}", source=wf.file,
                                   record=f"{entity.id} (new)") if isinstance(expr, str) else expr
                merged[k] = values.coerce(f, v) if f is not None and v is not None else v
            except (ValueError, RuleError) as e:
                errors.setdefault(k, f"{wf.initial}.set: {e}")

    def _default(self, conn, entity, f: Field, merged, rows, actor):
        d = f.default
        if isinstance(d, str) and rules.is_call_expression(d):
            d = rules.evaluate(d, self._names(conn, entity, merged, rows, d), actor.id,
                               rule=f"{f.id}.default", source=entity.file)
        return values.coerce(f, d)

    def rule_names(self, conn, entity: Entity, record: dict, *exprs: str | None) -> dict:
        """The names rules see for `record`: its fields, child rows, and the linked records that
        any of `exprs` dereferences (`customer.level`), loaded lazily."""
        rows = {f.id: record.get(f.id, []) for f in entity.table_fields}
        names = {f: record.get(f) for f in entity.fields}
        names.update(rows)
        for expr in exprs:
            if expr and expr.strip():
                names.update({k: v for k, v in self._names(conn, entity, record, rows, expr).items()
                              if isinstance(v, LazyRecord)})
        return names

    def _names(self, conn, entity: Entity, merged: dict, rows: dict, expr: str) -> dict:
        names = {f: merged.get(f) for f in entity.fields}
        names.update(rows)
        for base in _derefs(expr):
            f = entity.fields.get(base)
            if f is None or merged.get(base) is None:
                continue
            names[base] = self._lazy(conn, f, merged[base])
        return names

    def _lazy(self, conn, f: Field, rid):
        if f.value_type == "user":
            def load_user():
                row = conn.execute(sa.select(users.c.id, users.c.username, users.c.full_name, users.c.email,
                                             users.c.manager, users.c.roles, users.c.language)
                                   .where(users.c.id == rid)).mappings().first()
                return dict(row) if row else None
            return LazyRecord(load_user)
        target = self.config.entities[f.to]

        def load_record():
            t = self.table(target)
            row = conn.execute(sa.select(t).where(t.c.id == rid)).mappings().first()
            return dict(row) if row else None
        return LazyRecord(load_record)

    def _compute(self, conn, entity, merged, rows, actor, errors):
        for f in entity.user_fields:
            if not f.computed or not f.stored:
                continue
            try:
                v = rules.evaluate(f.compute, self._names(conn, entity, merged, rows, f.compute), actor.id,
                                   rule=f"{entity.id}.{f.id}.compute", source=entity.file,
                                   record=f"{entity.id} #{merged.get('id') or 'new'}")
                merged[f.id] = values.coerce(f, v) if v is not None else None
            except RuleError as e:
                if _none_involved(f.compute, merged):
                    merged[f.id] = None
                else:
                    errors[f.id] = e.message
            except ValueError as e:
                errors[f.id] = f"computed value: {e}"

    def _missing_file(self, f: Field, value, current) -> str | None:
        """An attachment value must name a file the attachment store holds (unchanged values pass)."""
        if f.value_type != "attachment" or not value or self.attachments is None or value == current:
            return None
        if not self.attachments.path(value["sha256"]).exists():
            return "no uploaded file has this sha256: upload the file first (content_base64)"
        return None

    def _prepare_rows(self, conn, entity, f: Field, raw, actor):
        errors = {}
        if not isinstance(raw, list):
            return [], {f.id: "expected a list of rows"}
        child = self.config.entities[f.of]
        rows = []
        for i, row in enumerate(raw):
            if not isinstance(row, dict):
                errors[f"{f.id}.{i}"] = "expected an object of fields"
                continue
            out = {}
            for key, v in row.items():
                cf = child.fields.get(key)
                if key in ("id", "parent_id", "idx"):
                    continue
                if cf is None:
                    errors[f"{f.id}.{i}.{key}"] = "unknown field"
                    continue
                if cf.computed or cf.readonly:
                    continue
                try:
                    out[key] = values.coerce(cf, v)
                except ValueError as e:
                    errors[f"{f.id}.{i}.{key}"] = str(e)
                    continue
                problem = self._missing_file(cf, out[key], None)
                if problem:
                    errors[f"{f.id}.{i}.{key}"] = problem
            for cf in child.user_fields:
                out.setdefault(cf.id, None)
                if out[cf.id] is None and cf.default is not None and not cf.computed:
                    try:
                        out[cf.id] = self._default(conn, child, cf, out, {}, actor)
                    except (ValueError, RuleError):
                        pass
            row_errors = {}
            self._compute(conn, child, out, {}, actor, row_errors)
            for cf in child.user_fields:
                if cf.required and values.empty(out.get(cf.id)) and not cf.computed:
                    row_errors.setdefault(cf.id, msg("required", actor.language))
                elif (p := values.check_limits(cf, out.get(cf.id))):
                    row_errors.setdefault(cf.id, p)
            link_errors = {}
            self._check_links(conn, child, out, out, link_errors, actor.language)
            row_errors.update(link_errors)
            errors.update({f"{f.id}.{i}.{k}": v for k, v in row_errors.items()})
            rows.append(out)
        return rows, errors

    def _write_children(self, conn, entity, rid, children, replace=False):
        if not children:
            return
        for fid, rows in children.items():
            ct = self.table(entity.fields[fid].of)
            if replace:
                conn.execute(ct.delete().where(ct.c.parent_id == rid))
            if rows:
                conn.execute(ct.insert(), [{**r, "parent_id": rid, "idx": i} for i, r in enumerate(rows)])

    def _check_links(self, conn, entity, merged, incoming, errors, lang):
        self._check_links_many(conn, entity, [(merged, incoming, errors)], lang)

    def _check_links_many(self, conn, entity, rows, lang):
        """Links and users named by `rows` ([(merged, incoming, errors)]) exist and are live: one
        query per field (in chunks) for all rows; an error is added to the row that names a missing one."""
        for f in entity.fields.values():
            if f.value_type not in ("link", "user"):
                continue
            wanted: dict = {}
            for merged, incoming, errors in rows:
                if f.id in incoming and f.id not in errors and merged.get(f.id) is not None:
                    wanted.setdefault(merged[f.id], []).append(errors)
            if not wanted:
                continue
            found = set()
            keys = list(wanted)
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                if f.value_type == "link":
                    t = self.table(self.config.entities[f.to])
                    q = sa.select(t.c.id).where(t.c.id.in_(chunk), t.c.deleted_at.is_(None))
                else:
                    q = sa.select(users.c.id).where(users.c.id.in_(chunk), users.c.active.is_(True))
                found.update(conn.execute(q).scalars())
            for rid, holders in wanted.items():
                if rid in found:
                    continue
                text = (msg("missing_link", lang, entity=self.config.entities[f.to].label_text(lang), id=rid)
                        if f.value_type == "link" else msg("missing_user", lang, id=rid))
                for errors in holders:
                    errors[f.id] = text

    def _check_unique(self, conn, entity, merged, incoming, current, errors, lang):
        self._check_unique_many(conn, entity, [(merged, incoming, current, errors)], lang)

    def _check_unique_many(self, conn, entity, rows, lang):
        """Unique fields of `rows` ([(merged, incoming, current, errors)]) unused by other records and
        not repeated among the rows themselves: one query per field (in chunks) for all rows."""
        t = self.table(entity)
        for f in entity.user_fields:
            if not f.unique:
                continue
            wanted: dict = {}
            for merged, incoming, current, errors in rows:
                if f.id not in errors and merged.get(f.id) is not None and f.id in incoming:
                    wanted.setdefault(merged[f.id], []).append(((current or {}).get("id"), errors))
            if not wanted:
                continue
            taken: dict = {}
            keys = list(wanted)
            for i in range(0, len(keys), 500):
                for v, rid in conn.execute(sa.select(t.c[f.id], t.c.id).where(t.c[f.id].in_(keys[i:i + 500]))):
                    taken.setdefault(v, []).append(rid)
            for v, holders in wanted.items():
                for n, (own, errors) in enumerate(holders):
                    other = next((rid for rid in taken.get(v, ()) if rid != own), None)
                    if other is not None:
                        errors[f.id] = msg("unique", lang, value=v, entity=entity.label_text(lang), id=other)
                    elif n > 0:
                        errors[f.id] = msg("unique_batch", lang, value=v)

    def _check_rules(self, conn, entity, merged, rows, actor, errors, current, mode="internal"):
        record = f"{entity.id} #{current['id']}" if current else f"new {entity.id}"
        if mode != "internal":                   # a form's required_if binds the API too
            for fid in required_by_form(self.config, entity, merged,
                                        lambda expr: self._names(conn, entity, merged, rows, expr), actor.id):
                errors.setdefault(fid, msg("required", actor.language))
        for r in entity.rules:
            try:
                if r.when:
                    names = self._names(conn, entity, merged, rows, r.when)
                    if not rules.evaluate(r.when, names, actor.id, rule=r.name, source=r.source, record=record):
                        continue
                names = self._names(conn, entity, merged, rows, r.check)
                ok = rules.evaluate(r.check, names, actor.id, rule=r.name, source=r.source, record=record)
            except RuleError:
                if _none_involved(r.check, merged) or (r.when and _none_involved(r.when, merged)):
                    continue  # nothing to compare yet: required-ness is checked elsewhere
                raise
            if not ok:
                key = r.field or next((n for n in sorted(rules.names_used(r.check)) if n in entity.fields), "_record")
                errors.setdefault(key, label_of(r.message, actor.language, r.name))


def _batch_refused(errors: dict, n: int) -> ValidationFailed:
    """A bulk write's refusal: every row's errors (`<index>.<field>`), nothing saved."""
    bad = len({k.split(".", 1)[0] for k in errors})
    return ValidationFailed(errors, f"{bad} of {n} records are invalid; nothing was saved.")


def _none_involved(expr: str, merged: dict) -> bool:
    return any(merged.get(n.split(".")[0]) is None for n in rules.names_used(expr))


def check_entity_exists(config: Config, name: str) -> Entity:
    e = config.entities.get(name)
    if e is None or e.child:
        raise NotFound(f"There is no entity {name!r}.")
    return e


__all__ = ["RecordStore", "BadRequest", "ListRequest"]
