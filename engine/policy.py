"""The permission hook of the store. The platform supplies a real policy; the engine only asks.

`scope()` returns an extra WHERE clause for reads (row-level scopes plug in here), `check()`
raises Forbidden for an action on an entity or a record.
"""
from __future__ import annotations

from .errors import Forbidden


class Policy:
    def scope(self, entity, actor, table, action: str = "read"):
        return None

    def check(self, entity, action: str, actor, record=None) -> None:
        return None


class AdminDeletesOnly(Policy):
    """Everyone signed in may read, create and update; only admins delete and restore (H2)."""

    def check(self, entity, action, actor, record=None):
        if actor is None or (actor.id is None and not actor.is_admin):
            raise Forbidden("You must be signed in.")
        if action in ("delete", "restore") and not actor.is_admin:
            raise Forbidden(f"Only an administrator may {action} {entity.id} records; "
                            "deleted records go to the recycle bin.")
