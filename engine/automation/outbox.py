"""The transactional outbox: e-mails and webhook calls written in the transaction that caused them.

A rolled-back change leaves no row, so it notifies no one; a committed one leaves a row that a
dispatcher sends after the commit, however long the process that wrote it lives. Sending is
claim → send → mark: a row is claimed (`sending`) by one dispatcher only, a failure is retried
with exponential backoff and, after `MAX_ATTEMPTS`, kept as `dead` with its error for an admin to
read and re-run. A dispatcher killed mid-send leaves a claim that expires after `LEASE`, and the
row is sent again (at least once; receivers get the row id to drop a repeat).
"""
from __future__ import annotations

import contextvars
import datetime as dt

import sqlalchemy as sa

from .. import clock
from ..db import reading, writing
from .tables import outbox

MAX_ATTEMPTS = 6
LEASE = dt.timedelta(minutes=5)
_dirty: contextvars.ContextVar[bool] = contextvars.ContextVar("crm_outbox_dirty", default=False)


def enqueue(conn, kind: str, payload: dict, entity: str | None = None, record_id: int | None = None,
            webhook_id: int | None = None) -> int:
    """Write one side effect inside the caller's transaction."""
    now = clock.now()
    rid = conn.execute(outbox.insert().values(kind=kind, payload=payload, entity=entity, record_id=record_id,
                                              webhook_id=webhook_id,
                                              status="pending", attempts=0, next_at=now, created_at=now)
                       ).inserted_primary_key[0]
    _dirty.set(True)
    return rid


def take_dirty() -> bool:
    """True once if this context wrote outbox rows since the last call (the caller kicks a dispatcher)."""
    was = _dirty.get()
    if was:
        _dirty.set(False)
    return was


def backoff(attempts: int) -> dt.timedelta:
    """10 s, 20 s, 40 s … capped at one hour."""
    return dt.timedelta(seconds=min(3600, 10 * 2 ** max(0, attempts - 1)))


def claim(engine, limit: int = 50) -> list[dict]:
    """Rows due now, marked `sending` by this caller (a conditional update per row: one winner)."""
    now = clock.now()
    with writing(engine) as conn:
        rows = conn.execute(sa.select(outbox).where(
            sa.or_(sa.and_(outbox.c.status == "pending", outbox.c.next_at <= now),
                   sa.and_(outbox.c.status == "sending", outbox.c.claimed_at < now - LEASE)))
            .order_by(outbox.c.id).limit(limit * 5)).mappings().all()
    won = []
    for r in rows:
        if len(won) >= limit:
            break
        with writing(engine) as conn:
            res = conn.execute(outbox.update().where(outbox.c.id == r["id"], outbox.c.status == r["status"],
                                                     outbox.c.attempts == r["attempts"])
                               .values(status="sending", claimed_at=now, attempts=r["attempts"] + 1))
        if res.rowcount == 1:
            won.append({**r, "attempts": r["attempts"] + 1, "status": "sending", "claimed_at": now})
    return won


def _mine(row: dict):
    """The row is still ours: claimed by us, not reclaimed by another dispatcher after our lease."""
    return sa.and_(outbox.c.id == row["id"], outbox.c.status == "sending", outbox.c.claimed_at == row["claimed_at"],
                   outbox.c.attempts == row["attempts"])


def sent(engine, row: dict) -> None:
    with writing(engine) as conn:
        conn.execute(outbox.update().where(_mine(row)).values(status="sent", sent_at=clock.now(), last_error=None))


def failed(engine, row: dict, error: str) -> str:
    """Schedule a retry, or give up after MAX_ATTEMPTS. Returns the new status."""
    status = "dead" if row["attempts"] >= MAX_ATTEMPTS else "pending"
    with writing(engine) as conn:
        conn.execute(outbox.update().where(_mine(row)).values(
            status=status, last_error=error[:2000], next_at=clock.now() + backoff(row["attempts"])))
    return status


def retry(engine, row_id: int) -> bool:
    """An admin re-runs a dead (or waiting) row now."""
    with writing(engine) as conn:
        res = conn.execute(outbox.update().where(outbox.c.id == row_id, outbox.c.status.in_(("dead", "pending")))
                           .values(status="pending", next_at=clock.now(), attempts=0, last_error=None))
    return res.rowcount == 1


def problems(engine, limit: int = 100) -> list[dict]:
    """Dead rows and rows still retrying after a failure, newest first."""
    with reading(engine) as conn:
        return [dict(r) for r in conn.execute(sa.select(outbox).where(
            sa.or_(outbox.c.status == "dead", sa.and_(outbox.c.status == "pending", outbox.c.last_error.is_not(None))))
            .order_by(outbox.c.id.desc()).limit(limit)).mappings()]


def for_record(engine, entity: str, record_id: int) -> list[dict]:
    with reading(engine) as conn:
        return [dict(r) for r in conn.execute(sa.select(outbox).where(
            outbox.c.entity == entity, outbox.c.record_id == record_id).order_by(outbox.c.id)).mappings()]


def for_webhook(engine, webhook_id: int, limit: int = 100) -> list[dict]:
    """The delivery log of one subscription, newest first."""
    with reading(engine) as conn:
        rows = conn.execute(sa.select(outbox).where(outbox.c.webhook_id == webhook_id)
                            .order_by(outbox.c.id.desc()).limit(limit)).mappings().all()
    return [{"id": r["id"], "event": (r["payload"].get("body") or {}).get("event"), "entity": r["entity"],
             "record_id": r["record_id"], "status": r["status"], "attempts": r["attempts"],
             "error": r["last_error"], "created_at": r["created_at"], "sent_at": r["sent_at"],
             "next_at": r["next_at"]} for r in rows]


def get(engine, row_id: int) -> dict | None:
    with reading(engine) as conn:
        row = conn.execute(sa.select(outbox).where(outbox.c.id == row_id)).mappings().first()
    return dict(row) if row else None


def cancel_for_webhook(conn, webhook_id: int) -> int:
    """A removed subscription sends nothing more: its waiting deliveries are cancelled."""
    return conn.execute(outbox.update().where(outbox.c.webhook_id == webhook_id,
                                              outbox.c.status.in_(("pending", "sending", "dead")))
                        .values(status="cancelled", last_error="the webhook was removed")).rowcount
