"""Which records reference a stored file: the candidates `/files/<sha>` checks, read-permission
being left to the caller (it reads each candidate through the store)."""
from __future__ import annotations

import sqlalchemy as sa

from engine.db import reading
from engine.model import Entity


def holders(store, entity: Entity, field_id: str, sha: str, limit: int) -> list[int]:
    """Ids of up to `limit` records of `entity` whose attachment field `field_id` names `sha`: live
    records, or for a child entity the parent ids of its rows."""
    t = store.table(entity)
    matches = sa.cast(t.c[field_id], sa.Text).like(f"%{sha}%")       # sha is hex: nothing to escape
    if entity.child:
        q = sa.select(t.c.parent_id).where(matches).distinct().limit(limit)
    else:
        q = sa.select(t.c.id).where(matches, t.c.deleted_at.is_(None)).limit(limit)
    with reading(store.engine) as conn:
        return conn.execute(q).scalars().all()
