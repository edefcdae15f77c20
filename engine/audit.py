"""The audit trail (H6): who changed what, when, from what to what — in a log that proves it was
not altered.

Every create, update (field by field, before and after), delete, restore and transition of a
record is appended to `sys_audit` in the transaction of the change itself. Each entry carries the
hash of the one before it (a chain), and a head row keeps the count and the last hash, so
`verify()` finds any entry altered, removed (the newest included) or inserted out of order.
Appends are serialised by locking the head row, so the chain stays linear under concurrent writers.
"""
from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa

from . import clock, events, values
from .db import reading
from .systables import SYSTEM, users

GENESIS = "0" * 64
SKIP = frozenset({"version", "updated_at", "updated_by", "created_at", "created_by"})

audit_log = sa.Table(
    "sys_audit", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("user_id", sa.Integer),
    sa.Column("username", sa.String(64)),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("entity", sa.String(64)),
    sa.Column("record_id", sa.Integer),
    sa.Column("changes", sa.JSON),
    sa.Column("detail", sa.Text),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_sys_audit_record", "entity", "record_id"),
    sa.Index("ix_sys_audit_user", "user_id", "at"),
)

audit_head = sa.Table(
    "sys_audit_head", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("entries", sa.Integer, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
)


_HEAD = sa.select(audit_head.c.entries, audit_head.c.last_hash).where(audit_head.c.id == 1)
_HEAD_FOR_UPDATE = _HEAD.with_for_update()
_HEAD_MOVE = audit_head.update().where(audit_head.c.id == 1).values(entries=sa.bindparam("n"), last_hash=sa.bindparam("h"))


def _digest(prev: str, at, user_id, username, action, entity, record_id, changes, detail) -> str:
    body = json.dumps([prev, at.isoformat() if at else None, user_id, username, action, entity, record_id,
                       changes, detail], sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def _insert(conn):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


MASK = "***"


def _secret(f) -> bool:
    """Fields whose values the log never holds: encrypted ones and those marked `sensitive`."""
    return f.encrypted or f.sensitive


def append(conn, action: str, *, user_id=None, username=None, entity=None, record_id=None, changes=None,
           detail=None) -> str:
    """Add one entry inside the caller's transaction; returns its hash."""
    return append_many(conn, [dict(action=action, user_id=user_id, username=username, entity=entity,
                                   record_id=record_id, changes=changes, detail=detail)])


def append_many(conn, items: list[dict]) -> str:
    """Add entries (dicts of `append`'s arguments) in order, under one lock of the chain head and
    with one INSERT; returns the last hash."""
    q = _HEAD_FOR_UPDATE if conn.dialect.name == "postgresql" else _HEAD
    head = conn.execute(q).first()
    if head is None:                          # the very first entry: create the head (once, whoever wins)
        conn.execute(_insert(conn)(audit_head).values(id=1, entries=0, last_hash=GENESIS).on_conflict_do_nothing())
        head = conn.execute(q).one()
    entries, prev = head
    if not items:
        return prev
    at = clock.now()
    rows = []
    for it in items:
        changes = values_json(it["changes"]) if it.get("changes") is not None else None
        row = dict(at=at, user_id=it.get("user_id"), username=it.get("username"), action=it["action"],
                   entity=it.get("entity"), record_id=it.get("record_id"), changes=changes, detail=it.get("detail"))
        digest = _digest(prev, at, row["user_id"], row["username"], row["action"], row["entity"], row["record_id"],
                         changes, row["detail"])
        rows.append({**row, "prev_hash": prev, "hash": digest})
        prev = digest
    conn.execute(audit_log.insert(), rows)
    conn.execute(_HEAD_MOVE, {"n": entries + len(rows), "h": prev})
    return prev


def values_json(changes: dict) -> dict:
    return {k: [values.to_json(None, a), values.to_json(None, b)] for k, (a, b) in changes.items()}


def verify(engine, batch: int = 5000) -> tuple[bool, str, int]:
    """(intact, message, entries checked). Walks the chain from the start."""
    prev, n, last_id = GENESIS, 0, 0
    with reading(engine) as conn:
        head = conn.execute(sa.select(audit_head.c.entries, audit_head.c.last_hash).where(audit_head.c.id == 1)).first()
        while True:
            rows = conn.execute(sa.select(audit_log).where(audit_log.c.id > last_id).order_by(audit_log.c.id)
                                .limit(batch)).mappings().all()
            for r in rows:
                if r["prev_hash"] != prev:
                    return False, (f"entry #{r['id']} ({r['action']} at {r['at']}) does not follow the entry before "
                                   f"it: an entry was removed or inserted"), n
                want = _digest(prev, r["at"], r["user_id"], r["username"], r["action"], r["entity"], r["record_id"],
                               r["changes"], r["detail"])
                if want != r["hash"]:
                    return False, f"entry #{r['id']} ({r['action']} at {r['at']}) was altered", n
                prev, n, last_id = r["hash"], n + 1, r["id"]
            if len(rows) < batch:
                break
    if head is None:
        return (n == 0), ("the audit log is empty" if n == 0 else "the audit head is missing"), n
    if head.entries != n or head.last_hash != prev:
        return False, (f"the log ends after {n} entries but {head.entries} were written: the newest entries were "
                       f"removed"), n
    return True, f"the audit log is intact: {n} entries", n


def _conditions(entity=None, record_id=None, user_id=None, action=None, since=None, until=None) -> list:
    """WHERE clauses of a search of the log; `since` / `until` are naive UTC instants, `until` exclusive."""
    conds = []
    if entity:
        conds.append(audit_log.c.entity == entity)
    if record_id is not None:
        conds.append(audit_log.c.record_id == record_id)
    if user_id is not None:
        conds.append(audit_log.c.user_id == user_id)
    if action:
        conds.append(audit_log.c.action == action)
    if since is not None:
        conds.append(audit_log.c.at >= since)
    if until is not None:
        conds.append(audit_log.c.at < until)
    return conds


def _item(r) -> dict:
    return {"id": r["id"], "at": r["at"], "user": r["username"], "user_id": r["user_id"], "action": r["action"],
            "entity": r["entity"], "record": r["record_id"], "changes": r["changes"] or {}, "detail": r["detail"]}


def entries(engine, entity=None, record_id=None, user_id=None, action=None, page=1, per_page=100, since=None,
            until=None) -> dict:
    """One page of the log, newest first, with the total that matches."""
    conds = _conditions(entity, record_id, user_id, action, since, until)
    with reading(engine) as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(audit_log).where(*conds)).scalar_one()
        rows = conn.execute(sa.select(audit_log).where(*conds).order_by(audit_log.c.id.desc())
                            .limit(per_page).offset((page - 1) * per_page)).mappings().all()
    return {"items": [_item(r) for r in rows], "total": total, "page": page, "per_page": per_page}


def each_entry(engine, limit: int, batch: int = 1000, **filters):
    """Every matching entry, newest first, at most `limit` (an export), read in batches by id."""
    conds = _conditions(**filters)
    last, n = None, 0
    while n < limit:
        q = sa.select(audit_log).where(*conds)
        if last is not None:
            q = q.where(audit_log.c.id < last)
        with reading(engine) as conn:
            rows = conn.execute(q.order_by(audit_log.c.id.desc()).limit(min(batch, limit - n))).mappings().all()
        for r in rows:
            yield _item(r)
        n += len(rows)
        if len(rows) < batch:
            return
        last = rows[-1]["id"]


class AuditTrail:
    """Subscribes to one store's events and appends each change to the log, in its transaction."""

    def __init__(self, store):
        self.store = store
        self._receivers = [(events.record_created, self._created), (events.record_updated, self._updated),
                           (events.record_deleted, self._deleted), (events.record_restored, self._restored),
                           (events.record_transitioned, self._transitioned)]
        for signal, fn in self._receivers:
            signal.connect(fn, priority=90, batch=self._created_many if fn == self._created else None)

    def close(self) -> None:
        for signal, fn in self._receivers:
            signal.disconnect(fn)

    def _who(self, conn, actor):
        if actor is None or actor.id is None:
            return None, (actor.username if actor is not None else "system")
        return actor.id, actor.username or conn.execute(sa.select(users.c.username).where(users.c.id == actor.id)).scalar()

    def _entity(self, sender):
        return self.store.config.entities[sender]

    def _fields(self, entity, record: dict, mask: bool = True) -> dict:
        out = {}
        for f in entity.fields.values():
            if f.id in SKIP or f.id == "id" or not f.stored or f.type == "table":
                continue
            if record.get(f.id) is not None:
                out[f.id] = MASK if mask and _secret(f) else record.get(f.id)
        return out

    def _created(self, sender, conn, store, record, actor, **_):
        if store is not self.store:
            return
        entity = self._entity(sender)
        uid, name = self._who(conn, actor)
        append(conn, "create", user_id=uid, username=name, entity=entity.id, record_id=record["id"],
               changes={k: (None, v) for k, v in self._fields(entity, record).items()})

    def _created_many(self, sender, items, conn, store, actor, **_):
        """A bulk create: one entry per record, appended as one batch."""
        if store is not self.store:
            return
        entity = self._entity(sender)
        uid, name = self._who(conn, actor)
        append_many(conn, [dict(action="create", user_id=uid, username=name, entity=entity.id,
                                record_id=it["record"]["id"],
                                changes={k: (None, v) for k, v in self._fields(entity, it["record"]).items()})
                           for it in items])

    def _updated(self, sender, conn, store, record, before, actor, **_):
        if store is not self.store:
            return
        entity = self._entity(sender)
        after, was = self._fields(entity, record, mask=False), self._fields(entity, before or {}, mask=False)
        changes = {k: (was.get(k), after.get(k)) for k in set(after) | set(was) if was.get(k) != after.get(k)}
        for k, (a, b) in changes.items():           # that a secret changed is logged, never its values
            if _secret(entity.fields[k]):
                changes[k] = (None if a is None else MASK, None if b is None else MASK)
        for f in entity.table_fields:                # child rows: summarised
            if (before or {}).get(f.id) != record.get(f.id):
                changes[f.id] = (len((before or {}).get(f.id) or []), len(record.get(f.id) or []))
        if not changes:
            return
        uid, name = self._who(conn, actor)
        append(conn, "update", user_id=uid, username=name, entity=entity.id, record_id=record["id"], changes=changes)

    def _deleted(self, sender, conn, store, record, actor, **_):
        if store is not self.store:
            return
        uid, name = self._who(conn, actor)
        append(conn, "delete", user_id=uid, username=name, entity=sender, record_id=record["id"])

    def _restored(self, sender, conn, store, record, actor, **_):
        if store is not self.store:
            return
        uid, name = self._who(conn, actor)
        append(conn, "restore", user_id=uid, username=name, entity=sender, record_id=record["id"])

    def _transitioned(self, sender, conn, store, record, actor, transition=None, from_state=None, to_state=None, **_):
        if store is not self.store:
            return
        uid, name = self._who(conn, actor)
        append(conn, "transition", user_id=uid, username=name, entity=sender, record_id=record["id"],
               detail=f"{transition or '-'}: {from_state} → {to_state}")
