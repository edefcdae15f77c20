""""View as": what one user may do with each entity and which role's rule says so (H1, H3, H4).

The answer comes from the store's own policy (the same object that filters every query), plus the
number of records of each entity the user would see, counted with the user's own scope, so an
administrator can tell "no records" from "hidden by a rule".
"""
from __future__ import annotations

import sqlalchemy as sa

from engine.db import reading
from engine.errors import NotFound
from engine.systables import users

from .auth import actor_from_row


def actor_named(engine, username: str):
    with reading(engine) as conn:
        row = conn.execute(sa.select(users).where(users.c.username == username)).mappings().first()
    if row is None:
        raise NotFound(f"There is no user {username!r}.")
    return actor_from_row(row), row


def explain(rt, username: str, lang: str = "en") -> dict:
    """{"user": {...}, "entities": [{"entity", "label", "actions", "scope", "hidden", "readonly",
    "visible", "total"}]} for every top-level entity of the configuration."""
    actor, row = actor_named(rt.engine, username)
    policy, store = rt.store.policy, rt.store
    explain_one = getattr(policy, "explain", None)
    out = []
    for e in rt.config.entities.values():
        if e.child:
            continue
        visible, total = store.visible_count(e.id, actor)
        info = explain_one(e, actor) if explain_one else {}
        out.append({"entity": e.id, "label": e.label_text(lang),
                        "actions": {a: roles for a, roles in (info.get("actions") or {}).items()},
                        "scope": [{"role": r, "scope": s} for r, s in info.get("scope", ())],
                        "hidden": {f: rs for f, rs in (info.get("hidden") or {}).items()},
                        "readonly": {f: rs for f, rs in (info.get("readonly") or {}).items()},
                        "visible": visible, "total": total})
    return {"user": {"username": row["username"], "full_name": row["full_name"], "roles": list(actor.roles),
                     "team": row.get("team"), "region": row.get("region"), "active": bool(row["active"])},
            "entities": out}


def register(bp, runtime, admin_check):
    """GET /api/v1/admin/access/<username> on the API blueprint (administrators only)."""
    from flask import jsonify, request

    @bp.get("/admin/access/<username>")
    def access_explain(username):
        admin_check("see what another user may do")
        return jsonify(explain(runtime(), username, request.args.get("lang") or "en"))
