"""Counts and sums of a filtered list, optionally grouped by one field, under the same row scope,
field permissions and filters as `RecordStore.list` (one query)."""
from __future__ import annotations

import sqlalchemy as sa

from .actor import Actor
from .db import reading
from .query import ListRequest


def totals(store, entity_id: str, req: ListRequest, actor: Actor, group_by: str | None = None,
           sum_field: str | None = None) -> dict:
    """{group value: {"count": n, "sum": Decimal or None}}; the key is None without `group_by`.

    A sum over a field the actor may not see is None, never the figure."""
    entity = store.entity(entity_id)
    t = store.table(entity)
    conds, hidden = store.list_conditions(entity, t, req, actor)     # permission, row scope, filters, search
    cols = [sa.func.count().label("n")]
    summed = sum_field if sum_field and sum_field not in hidden and sum_field in t.c else None
    if summed:
        cols.append(sa.func.sum(t.c[summed]).label("s"))
    q = sa.select(*cols).select_from(t).where(*conds)
    if group_by:
        q = sa.select(t.c[group_by].label("g"), *cols).where(*conds).group_by(t.c[group_by])
    out = {}
    with reading(store.engine) as conn:
        for row in conn.execute(q).mappings():
            out[row["g"] if group_by else None] = {"count": row["n"], "sum": row["s"] if summed else None}
    return out
