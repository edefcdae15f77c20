"""Workflow tasks (the `task` action of a transition) as their assignee closes them."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from engine.db import reading, writing
from engine.wftables import tasks


def mark_done(engine: sa.Engine, task_id: int, user_id: int) -> bool:
    """Close task `task_id` if it is open and assigned to `user_id`; False (nothing changed) if not."""
    with writing(engine) as conn:
        res = conn.execute(tasks.update().where(tasks.c.id == task_id, tasks.c.assignee == user_id,
                                                tasks.c.status == "open")
                           .values(status="done", done_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)))
    return res.rowcount == 1


def open_tasks(engine: sa.Engine, user_id: int, until: dt.date | None = None, limit: int = 50) -> list[dict]:
    """The user's open workflow tasks (due before `until` when given), earliest due first, undated last."""
    q = sa.select(tasks).where(tasks.c.assignee == user_id, tasks.c.status == "open")
    if until is not None:
        q = q.where(tasks.c.due_on < until)
    with reading(engine) as conn:
        return [dict(r) for r in conn.execute(q.order_by(tasks.c.due_on.is_(None), tasks.c.due_on, tasks.c.id)
                                              .limit(limit)).mappings()]


def count_open(engine: sa.Engine, user_id: int) -> int:
    with reading(engine) as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(tasks).where(
            tasks.c.assignee == user_id, tasks.c.status == "open")).scalar_one()
