"""User lookups for pages: everyone's display names, and the colleagues a task can go to.

The web layer reads users through these (never the `sys_user` table itself)."""
from __future__ import annotations

import sqlalchemy as sa

from engine.db import reading
from engine.systables import users


def everyone(engine: sa.Engine) -> list[dict]:
    """Every user, active or not ({id, username, full_name, active}), by full name then user name:
    one query, for showing user ids as names."""
    with reading(engine) as conn:
        return [dict(r) for r in conn.execute(
            sa.select(users.c.id, users.c.username, users.c.full_name, users.c.active)
            .order_by(users.c.full_name, users.c.username)).mappings().all()]


def colleagues(engine: sa.Engine, user_id: int | None) -> list[dict]:
    """The active users other than `user_id` ({id, username, full_name}), by user name: whom a
    task or approval may be handed to."""
    with reading(engine) as conn:
        return [dict(r) for r in conn.execute(
            sa.select(users.c.id, users.c.username, users.c.full_name)
            .where(users.c.active.is_(True), users.c.id != user_id).order_by(users.c.username)).mappings()]


def active_user(engine: sa.Engine, user_id: int):
    """The row of an active user (for the session's user), or None."""
    with reading(engine) as conn:
        return conn.execute(sa.select(users).where(users.c.id == user_id, users.c.active.is_(True))).mappings().first()
