"""The records a user worked on lately, from the audit trail (the home page's "recent" block)."""
from __future__ import annotations

import sqlalchemy as sa

from engine.audit import audit_log
from engine.db import reading

ACTIONS = ("create", "update", "transition")     # what counts as working on a record


def touched_by(engine: sa.Engine, user_id: int, limit: int) -> list:
    """[(entity, record id, last time)] the user created, changed or moved, newest first, at most
    `limit` rows; the records may since be deleted or out of the user's scope (the caller reads
    them through the store)."""
    last = sa.func.max(audit_log.c.at).label("last")
    with reading(engine) as conn:
        return conn.execute(
            sa.select(audit_log.c.entity, audit_log.c.record_id, last)
            .where(audit_log.c.user_id == user_id, audit_log.c.entity.is_not(None),
                   audit_log.c.record_id.is_not(None), audit_log.c.action.in_(ACTIONS))
            .group_by(audit_log.c.entity, audit_log.c.record_id).order_by(last.desc()).limit(limit)).all()
