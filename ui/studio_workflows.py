"""Studio: the workflow designer (/admin/workflows/<id>): states, transitions and a live diagram;
a transition's rules and approval are read from the form by ui/studio_transitions.py."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine.errors import BadRequest

from . import studio_transitions as transitions
from .studio_base import admin, drafts, files, save, text_of
from .studio_svg import diagram
from .studio_yaml import EditError, dump, find, ident, label, move_key, parse
from .web import bp, config, lang, render

OPS = ("st_add", "st_save", "st_up", "st_down", "st_remove", "tr_add", "tr_save", "tr_remove")


def _page(wid, path, data, problems=None, errors=None, status=200, attempt=None, terrors=None):
    entity = {}
    epath = find(files(), "entity", str(data.get("entity") or ""))
    if epath:
        try:
            entity = parse(files()[epath], epath)
        except EditError:
            entity = {}
    used = [r for t in (data.get("transitions") or {}).values() if isinstance(t, dict) for r in t.get("roles") or ()]
    used += [s.get("role") for t in (data.get("transitions") or {}).values() if isinstance(t, dict)
             for s in ((t.get("approval") or {}).get("steps") or ()) if isinstance(s, dict) and s.get("role")]
    pack = config().pack
    return render("studio/workflow.html", status=status, wid=wid, path=path, data=data,
                  svg=diagram(data, lang()), problems=problems or [], errors=errors or {},
                  in_draft=path in drafts(), states=list((data.get("states") or {})),
                  roles=transitions.role_choices(pack.roles if pack else (), used),
                  user_fields=transitions.user_field_choices(entity),
                  entity_fields=[(f, sp.get("label") if isinstance(sp, dict) else None)
                                 for f, sp in (entity.get("fields") or {}).items()],
                  attempt=attempt or {}, terrors=terrors or {}, comments=transitions.COMMENT,
                  modes=transitions.MODES)


@bp.get("/admin/workflows/<wid>")
@login_required
def studio_workflow(wid):
    admin()
    path, data = text_of("workflow", wid)
    return _page(wid, path, data)


@bp.get("/admin/workflows/<wid>/diagram.svg")
@login_required
def studio_workflow_svg(wid):
    admin()
    _path, data = text_of("workflow", wid)
    return str(diagram(data, lang())), 200, {"Content-Type": "image/svg+xml; charset=utf-8"}


def _transition(form, old: dict | None, states: list[str]) -> dict:
    t = dict(old or {})
    sources = [s for s in form.getlist("from") if s]
    if not sources:
        raise EditError(_("Choose the state(s) the transition leaves."), "from")
    to = form.get("to", "")
    if to not in states or any(s not in states for s in sources):
        raise EditError(_("Choose states of this workflow."), "to")
    t["from"] = sources[0] if len(sources) == 1 else sources
    t["to"] = to
    t["label"] = label(form.get("label_en"), form.get("label_zh"), to)
    return transitions.apply(t, form)


def _apply_op(op: str, data: dict) -> dict:
    form = request.form
    states = dict(data.get("states") or {})
    transitions = dict(data.get("transitions") or {})
    key = form.get("id", "")
    if op == "st_add":
        sid = ident(key, _("The state id"))
        if sid in states:
            raise EditError(_("There is already a state %(id)s.", id=sid), "state_id")
        states[sid] = {"label": label(form.get("label_en"), form.get("label_zh"), sid)}
        if form.get("final"):
            states[sid]["final"] = True
        source = form.get("reached_from", "")
        if source:            # a state nothing reaches is refused by check: add the way in with it
            if source not in states:
                raise EditError(_("Choose states of this workflow."), "reached_from")
            tid = ident(form.get("transition") or f"to_{sid}", _("The transition id"), "transition_id")
            if tid in transitions:
                raise EditError(_("There is already a transition %(id)s.", id=tid), "transition_id")
            transitions[tid] = {"from": source, "to": sid,
                                "label": label(form.get("transition_en"), form.get("transition_zh"), tid)}
    elif op in ("st_save", "st_up", "st_down", "st_remove"):
        if key not in states:
            raise BadRequest(_("There is no state %(id)s.", id=key))
        if op == "st_save":
            s = dict(states[key] or {})
            s["label"] = label(form.get("label_en"), form.get("label_zh"), key)
            if form.get("final"):
                s["final"] = True
            else:
                s.pop("final", None)
            states[key] = s
        elif op == "st_remove":
            states.pop(key)
        else:
            states = move_key(states, key, -1 if op == "st_up" else 1)
    elif op == "tr_add":
        tid = ident(key, _("The transition id"), "transition_id")
        if tid in transitions:
            raise EditError(_("There is already a transition %(id)s.", id=tid), "transition_id")
        transitions[tid] = _transition(form, None, list(states))
    else:
        if key not in transitions:
            raise BadRequest(_("There is no transition %(id)s.", id=key))
        if op == "tr_remove":
            transitions.pop(key)
        else:
            transitions[key] = _transition(form, transitions[key], list(states))
    return {**data, "states": states, "transitions": transitions}


@bp.post("/admin/workflows/<wid>")
@login_required
def studio_workflow_edit(wid):
    admin()
    path, data = text_of("workflow", wid)
    op = request.form.get("op", "")
    if op not in OPS:
        raise BadRequest(_("Unknown change."))
    try:
        new = _apply_op(op, data)
    except EditError as e:
        tid = request.form.get("id", "") if op in ("tr_add", "tr_save") else ""
        return _page(wid, path, data, errors={e.field or "id": e.message}, status=422,
                     terrors={tid: {e.field or "id": e.message}} if tid else None)
    problems = save(path, dump(new))
    if problems:
        terrors, rest = transitions.split_problems(problems)
        attempt = {k: v for k, v in (new.get("transitions") or {}).items()
                   if k in terrors and v != (data.get("transitions") or {}).get(k)}
        return _page(wid, path, data, problems=rest, status=422, attempt=attempt, terrors=terrors)
    flash(_("Draft saved: review and apply it under Changes."), "success")
    return redirect(url_for("ui.studio_workflow", wid=wid))
