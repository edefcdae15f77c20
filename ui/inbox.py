"""The approver inbox (/inbox, A12): pending approvals and workflow tasks of the signed-in user,
acted on in place with htmx — approve, reject with a comment, delegate, bulk approve."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine import approvals
from engine.automation import notifications
from engine.db import reading, writing
from engine.errors import EngineError
from engine.systables import users
from engine.wftables import tasks

from . import web
from .web import bp, render


def _pending(entity: str | None):
    rt = web.runtime()
    items = approvals.pending_for(rt.workflows, web.actor(), entity or None)
    by_entity: dict[str, list] = {}
    for it in items:
        by_entity.setdefault(it["entity"], []).append(it["record_id"])
    titles = {e: rt.store.titles(e, ids) for e, ids in by_entity.items() if e in rt.config.entities}
    for it in items:
        ent = rt.config.entities.get(it["entity"])
        it["entity_label"] = ent.label_text(web.lang()) if ent else it["entity"]
        it["title"] = titles.get(it["entity"], {}).get(it["record_id"], f"#{it['record_id']}")
        wf = rt.config.workflows.get(it["workflow"])
        t = wf.transitions.get(it["transition"]) if wf else None
        it["transition_label"] = t.label_text(web.lang()) if t else it["transition"]
    return items


def _tasks():
    with reading(web.runtime().engine) as conn:
        return [dict(r) for r in conn.execute(
            sa.select(tasks).where(tasks.c.assignee == current_user.actor.id, tasks.c.status == "open")
            .order_by(tasks.c.due_on.is_(None), tasks.c.due_on, tasks.c.id).limit(200)).mappings()]


def _notifications():
    """The user's unread notifications (newest first, at most 100; /notifications has them all)."""
    return notifications.listing(web.runtime().engine, current_user.actor.id, unread_only=True, page=1,
                                 per_page=100)["items"]


def _colleagues():
    with reading(web.runtime().engine) as conn:
        return [dict(r) for r in conn.execute(
            sa.select(users.c.id, users.c.username, users.c.full_name)
            .where(users.c.active.is_(True), users.c.id != current_user.actor.id).order_by(users.c.username)).mappings()]


def inbox_count() -> int:
    if not current_user or not current_user.is_authenticated or getattr(web.runtime(), "workflows", None) is None:
        return 0
    try:
        return len(approvals.pending_for(web.runtime().workflows, current_user.actor)) + len(_tasks())
    except Exception:  # noqa: BLE001 - a count must never break a page
        return 0


def approval_trail(entity_id: str, rid: int) -> list[dict]:
    """A record's approval requests with their steps, for the record page (newest first)."""
    wfs = getattr(web.runtime(), "workflows", None)
    if wfs is None:
        return []
    return approvals.trail(wfs, entity_id, rid)


def history(entity_id: str, rid: int) -> list[dict]:
    wfs = getattr(web.runtime(), "workflows", None)
    return wfs.history(entity_id, rid) if wfs is not None else []


@bp.app_context_processor
def _counts():
    return {"inbox_count": inbox_count, "approval_trail": approval_trail, "wf_history": history}


def _page(status=200, message=None, error=None):
    entity = request.values.get("entity") or ""
    rt = web.runtime()
    entities = sorted({w.entity for w in rt.config.workflows.values()})
    return render("inbox.html", "inbox", status=status, items=_pending(entity), todo=_tasks(), entity=entity,
                  notes=_notifications(),
                  entities=[(e, rt.config.entities[e].label_text(web.lang())) for e in entities if e in rt.config.entities],
                  colleagues=_colleagues(), message=message, error=error)


@bp.get("/inbox")
@login_required
def inbox():
    return _page()


@bp.post("/inbox/<int:task_id>/<decision>")
@login_required
def inbox_decide(task_id, decision):
    if decision not in ("approve", "reject", "delegate"):
        return _page(404, error=_("Unknown decision."))
    try:
        approvals.decide(web.runtime().workflows, task_id, web.actor(), decision, request.form.get("comment"),
                         request.form.get("delegate_to") or None)
    except EngineError as e:
        detail = "; ".join(f"{k}: {v}" for k, v in (getattr(e, "fields", None) or {}).items())
        return _page(_status(e), error=e.message + (f" ({detail})" if detail else ""))
    done = {"approve": _("Approved."), "reject": _("Rejected."), "delegate": _("Delegated.")}[decision]
    return _page(message=done)


@bp.post("/inbox/bulk-approve")
@login_required
def inbox_bulk():
    ok, failed = 0, []
    for tid in request.form.getlist("task_id"):
        try:
            approvals.decide(web.runtime().workflows, int(tid), web.actor(), "approve", request.form.get("comment"))
            ok += 1
        except (EngineError, ValueError) as e:
            failed.append(f"#{tid}: {getattr(e, 'message', e)}")
    return _page(message=_("%(n)d approved.", n=ok), error="; ".join(failed) or None)


@bp.post("/inbox/tasks/<int:task_id>/done")
@login_required
def inbox_task_done(task_id):
    with writing(web.runtime().engine) as conn:
        res = conn.execute(tasks.update().where(tasks.c.id == task_id, tasks.c.assignee == current_user.actor.id,
                                                tasks.c.status == "open")
                           .values(status="done", done_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)))
    if res.rowcount != 1:
        return _page(409, error=_("This task is not open for you."))
    return _page(message=_("Task done."))


@bp.post("/inbox/notifications/read")
@login_required
def inbox_read():
    notifications.mark_read(web.runtime().engine, current_user.actor.id)
    resp = _page()
    resp.headers["HX-Trigger"] = "notificationsChanged"   # the bell in the top bar counts again
    return resp


@bp.post("/inbox/cover")
@login_required
def inbox_cover():
    """Holiday cover: my approvals go to a colleague for a date range."""
    try:
        starts = dt.date.fromisoformat(request.form.get("starts_on", ""))
        ends = dt.date.fromisoformat(request.form.get("ends_on", ""))
        approvals.set_delegation(web.runtime().workflows, web.actor(), int(request.form.get("delegate") or 0),
                                 starts, ends)
    except ValueError:
        return _page(422, error=_("Give a colleague and two dates (YYYY-MM-DD)."))
    except EngineError as e:
        detail = "; ".join(f"{k}: {v}" for k, v in (getattr(e, "fields", None) or {}).items())
        return _page(_status(e), error=e.message + (f" ({detail})" if detail else ""))
    return _page(message=_("Your approvals go to your colleague in that period."))


def _status(e: EngineError) -> int:
    return {"not_found": 404, "forbidden": 403, "conflict": 409, "validation_failed": 422}.get(e.code, 400)
