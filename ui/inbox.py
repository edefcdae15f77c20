"""The approver inbox (/inbox, A12): pending approvals and workflow tasks of the signed-in user,
acted on in place with htmx — approve, reject with a comment, delegate, bulk approve."""
from __future__ import annotations

import datetime as dt

from flask import request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine import approvals
from engine.automation import notifications
from engine.errors import EngineError

from engine.model import label_of
from engine.query import ListRequest
from platform_ import directory
from platform_ import tasks as work_tasks

from . import todos, web
from .refs import Cells
from .web import bp, render


def _pending(entity: str | None):
    rt = web.runtime()
    items = approvals.pending_for(rt.workflows, web.actor(), entity or None)
    return with_records(items)


def with_records(items: list[dict]) -> list[dict]:
    """Approval rows with what a person decides on: the record's title and key fields (`summary:`
    of the entity), the requester's name, the step's label and the move it asks for."""
    rt, lng, a = web.runtime(), web.lang(), web.actor()
    by_entity: dict[str, list] = {}
    for it in items:
        by_entity.setdefault(it["entity"], []).append(it["record_id"])
    records: dict = {}
    cells: dict = {}
    for eid, ids in by_entity.items():
        ent = rt.config.entities.get(eid)
        if ent is None or ent.child:
            continue
        try:
            res = rt.store.list(eid, ListRequest(filters=[("id", "in", ",".join(str(i) for i in set(ids)))],
                                                 per_page=len(set(ids))), a)
        except EngineError:
            continue
        records[eid] = {r["id"]: r for r in res["items"]}
        cells[eid] = Cells(ent, res["items"], lng)
    for it in items:
        ent = rt.config.entities.get(it["entity"])
        rec = records.get(it["entity"], {}).get(it["record_id"])
        it["entity_label"] = ent.label_text(lng) if ent else it["entity"]
        it["title"] = rt.store.title(ent, rec) if rec is not None else f"#{it['record_id']}"
        it["summary"] = summary_pairs(ent, rec, cells.get(it["entity"]), lng) if rec is not None else []
        wf = rt.config.workflows.get(it["workflow"])
        t = wf.transitions.get(it["transition"]) if wf else None
        it["transition_label"] = t.label_text(lng) if t else it["transition"]
        it["step_label"] = step_label(t, it.get("step_name"), lng)
        it["requester_label"] = it.get("requester_name") or it.get("requester") or ""
        it["move"] = None
        if wf is not None and t is not None and rec is not None:
            src, dst = wf.states.get(rec.get(wf.field)), wf.states.get(t.to)
            it["move"] = (src.label_text(lng) if src else rec.get(wf.field) or "∅",
                          dst.label_text(lng) if dst else t.to)
    return items


def summary_fields(ent):
    """The fields shown beside a record's title: the entity's `summary:`, else its first list columns."""
    if ent.summary:
        return [ent.fields[f] for f in ent.summary if f in ent.fields]
    from .refs import title_field
    skip = {title_field(ent), "owner"}
    return [f for f in ent.columns_for_list() if f.id not in skip and f.type != "state"][:3]


def summary_pairs(ent, rec, cells, lng) -> list[tuple[str, str]]:
    hidden = web.store().hidden_fields(ent, web.actor())
    out = []
    for f in summary_fields(ent):
        if f.id in hidden:
            continue
        text = cells.text(f, rec) if cells is not None else ""
        if text:
            out.append((f.label_text(lng), text))
    return out


def step_label(t, step_name: str | None, lng: str) -> str:
    """An approval step's label from the workflow (`manager` → "Sales manager"); escalated copies say so."""
    base, _sep, suffix = (step_name or "").partition(":")
    label = base
    for st in (t.approval.steps if t is not None and t.approval is not None else ()):
        if st.name == base:
            label = label_of(st.label, lng, base)
            break
    return label + (f" ({_('escalated')})" if suffix == "escalated" else "")


STATUS_TEXT = {"pending": lambda: _("Waiting for a decision"), "approved": lambda: _("Approved"),
               "rejected": lambda: _("Rejected"), "withdrawn": lambda: _("Withdrawn")}


def my_requests(only_open: bool = False, limit: int = 50) -> list[dict]:
    """The user's approval requests (newest first) with record titles and where each one stands."""
    rt, lng = web.runtime(), web.lang()
    wfs = getattr(rt, "workflows", None)
    if wfs is None:
        return []
    reqs = approvals.requested_by(wfs, web.actor(), limit)
    if only_open:
        reqs = [r for r in reqs if r["status"] == "pending"]
    by_entity: dict = {}
    for r in reqs:
        by_entity.setdefault(r["entity"], set()).add(r["record_id"])
    titles = {e: rt.store.titles(e, ids, web.actor()) for e, ids in by_entity.items() if e in rt.config.entities}
    for r in reqs:
        ent = rt.config.entities.get(r["entity"])
        wf = rt.config.workflows.get(r["workflow"])
        t = wf.transitions.get(r["transition"]) if wf else None
        r["entity_label"] = ent.label_text(lng) if ent else r["entity"]
        r["title"] = titles.get(r["entity"], {}).get(r["record_id"], f"#{r['record_id']}")
        r["transition_label"] = t.label_text(lng) if t else r["transition"]
        dst = wf.states.get(t.to) if t is not None else None
        r["target"] = dst.label_text(lng) if dst is not None else None
        r["status_text"] = STATUS_TEXT.get(r["status"], lambda: r["status"])()
        r["step_label"] = step_label(t, r.get("step_name"), lng) if r.get("step_name") else ""
    return reqs


def _tasks():
    return todos.open_todos()


def _notifications():
    """The user's unread notifications (newest first, at most 100; /notifications has them all)."""
    return notifications.listing(web.runtime().engine, current_user.actor.id, unread_only=True, page=1,
                                 per_page=100)["items"]


def _colleagues():
    return directory.colleagues(web.runtime().engine, current_user.actor.id)


def inbox_count() -> int:
    if not current_user or not current_user.is_authenticated or getattr(web.runtime(), "workflows", None) is None:
        return 0
    try:
        return len(approvals.pending_for(web.runtime().workflows, current_user.actor)) + todos.count_open()
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
    tab = "requests" if request.values.get("tab") == "requests" else "todo"
    rt = web.runtime()
    entities = sorted({w.entity for w in rt.config.workflows.values()})
    requests_ = my_requests()
    return render("inbox.html", "inbox", status=status, items=_pending(entity) if tab == "todo" else [],
                  todo=_tasks() if tab == "todo" else [], entity=entity, tab=tab, requests=requests_,
                  open_requests=sum(1 for r in requests_ if r["status"] == "pending"),
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
    if not work_tasks.mark_done(web.runtime().engine, task_id, current_user.actor.id):
        return _page(409, error=_("This task is not open for you."))
    return _page(message=_("Task done."))


@bp.post("/inbox/todo/<entity>/<int:rid>/done")
@login_required
def inbox_todo_done(entity, rid):
    """Close a to-do record: its status becomes the first `todo.done` value, through the store."""
    e = web.entity_or_404(entity)
    status = e.fields.get((e.todo or {}).get("status") or "")
    if status is None or status.value_type != "select" or not e.todo.get("done"):
        return _page(404, error=_("This record is not a to-do that can be marked done here."))
    try:
        rec = web.store().get(e.id, rid, web.actor())
        if rec.get(e.todo["assignee"]) != current_user.actor.id:
            return _page(409, error=_("This task is not open for you."))
        web.store().update(e.id, rid, {status.id: e.todo["done"][0]}, web.actor(), version=rec["version"])
    except EngineError as err:
        return _page(_status(err), error=err.message)
    return _page(message=_("Task done."))


@bp.post("/inbox/requests/<int:request_id>/withdraw")
@login_required
def inbox_withdraw(request_id):
    try:
        approvals.withdraw(web.runtime().workflows, request_id, web.actor(), request.form.get("comment"))
    except EngineError as err:
        return _page(_status(err), error=err.message)
    return _page(message=_("Request withdrawn."))


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
