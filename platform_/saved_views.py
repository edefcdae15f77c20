"""Saved list views: a person names a filter + sort + columns combination of one entity's list.

The table sits on the engine's SYSTEM metadata, so the migrator creates it with the others
(app.py imports this module before the runtime builds its metadata).
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from engine.db import reading, writing
from engine.systables import SYSTEM

saved_views = sa.Table(
    "sys_saved_view", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("sys_user.id"), nullable=False, index=True),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("query", sa.Text, nullable=False, default=""),
    sa.Column("created_at", sa.DateTime),
)

MAX_NAME = 100


def list_views(engine, user_id: int, entity: str) -> list[dict]:
    with reading(engine) as conn:
        rows = conn.execute(sa.select(saved_views)
                            .where(saved_views.c.user_id == user_id, saved_views.c.entity == entity)
                            .order_by(saved_views.c.name)).mappings()
        return [dict(r) for r in rows]


def save_view(engine, user_id: int, entity: str, name: str, query: str) -> int:
    """Create the view, or replace the query of the user's view of the same name."""
    name = (name or "").strip()[:MAX_NAME]
    if not name:
        raise ValueError("a view needs a name")
    with writing(engine) as conn:
        existing = conn.execute(sa.select(saved_views.c.id).where(
            saved_views.c.user_id == user_id, saved_views.c.entity == entity,
            saved_views.c.name == name)).scalar()
        if existing is not None:
            conn.execute(saved_views.update().where(saved_views.c.id == existing).values(query=query))
            return existing
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
        return conn.execute(saved_views.insert().values(user_id=user_id, entity=entity, name=name, query=query,
                                                        created_at=now)).inserted_primary_key[0]


def delete_view(engine, user_id: int, view_id: int) -> bool:
    with writing(engine) as conn:
        res = conn.execute(saved_views.delete().where(saved_views.c.id == view_id,
                                                      saved_views.c.user_id == user_id))
        return res.rowcount == 1
