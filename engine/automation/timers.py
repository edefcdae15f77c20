"""Durable timers: rows with a due instant, fired by a sweeper at least once, with their effect once.

`fire_due(now)` takes every running timer due at `now`. Each is fired in its own transaction that
first flips it `running → fired` with a conditional UPDATE: of two sweepers (two workers, a
thread and a CLI run, a re-run after a crash) exactly one wins, and the effect (a notification, an
SLA breach, an outbox row) commits or rolls back with that flip. A timer whose effect fails is
retried with backoff and, after MAX_ATTEMPTS, kept `failed` with the error for an admin.
A timer found long past its due instant (the server was down) fires once and is reported late.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import sqlalchemy as sa

from .. import clock
from ..db import reading, writing
from ..wftables import timers

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
LATE = dt.timedelta(minutes=5)


@dataclass
class SweepResult:
    fired: int = 0
    late: list = field(default_factory=list)      # (timer id, name, due_at) fired long after due (first 100)
    failed: list = field(default_factory=list)    # (timer id, name, error) (first 100)
    late_count: int = 0
    failed_count: int = 0


def schedule(conn, entity: str, record_id: int, name: str, kind: str, due_at: dt.datetime,
             payload: dict | None = None) -> None:
    """Make `name` the one running timer of this record, due at `due_at` (moved if it exists)."""
    due_at = clock.to_utc_naive(due_at)
    running = conn.execute(sa.select(timers.c.id, timers.c.due_at).where(
        timers.c.entity == entity, timers.c.record_id == record_id, timers.c.name == name,
        timers.c.status == "running")).all()
    if running:
        keep, *extra = running
        if keep.due_at != due_at:
            conn.execute(timers.update().where(timers.c.id == keep.id).values(due_at=due_at, payload=payload))
        if extra:
            conn.execute(timers.update().where(timers.c.id.in_([r.id for r in extra])).values(status="stopped"))
        return
    conn.execute(timers.insert().values(entity=entity, record_id=record_id, name=name, kind=kind, due_at=due_at,
                                        payload=payload, calendar="calendar", status="running", attempts=0,
                                        created_at=clock.now()))


def cancel(conn, entity: str, record_id: int, name: str) -> None:
    conn.execute(timers.update().where(timers.c.entity == entity, timers.c.record_id == record_id,
                                       timers.c.name == name, timers.c.status == "running").values(status="stopped"))


def running(conn, entity: str, record_id: int) -> list[dict]:
    return [dict(r) for r in conn.execute(sa.select(timers).where(
        timers.c.entity == entity, timers.c.record_id == record_id, timers.c.status == "running")
        .order_by(timers.c.due_at)).mappings()]


def fire_due(engine, handlers: dict, now: dt.datetime | None = None, batch: int = 1000,
             per_transaction: int = 20, lock=None) -> SweepResult:
    """Fire everything due at `now`. handlers: kind -> fn(conn, timer_row, now). Timers are fired
    `per_transaction` to a transaction, each inside its own savepoint: a failing effect rolls back
    alone (and is retried later) while the commit cost is shared."""
    now = clock.to_utc_naive(now) if now else clock.now()
    result = SweepResult()
    after = 0
    while True:
        with reading(engine) as conn:
            due = conn.execute(sa.select(timers).where(timers.c.status == "running", timers.c.due_at <= now,
                                                       timers.c.id > after)
                               .order_by(timers.c.id).limit(batch)).mappings().all()
        for i in range(0, len(due), per_transaction):
            _fire_chunk(engine, handlers, [dict(r) for r in due[i:i + per_transaction]], now, result, lock)
        if len(due) < batch:
            return result
        after = due[-1]["id"]


def _fire_chunk(engine, handlers, rows, now, result, lock=None) -> None:
    """`lock(conn, row)` takes the timer's record lock first, so a sweep and a user's change of the
    record lock in the same order (record, then its timers) and cannot deadlock."""
    failures, fired = [], []
    try:
        with clock.frozen(now), writing(engine) as conn:
            for row in rows:
                sp = conn.begin_nested()
                try:
                    if lock is not None:
                        lock(conn, row)
                    res = conn.execute(timers.update().where(
                        timers.c.id == row["id"], timers.c.status == "running", timers.c.due_at <= now)
                        .values(status="fired", fired_at=now, attempts=row["attempts"] + 1))
                    if res.rowcount != 1:
                        sp.rollback()                 # another sweeper took it, or it was moved later
                        continue
                    fresh = dict(conn.execute(sa.select(timers).where(timers.c.id == row["id"])).mappings().one())
                    handler = handlers.get(fresh["kind"] or "workflow")
                    if handler is not None:
                        handler(conn, fresh, now)     # the payload as it is now, not as first read
                    sp.commit()
                    fired.append(row)
                except Exception as e:  # noqa: BLE001 - a timer's failure must not stop the others
                    if sp.is_active:
                        sp.rollback()
                    failures.append((row, e))
    except Exception:  # noqa: BLE001 - the transaction failed: nothing of this chunk happened, all stay due
        log.exception("a chunk of %d timers could not be committed; they stay due for the next sweep", len(rows))
        return
    for row, e in failures:
        log.error("timer %s (%s) failed: %s", row["id"], row["name"], e)
        _failed(engine, row, now, f"{type(e).__name__}: {e}")
        result.failed_count += 1
        if len(result.failed) < 100:
            result.failed.append((row["id"], row["name"], str(e)))
    for row in fired:
        result.fired += 1
        if now - row["due_at"] > LATE:
            result.late_count += 1
            if len(result.late) < 100:
                result.late.append((row["id"], row["name"], row["due_at"]))
            log.warning("timer %s (%s) was due at %s and fires late, once, at %s", row["id"], row["name"],
                        row["due_at"], now)


def _failed(engine, row, now, error):
    attempts = row["attempts"] + 1
    status = "failed" if attempts >= MAX_ATTEMPTS else "running"
    with writing(engine) as conn:                      # only a timer still waiting (its flip was rolled back)
        conn.execute(timers.update().where(timers.c.id == row["id"], timers.c.status == "running").values(
            status=status, attempts=attempts, last_error=error[:2000],
            due_at=now + dt.timedelta(seconds=min(3600, 30 * 2 ** (attempts - 1)))))


def problems(engine, limit: int = 100) -> list[dict]:
    with reading(engine) as conn:
        return [dict(r) for r in conn.execute(sa.select(timers).where(
            sa.or_(timers.c.status == "failed", sa.and_(timers.c.status == "running", timers.c.last_error.is_not(None))))
            .order_by(timers.c.id.desc()).limit(limit)).mappings()]


def retry(engine, timer_id: int) -> bool:
    with writing(engine) as conn:
        res = conn.execute(timers.update().where(timers.c.id == timer_id, timers.c.status.in_(("failed", "running")))
                           .values(status="running", due_at=clock.now(), attempts=0, last_error=None))
    return res.rowcount == 1


def get(engine, timer_id: int) -> dict | None:
    with reading(engine) as conn:
        row = conn.execute(sa.select(timers).where(timers.c.id == timer_id)).mappings().first()
    return dict(row) if row else None
