"""Hand one user's work to another: the records they own and their open workflow tasks.

Records change through the store (`RecordStore.update(..., {"owner": to}, SYSTEM actor,
mode="internal", trusted=True)`), one record at a time, so the store's events fire for each change
(the audit log, automations); tasks are rows of sys_wf_task and move in one statement.
"""
from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from engine.actor import SYSTEM_ACTOR
from engine.db import reading, writing
from engine.errors import EngineError
from engine.wftables import tasks


@dataclasses.dataclass
class Transfer:
    records: dict = dataclasses.field(default_factory=dict)   # entity id -> [record ids]
    tasks: int = 0
    moved: dict = dataclasses.field(default_factory=dict)     # entity id -> count moved
    failed: list = dataclasses.field(default_factory=list)    # (entity, id, message)


def owned(rt, user_id: int) -> dict:
    """{entity id: [ids of the live records `user_id` owns]} for every entity with an owner."""
    out = {}
    with reading(rt.engine) as conn:
        for e in rt.config.top_entities:
            t = rt.store.table(e)
            if "owner" not in t.c:
                continue
            ids = conn.execute(sa.select(t.c.id).where(t.c.owner == user_id, t.c.deleted_at.is_(None))
                               .order_by(t.c.id)).scalars().all()
            if ids:
                out[e.id] = list(ids)
    return out


def open_tasks(rt, user_id: int) -> int:
    with reading(rt.engine) as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(tasks)
                            .where(tasks.c.assignee == user_id, tasks.c.status == "open")).scalar() or 0


def plan(rt, from_id: int) -> Transfer:
    return Transfer(records=owned(rt, from_id), tasks=open_tasks(rt, from_id))


def run(rt, from_id: int, to_id: int, progress=None) -> Transfer:
    """Move every live record `from_id` owns and every open task assigned to it to `to_id`."""
    result = plan(rt, from_id)
    for entity, ids in result.records.items():
        moved = 0
        for rid in ids:
            try:
                rt.store.update(entity, rid, {"owner": to_id}, SYSTEM_ACTOR, mode="internal", trusted=True)
                moved += 1
            except EngineError as e:
                fields = getattr(e, "fields", None)
                detail = "; ".join(f"{k}: {v}" for k, v in fields.items()) if fields else ""
                result.failed.append((entity, rid, e.message + (f" ({detail})" if detail else "")))
        result.moved[entity] = moved
        if progress:
            progress(entity, moved, len(ids))
    with writing(rt.engine) as conn:
        result.tasks = conn.execute(tasks.update().where(tasks.c.assignee == from_id, tasks.c.status == "open")
                                    .values(assignee=to_id)).rowcount
    return result
