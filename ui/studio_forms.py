"""Studio: the form designer (/admin/forms/<entity>) and the rule checker it calls as you type."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine import rules
from engine.errors import BadRequest, RuleError

from .studio_base import admin, drafts, files, save, text_of
from .studio_yaml import dump, find, label, move, parse
from .web import bp, render

OPS = ("sec_up", "sec_down", "sec_add", "sec_save", "sec_remove", "fld_up", "fld_down", "fld_to", "fld_rules")


def _form_of(eid: str) -> tuple[str, dict, dict]:
    """(path, form data, entity data); an entity without a form file starts from one section of all fields."""
    _epath, entity = text_of("entity", eid)
    ws = files()
    path = find(ws, "form", eid)
    if path is not None:
        return path, parse(ws[path], path), entity
    fields = [f for f, s in (entity.get("fields") or {}).items() if not (isinstance(s, dict) and s.get("compute"))]
    data = {"form": eid, "entity": eid,
            "sections": [{"title": {"en": "Details", "zh": "详情"}, "columns": 2, "fields": fields}]}
    return f"forms/{eid}.yaml", data, entity


def check_expression(expr: str, names: list[str]) -> dict:
    """{ok, message, unknown}: parse with the engine's rule language; names must be the entity's fields
    (a link's field with a dot: `<link field>.<its field>`)."""
    expr = (expr or "").strip()
    if not expr:
        return {"ok": True, "message": "", "unknown": [], "empty": True}
    try:
        used = rules.names_used(expr)
    except RuleError as e:
        return {"ok": False, "message": str(e), "unknown": []}
    unknown = sorted(n for n in used if n.split(".")[0] not in names)
    return {"ok": not unknown, "message": "", "unknown": unknown}


def _page(eid, path, data, entity, problems=None, status=200):
    placed = {f for s in data.get("sections") or [] for f in s.get("fields") or []}
    names = list((entity.get("fields") or {}))
    return render("studio/form.html", status=status, eid=eid, path=path, data=data, entity=entity,
                  names=names, unplaced=[n for n in names if n not in placed], problems=problems or [],
                  rules_of=data.get("fields") or {}, in_draft=path in drafts())


@bp.get("/admin/forms/<eid>")
@login_required
def studio_form(eid):
    admin()
    path, data, entity = _form_of(eid)
    return _page(eid, path, data, entity)


def _int(name: str, upper: int) -> int:
    raw = request.form.get(name, "")
    if not raw.isdigit() or int(raw) >= upper:
        raise BadRequest(_("Choose a section of the form."))
    return int(raw)


def _apply_op(op: str, data: dict, names: list[str]) -> dict:
    sections = [dict(s) for s in data.get("sections") or []]
    for s in sections:
        s["fields"] = list(s.get("fields") or [])
    n = len(sections)
    field = request.form.get("field", "")
    if op in ("sec_up", "sec_down"):
        move(sections, _int("section", n), -1 if op == "sec_up" else 1)
    elif op == "sec_save":
        s = sections[_int("section", n)]
        s["title"] = label(request.form.get("title_en"), request.form.get("title_zh"), _("Section"))
        cols = request.form.get("columns", "1")
        s["columns"] = int(cols) if cols in ("1", "2", "3", "4") else 1
        vis = (request.form.get("visible_if") or "").strip()
        if vis:
            s["visible_if"] = vis
        else:
            s.pop("visible_if", None)
    elif op == "sec_remove":
        i = _int("section", n)
        if n == 1:
            raise BadRequest(_("A form keeps at least one section."))
        gone = sections.pop(i)
        sections[max(0, i - 1)]["fields"] += gone["fields"]
    elif op in ("sec_add", "fld_to"):
        if field not in names:
            raise BadRequest(_("Choose a field of the entity."))
        for s in sections:
            if field in s["fields"]:
                s["fields"].remove(field)
        if op == "sec_add":
            sections.append({"title": label(request.form.get("title_en"), request.form.get("title_zh"), _("Section")),
                             "columns": 2, "fields": [field]})
        else:
            sections[_int("section", n)]["fields"].append(field)
        sections = [s for s in sections if s["fields"]]
    elif op in ("fld_up", "fld_down"):
        s = sections[_int("section", n)]
        if field in s["fields"]:
            move(s["fields"], s["fields"].index(field), -1 if op == "fld_up" else 1)
    elif op == "fld_rules":
        if field not in names:
            raise BadRequest(_("Choose a field of the entity."))
        overrides = dict(data.get("fields") or {})
        rule = dict(overrides.get(field) or {})
        for key in ("visible_if", "required_if"):
            value = (request.form.get(key) or "").strip()
            if value:
                rule[key] = value
            else:
                rule.pop(key, None)
        if rule:
            overrides[field] = rule
        else:
            overrides.pop(field, None)
        data = {**data, "fields": overrides}
        if not overrides:
            data.pop("fields")
    out = {k: v for k, v in data.items() if k != "fields"}
    out["sections"] = sections
    if data.get("fields"):
        out["fields"] = data["fields"]
    return out


@bp.post("/admin/forms/<eid>")
@login_required
def studio_form_edit(eid):
    admin()
    path, data, entity = _form_of(eid)
    op = request.form.get("op", "")
    if op not in OPS:
        raise BadRequest(_("Unknown change."))
    new = _apply_op(op, data, list(entity.get("fields") or {}))
    problems = save(path, dump(new))
    if problems:
        return _page(eid, path, data, entity, problems=problems, status=422)
    flash(_("Draft saved: review and apply it under Changes."), "success")
    return redirect(url_for("ui.studio_form", eid=eid))


@bp.post("/admin/check/rule")
@login_required
def studio_rule_check():
    admin()
    eid = request.form.get("entity", "")
    _path, entity = text_of("entity", eid)
    names = list(entity.get("fields") or {})
    which = request.form.get("which", "expr")
    expr = request.form.get(which if which in ("visible_if", "required_if", "when", "expr") else "expr") or ""
    if len(expr) > rules.MAX_EXPR_LENGTH:
        expr = expr[: rules.MAX_EXPR_LENGTH + 1]
    return render("studio/_rule_check.html", result=check_expression(expr, names), names=names)
