"""In-app notifications of one user: list (newest first, paged), unread count, mark read."""
from __future__ import annotations

import sqlalchemy as sa

from .. import clock
from ..db import reading, writing
from ..wftables import notifications as table


def listing(engine, user_id: int, unread_only: bool = False, page: int = 1, per_page: int = 50) -> dict:
    conds = [table.c.user_id == user_id]
    if unread_only:
        conds.append(table.c.read_at.is_(None))
    with reading(engine) as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(table).where(*conds)).scalar_one()
        rows = conn.execute(sa.select(table).where(*conds).order_by(table.c.created_at.desc(), table.c.id.desc())
                            .limit(per_page).offset((page - 1) * per_page)).mappings().all()
    items = [{"id": r["id"], "text": r["message"], "read": r["read_at"] is not None, "created_at": r["created_at"],
              "record": {"entity": r["entity"], "id": r["record_id"]} if r["entity"] else None} for r in rows]
    return {"items": items, "total": total, "page": page, "per_page": per_page}


def unread_count(engine, user_id: int) -> int:
    with reading(engine) as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(
            table.c.user_id == user_id, table.c.read_at.is_(None))).scalar_one()


def mark_read(engine, user_id: int, ids=None) -> int:
    """Mark the user's notifications read: the given ids, or all. Returns how many changed."""
    conds = [table.c.user_id == user_id, table.c.read_at.is_(None)]
    if ids is not None:
        conds.append(table.c.id.in_([int(i) for i in ids]))
    with writing(engine) as conn:
        return conn.execute(table.update().where(*conds).values(read_at=clock.now())).rowcount
