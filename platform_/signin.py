"""Sign-in attempts: every try is kept (who, from where, the outcome, when), and too many failures
lock a user name (10 in 15 minutes) or a client address (50 in 15 minutes) for 15 minutes.

The counters live in the database, so every web worker sees the same ones, and time comes from
`engine.clock.now()`, so tests freeze it instead of sleeping. The table joins the engine's SYSTEM
metadata like platform_/saved_views.py, so the migrator creates it with the others.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa

from engine import clock
from engine.db import reading, writing
from engine.systables import SYSTEM, users

from .auditlog import USER_ENTITY

login_attempts = sa.Table(
    "sys_login_attempt", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("address", sa.String(64)),
    sa.Column("success", sa.Boolean(create_constraint=False), nullable=False, default=False),
    # ok | wrong_password | disabled | throttled (refused without looking at the password)
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Index("ix_sys_login_attempt_user_at", "username", "at"),
    sa.Index("ix_sys_login_attempt_address_at", "address", "at"),
)

USER_LIMIT = 10
ADDRESS_LIMIT = 50
WINDOW = dt.timedelta(minutes=15)
LOCKOUT = dt.timedelta(minutes=15)
COUNTED = ("wrong_password", "disabled")     # a throttled try does not extend its own lock


@dataclasses.dataclass(frozen=True)
class Lock:
    """Sign-ins refused until `until` (naive UTC) because of `by` ('user' or 'address')."""
    by: str
    until: dt.datetime

    def seconds_left(self, now: dt.datetime | None = None) -> int:
        left = (self.until - (now or clock.now())).total_seconds()
        return max(1, int(left + 0.999))


def _name(username: str) -> str:
    return (username or "").strip()[:64]


def _lock(conn, column, value, limit: int, now: dt.datetime, since: dt.datetime | None) -> dt.datetime | None:
    """The end of the lock on `column == value`, or None. A lock starts at the failure that makes
    `limit` counted failures within WINDOW and lasts LOCKOUT from then."""
    t = login_attempts
    start = now - WINDOW - LOCKOUT
    if since is not None and since > start:
        start = since
    rows = conn.execute(sa.select(t.c.at).where(column == value, t.c.outcome.in_(COUNTED), t.c.at > start,
                                                t.c.at <= now)
                        .order_by(t.c.at.desc()).limit(limit)).scalars().all()
    if len(rows) < limit:
        return None
    newest, oldest = rows[0], rows[-1]
    if newest - oldest > WINDOW:
        return None
    until = newest + LOCKOUT
    return until if until > now else None


def lock_for(engine, username: str, address: str | None) -> Lock | None:
    """Is a sign-in for this name from this address refused right now?"""
    now = clock.now()
    name = _name(username)
    t = login_attempts
    with reading(engine) as conn:
        if name:
            last_ok = conn.execute(sa.select(sa.func.max(t.c.at)).where(t.c.username == name,
                                                                         t.c.success.is_(True))).scalar()
            until = _lock(conn, t.c.username, name, USER_LIMIT, now, last_ok)
            if until is not None:
                return Lock("user", until)
        if address:
            until = _lock(conn, t.c.address, address, ADDRESS_LIMIT, now, None)
            if until is not None:
                return Lock("address", until)
    return None


def record(engine, username: str, address: str | None, outcome: str, lock_by: str | None = None) -> None:
    """Keep one attempt. A success ends the user name's count (it reads failures after it).

    The audit log gets the attempt in the same transaction: `signin`, or `signin_failed` with the
    reason (an unknown name is kept as typed, and the password never is)."""
    with writing(engine) as conn:
        conn.execute(login_attempts.insert().values(username=_name(username), address=(address or "")[:64] or None,
                                                    success=outcome == "ok", outcome=outcome, at=clock.now()))
        _audit(conn, username, address, outcome, lock_by)


def _audit(conn, username: str, address: str | None, outcome: str, lock_by: str | None) -> None:
    from engine import audit
    name = _name(username)
    uid = conn.execute(sa.select(users.c.id).where(users.c.username == name)).scalar() if name else None
    if outcome == "ok":
        action, reason = "signin", None
    elif outcome == "throttled":
        action, reason = "signin_failed", "locked_out" + (f"_by_{lock_by}" if lock_by else "")
    elif uid is None:
        action, reason = "signin_failed", "unknown_user"
    else:
        action, reason = "signin_failed", outcome
    audit.append(conn, action, user_id=uid, username=name or None, entity=USER_ENTITY if uid else None,
                 record_id=uid, detail=detail_text(address, reason))


def detail_text(address: str | None, reason: str | None = None) -> str:
    """'address=10.0.0.1; reason=wrong_password' — the audit page shows it in the reader's language."""
    parts = [f"address={(address or '-')[:64]}"]
    if reason:
        parts.append(f"reason={reason}")
    return "; ".join(parts)


def signed_out(engine, actor, address: str | None) -> None:
    """A `signout` entry for the user signing out of the web UI."""
    from engine import audit
    with writing(engine) as conn:
        audit.append(conn, "signout", user_id=actor.id, username=actor.username, entity=USER_ENTITY,
                     record_id=actor.id, detail=detail_text(address))


def recent(engine, username: str | None = None, limit: int = 50) -> list[dict]:
    """The newest attempts (for an administrator or the audit log)."""
    t = login_attempts
    q = sa.select(t).order_by(t.c.at.desc(), t.c.id.desc()).limit(limit)
    if username:
        q = q.where(t.c.username == _name(username))
    with reading(engine) as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def prune(engine, older_than: dt.timedelta = dt.timedelta(days=90)) -> int:
    """Forget attempts older than `older_than`; the number removed."""
    with writing(engine) as conn:
        return conn.execute(login_attempts.delete().where(login_attempts.c.at < clock.now() - older_than)).rowcount
