"""Rows of records fetched by id, for pages that show many references at once (link labels with
their `display` fields, the audit page's record titles): one query per entity."""
from __future__ import annotations

import sqlalchemy as sa

from engine.db import reading
from engine.model import Entity


def rows_by_id(store, entity: Entity, ids, who=None) -> list[dict]:
    """The stored rows (deleted ones too) of `entity` whose ids are in `ids`, in no set order.
    With `who` (an actor), only rows inside that actor's row scope."""
    t = store.table(entity)
    q = sa.select(t).where(t.c.id.in_(ids))
    if who is not None:
        scope = store.policy.scope(entity, who, t)
        if scope is not None:
            q = q.where(scope)
    with reading(store.engine) as conn:
        return [dict(r) for r in conn.execute(q).mappings()]
