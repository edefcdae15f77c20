"""The signed-in user's open to-dos: records of every entity marked `todo:` in the config (assigned
to the user, not in a done state) and the workflow's own to-dos (`todo` actions). The home page
and the inbox both list them; one query per to-do entity plus one, whatever the data size."""
from __future__ import annotations

import datetime as dt

from flask_babel import gettext as _
from flask_login import current_user

from engine import clock
from engine.daily import open_values
from engine.errors import EngineError
from engine.query import ListRequest
from platform_ import tasks as workflow_tasks

from .web import actor, config, lang, runtime, store


def todo_entities():
    return [e for e in config().top_entities if e.todo]


def _due_date(value) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else None


def overdue_text(days: int) -> str:
    return _("%(n)d days overdue", n=days) if days != 1 else _("1 day overdue")


def open_todos(within_days: int | None = None, limit: int = 200) -> list[dict]:
    """Open to-dos of the user, earliest due first (no due date last). `within_days`: only those
    due up to that many days from today (overdue ones included), else all."""
    cfg, a, lng = config(), actor(), lang()
    today = clock.today()
    until = today + dt.timedelta(days=within_days + 1) if within_days is not None else None
    out = []
    for e in todo_entities():
        todo = e.todo
        filters = [(todo["assignee"], "eq", "me")]
        states = open_values(e, cfg.workflows)
        if states is not None:
            if not states:
                continue
            filters.append((todo["status"], "in", ",".join(states)))
        if until is not None:
            filters.append((todo["due"], "lt", until.isoformat()))
        try:
            res = store().list(e.id, ListRequest(filters=filters, sort=todo["due"], per_page=limit), a)
        except EngineError:            # a role that may not read the entity has no to-dos there
            continue
        status = e.fields.get(todo.get("status") or "")
        done_value = (todo.get("done") or [None])[0] if status is not None and status.value_type == "select" else None
        for r in res["items"]:
            out.append({"kind": "record", "entity": e.id, "entity_label": e.label_text(lng), "id": r["id"],
                        "record_id": r["id"], "title": store().title(e, r), "due": _due_date(r.get(todo["due"])),
                        "record": r, "done_value": done_value})
    for r in workflow_tasks.open_tasks(runtime().engine, current_user.actor.id, until, limit):
        ent = cfg.entities.get(r["entity"])
        out.append({"kind": "workflow", "entity": r["entity"], "id": r["id"], "record_id": r["record_id"],
                    "entity_label": ent.label_text(lng) if ent else r["entity"], "title": r["title"],
                    "due": r["due_on"], "record": None, "done_value": None})
    for t in out:
        t["overdue_days"] = (today - t["due"]).days if t["due"] is not None and t["due"] < today else 0
        t["today"] = t["due"] == today
    out.sort(key=lambda t: (t["due"] is None, t["due"] or dt.date.max, t["title"]))
    return out[:limit]


def count_open() -> int:
    """How many open to-dos the user has (one count per to-do entity, one for the workflow's)."""
    from engine.aggregate import totals
    cfg, a = config(), actor()
    n = 0
    for e in todo_entities():
        filters = [(e.todo["assignee"], "eq", "me")]
        states = open_values(e, cfg.workflows)
        if states is not None:
            if not states:
                continue
            filters.append((e.todo["status"], "in", ",".join(states)))
        try:
            n += sum(v["count"] for v in totals(store(), e.id, ListRequest(filters=filters), a).values())
        except EngineError:
            continue
    return n + workflow_tasks.count_open(runtime().engine, current_user.actor.id)
