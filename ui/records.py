"""Record pages `/e/<entity>/<id>`: the form's sections read-only, related lists of every entity
linking here, a timeline, the workflow's stage bar and transitions, quick actions."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine.errors import Conflict, EngineError, Forbidden, NotFound, ValidationFailed
from engine.model import Config, Entity, label_of
from engine.query import ListRequest

from .automation import sla_panel
from .formspec import form_sections
from .columns import title_fields
from .refs import Cells, state_labels, user_names
from .web import actor, bp, config, entity_or_404, hx_redirect, lang, render, runtime, store

RELATED_ROWS = 10
QUICK_CORE = ("call", "visit", "note")
QUICK_KINDS = QUICK_CORE + ("meeting", "email")


def related_specs(cfg: Config, entity: Entity):
    """(entity, link field) of every top-level entity that links here."""
    return [(e, f) for e, f in cfg.links_to(entity.id) if not e.child]


def quick_actions(cfg: Config, entity: Entity, rid: int, lng: str) -> list[dict]:
    """'Log a call / visit / note': entities without child tables that link here, have a date or
    time field and a select field offering such kinds (call, visit or note among them); one button
    per kind, opening that entity's form in a dialog with the link and the kind prefilled."""
    out, seen = [], set()
    for e, link in related_specs(cfg, entity):
        if e.table_fields or not any(f.value_type in ("date", "datetime") for f in e.user_fields):
            continue
        kind = next((f for f in e.user_fields if f.type == "select"
                     and {o.value for o in f.options} & set(QUICK_CORE)), None)
        if kind is None or (e.id, link.id) in seen:
            continue
        seen.add((e.id, link.id))
        for o in kind.options:
            if o.value in QUICK_KINDS:
                out.append({"label": label_of(o.label, lng, o.value), "entity": e.id,
                            "url": url_for("ui.new_record", entity=e.id, _dialog=1,
                                           **{link.id: rid, kind.id: o.value})})
    return out


def approval_event_label(event: str) -> str:
    return {"approval_requested": _("requested"), "approved": _("approved"),
            "approval_rejected": _("rejected"), "approval_delegated": _("delegated"),
            "approval_withdrawn": _("withdrawn"), "approval_escalated": _("escalated")}.get(event, event)


def approval_status_label(status: str) -> str:
    return {"pending": _("pending"), "approved": _("approved"), "rejected": _("rejected"),
            "withdrawn": _("withdrawn"), "delegated": _("delegated"), "skipped": _("skipped"),
            "cancelled": _("cancelled")}.get(status, status)


def approval_trail(entity: Entity, rid: int, lng: str) -> list[dict]:
    """The record's approval requests for the record page, as people read them: the transition's
    and the steps' labels, full names, statuses in the reader's language (newest first)."""
    from engine import approvals
    wfs = getattr(runtime(), "workflows", None)
    if wfs is None or entity.state_field is None:
        return []
    names = user_names()
    out = []
    for req in approvals.trail(wfs, entity.id, rid):
        wf = config().workflows.get(req["workflow"])
        t = wf.transitions.get(req["transition"]) if wf else None
        steps = {st.name: st for st in (t.approval.steps if t is not None and t.approval else ())}
        tasks = []
        for task in req["tasks"]:
            name, _sep, extra = (task.get("step_name") or "").partition(":")
            st = steps.get(name)
            label = label_of(st.label, lng, name) if st else name
            if extra == "escalated":
                label = f"{label} ({_('escalated')})"
            tasks.append({**task, "step_label": label, "status_text": approval_status_label(task["status"]),
                          "who": names.get(task.get("approver")) or task.get("username")})
        out.append({**req, "tasks": tasks, "transition_label": t.label_text(lng) if t else req["transition"],
                    "status_text": approval_status_label(req["status"]),
                    "requester_name": names.get(req.get("requester"), "")})
    return out


def field_history(entity: Entity, rec: dict, lng: str, limit: int = 50) -> list[dict]:
    """The record's field changes from the audit trail (H6), without fields the reader may not see
    and without the state (the workflow history shows it)."""
    from engine import audit
    hidden = store().hidden_fields(entity, actor())
    names = user_names()
    state = entity.state_field.id if entity.state_field is not None else None
    out = []
    for entry in audit.entries(runtime().engine, entity=entity.id, record_id=rec["id"], action="update",
                               per_page=limit)["items"]:
        parts = []
        changes = {k: v for k, v in (entry["changes"] or {}).items() if k in entity.fields and k not in hidden
                   and k != state and entity.fields[k].type != "table"}
        titles = _logged_titles(entity, changes)
        for fid, (before, after) in changes.items():
            f = entity.fields[fid]
            parts.append(f"{f.label_text(lng)}: {shown_value(f, before, names, lng, titles)} → "
                         f"{shown_value(f, after, names, lng, titles)}")
        if parts:
            out.append({"at": entry["at"], "kind": _("Changed"), "title": "; ".join(parts[:4])
                        + (" …" if len(parts) > 4 else ""), "href": None,
                        "who": names.get(entry["user_id"]) or entry["user"], "text": ""})
    return out


def _logged_titles(entity: Entity, changes: dict) -> dict:
    """{link field: {id: title}} of the records the logged values of link fields point at."""
    out = {}
    for fid, pair in changes.items():
        f = entity.fields[fid]
        if f.value_type == "link" and f.to:
            ids = [v for v in (pair or ()) if v not in (None, "")]
            out[fid] = store().titles(f.to, ids) if ids else {}
    return out


def shown_value(f, value, names: dict, lng: str, titles: dict | None = None) -> str:
    """A logged value as a reader sees it: option and state labels, user names, link titles,
    numbers and dates as lists show them, shortened text."""
    from .display import fmt
    if value in (None, "", []):
        return "∅"
    t = f.value_type
    if t == "boolean":
        text = _("Yes") if value else _("No")
    elif t == "link":
        try:
            text = (titles or {}).get(f.id, {}).get(int(value)) or f"#{value}"
        except (TypeError, ValueError):
            text = str(value)
    elif t == "user":
        try:
            text = names.get(int(value)) or f"#{value}"
        except (TypeError, ValueError):
            text = str(value)
    elif t in ("money", "decimal", "percent", "integer"):
        try:
            text = fmt(f, value if t == "integer" else Decimal(str(value)), lng)
        except (ArithmeticError, ValueError, TypeError):
            text = str(value)
    elif t in ("select", "multiselect", "state"):
        text = fmt(f, value, lng, states=state_labels(config().entities[f.entity], lng) if t == "state" else None)
    else:
        text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def timeline(cfg: Config, entity: Entity, rec: dict, related: list[dict], lng: str) -> list[dict]:
    """Related records by their date, workflow history and the record's own creation and last
    change, newest first."""
    items = []
    names = user_names()
    for block in related:
        e = block["entity"]
        date_field = next((f for f in e.user_fields if f.value_type == "datetime" and f.stored), None)
        for r in block["rows"]:
            when = r.get(date_field.id) if date_field else None
            when = when or r.get("created_at")
            if isinstance(when, dt.date) and not isinstance(when, dt.datetime):
                when = dt.datetime.combine(when, dt.time())
            items.append({"at": when, "kind": e.label_text(lng), "title": store().title(e, r),
                          "href": url_for("ui.record", entity=e.id, rid=r["id"]),
                          "who": names.get(r.get("created_by")), "text": block["summary"](r)})
    wf = getattr(runtime(), "workflows", None)
    if wf is not None and entity.state_field is not None:
        labels = state_labels(entity, lng)
        try:
            for h in wf.history(entity.id, rec["id"]):
                at = h.get("at")
                if isinstance(at, str):
                    try:
                        at = dt.datetime.fromisoformat(at)
                    except ValueError:
                        at = None
                src, dst = h.get("from_state"), h.get("to_state")
                event = h.get("event") or "transition"
                text = h.get("comment") or ""
                if event in ("transition", "rejected", "migrated"):
                    kind = entity.state_field.label_text(lng)      # "Stage", "阶段": the field's own label
                    title = f"{labels.get(src, src) or '∅'} → {labels.get(dst, dst)}"
                elif event == "assigned":          # an assignment rule chose the user: "rule → user #id"
                    m = re.search(r"user #(\d+)", text)
                    kind, title, text = _("Assigned"), names.get(int(m.group(1)), text) if m else text, ""
                elif event == "email":
                    kind, title, text = _("E-mail"), text, ""
                else:  # approval events leave the state as it is: say what happened instead
                    kind, title = _("Approval"), approval_event_label(event)
                items.append({"at": at, "kind": kind, "title": title, "href": None,
                              "who": names.get(h.get("user_id")) or h.get("username"), "text": text})
        except EngineError:
            pass
    items += field_history(entity, rec, lng)
    items.append({"at": rec.get("created_at"), "kind": _("Created"), "title": "", "href": None,
                  "who": names.get(rec.get("created_by")), "text": ""})
    if rec.get("updated_at") and rec.get("version", 1) > 1:
        items.append({"at": rec.get("updated_at"), "kind": _("Last changed"), "title": "", "href": None,
                      "who": names.get(rec.get("updated_by")), "text": ""})
    items.sort(key=lambda i: i["at"] or dt.datetime.min, reverse=True)
    return items


def related_lists(cfg: Config, entity: Entity, rid: int, lng: str) -> list[dict]:
    out = []
    a = actor()
    for e, f in related_specs(cfg, entity):
        try:
            res = store().list(e.id, ListRequest(filters=[(f.id, "eq", str(rid))], per_page=RELATED_ROWS,
                                                 sort="-created_at"), a)
        except (Forbidden, EngineError):
            continue
        shown = {f.id, *title_fields(e)}                      # the row's link shows the title already
        cols = [c for c in e.columns_for_list() if c.id not in shown][:4]
        cells = Cells(e, res["items"], lng)
        summary_fields = cols[:2]
        out.append({"entity": e, "field": f, "label": e.plural_text(lng)
                    + ("" if sum(1 for x, _f in related_specs(cfg, entity) if x.id == e.id) == 1
                       else f" ({f.label_text(lng)})"),
                    "rows": res["items"], "total": res["total"], "title": (lambda r, e=e: store().title(e, r)), "cols": cols, "cells": cells,
                    "all_url": url_for("ui.list_view", entity=e.id, **{f.id: rid}),
                    "new_url": url_for("ui.new_record", entity=e.id, **{f.id: rid}),
                    "summary": (lambda r, cells=cells, sf=summary_fields:
                                " · ".join(t for t in (cells.text(x, r) for x in sf) if t))})
    return out


def workflow_view(entity: Entity, rec: dict) -> dict:
    wf = getattr(runtime(), "workflows", None)
    if wf is None or entity.state_field is None:
        return {"path": [], "transitions": []}
    try:
        path = wf.path(entity.id, rec)
    except EngineError:
        path = []
    try:
        transitions = wf.available(entity.id, rec["id"], actor())
    except EngineError:
        transitions = []
    return {"path": path, "transitions": transitions}


def visible_sections(cfg: Config, entity: Entity, rec: dict, lng: str):
    """The form's sections as the record page shows them: visible_if of sections and fields
    evaluated on the stored record, like the form does on what the user types."""
    from .forms import form_state
    sections = form_sections(cfg, entity, lng, store().hidden_fields(entity, actor()))
    state = form_state(entity, sections, dict(rec))
    out = []
    for s in sections:
        if s.key in state["hidden_sections"]:
            continue
        s.fields = [f for f in s.fields if f.id not in state["hidden"]]
        if s.fields:
            out.append(s)
    return out


@bp.get("/e/<entity>/<int:rid>")
@login_required
def record(entity, rid):
    e = entity_or_404(entity)
    lng = lang()
    cfg = config()
    rec = store().get(e.id, rid, actor())
    cells = Cells(e, [rec], lng)
    child_cells = {}
    for f in e.table_fields:
        child = cfg.entities[f.of]
        child_cells[f.id] = (child, [c for c in child.user_fields if c.stored], Cells(child, rec.get(f.id) or [], lng))
    related = related_lists(cfg, e, rid, lng)
    return render("record.html", request.args.get("_block") or "content", entity=e, rec=rec, cells=cells,
                  title=store().title(e, rec), sections=visible_sections(cfg, e, rec, lng), child_cells=child_cells,
                  related=related, timeline=timeline(cfg, e, rec, related, lng), wf=workflow_view(e, rec),
                  quick=quick_actions(cfg, e, rid, lng), sla=sla_panel(e, rid), trail=approval_trail(e, rid, lng))


@bp.post("/e/<entity>/<int:rid>/delete")
@login_required
def delete_record(entity, rid):
    e = entity_or_404(entity)
    try:
        store().delete(e.id, rid, actor(), version=request.form.get("version") or None)
    except Conflict:
        flash(_("Someone changed this record meanwhile; look at it again before deleting."), "error")
        return redirect(url_for("ui.record", entity=e.id, rid=rid))
    flash(_("Deleted. An administrator can restore it from the recycle bin."), "success")
    return hx_redirect(url_for("ui.list_view", entity=e.id))


@bp.post("/e/<entity>/<int:rid>/transition/<name>")
@login_required
def transition(entity, rid, name):
    e = entity_or_404(entity)
    wf = getattr(runtime(), "workflows", None)
    if wf is None:
        raise NotFound(_("This record has no workflow."))
    try:
        result = wf.execute(e.id, rid, name, actor(), comment=(request.form.get("comment") or "").strip() or None)
        pending = isinstance(result, dict) and result.get("status") == "pending_approval"
        flash(_("Sent for approval.") if pending else _("Done."), "success")
    except ValidationFailed as exc:
        for k, v in exc.fields.items():
            f = e.fields.get(k)
            flash(f"{f.label_text(lang()) if f else k}: {v}", "error")
    except (Conflict, Forbidden) as exc:
        flash(exc.message, "error")
    return hx_redirect(url_for("ui.record", entity=e.id, rid=rid))
