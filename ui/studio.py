"""The admin studio (/admin): home and the entity designer; the other designers, the raw YAML
editor and Draft → Plan → Apply / History are in ui/studio_*.py (imported at the bottom).

Every change is a draft (platform_/studio_drafts.py) of the same YAML file a person would write; it is
checked with the configstore plan as it is made, and applied only from /admin/changes.
"""
from __future__ import annotations

import yaml
from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine import yamlio

from .studio_base import admin, drafts, files, save, text_of
from . import studio_fieldkeys as fieldkeys
from .studio_yaml import FIELD_TYPES, EditError, dump, find, ident, label, listing, move_key, parse
from .web import bp, config, lang, render

NEW_FIELD_TYPES = tuple(t for t in FIELD_TYPES if t not in ("state", "table"))
FIELD_KEYS = ("id", "type", "label_en", "label_zh", "required", "default", "options", "to", "index", "searchable")


def _label_parts(lbl) -> tuple[str, str]:
    if isinstance(lbl, dict):
        return str(lbl.get("en") or ""), str(lbl.get("zh") or "")
    return (str(lbl) if lbl else ""), ""


def options_text(options) -> str:
    lines = []
    for o in options or ():
        if isinstance(o, dict):
            en, zh = _label_parts(o.get("label"))
            lines.append(" | ".join(x for x in (str(o.get("value", "")), en, zh) if x != "") if en or zh
                         else str(o.get("value", "")))
        else:
            lines.append(str(o))
    return "\n".join(lines)


def parse_options(text: str, old=None) -> list:
    """One option a line: `value` or `value | English | 中文`; an existing option keeps its colour."""
    colours = {str(o.get("value")): o.get("color") for o in old or () if isinstance(o, dict) and o.get("color")}
    out = []
    for line in (text or "").splitlines():
        parts = [p.strip() for p in line.split("|")]
        if not parts[0]:
            continue
        value = parts[0]
        if len(parts) > 1 and any(parts[1:]):
            opt = {"value": value, "label": label(parts[1], parts[2] if len(parts) > 2 else "", value)}
            if colours.get(value):
                opt["color"] = colours[value]
            out.append(opt)
        elif colours.get(value):
            out.append({"value": value, "color": colours[value]})
        else:
            out.append(value)
    return out


def _default(text: str):
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = yaml.load(text, Loader=yamlio.StrictLoader)  # noqa: S506 - the engine's safe loader
    except yaml.YAMLError:
        return text
    if isinstance(value, (dict, list)):
        raise EditError(_("A default is one value, not a list or a mapping."), "default")
    return value


def scalar_text(value) -> str:
    """A default as the admin types it (YAML spelling: true, not Python's True)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_rows(data: dict) -> list[dict]:
    rows = []
    for fid, spec in (data.get("fields") or {}).items():
        spec = spec if isinstance(spec, dict) else {}
        en, zh = _label_parts(spec.get("label"))
        opts = spec.get("options") or []
        rows.append({"id": fid, "type": spec.get("type", ""), "en": en, "zh": zh,
                     "required": bool(spec.get("required")), "default": scalar_text(spec.get("default")),
                     "options": ", ".join(str(o.get("value") if isinstance(o, dict) else o) for o in opts),
                     "to": spec.get("to") or spec.get("of") or "", "index": bool(spec.get("index")),
                     "searchable": bool(spec.get("searchable")), "encrypted": bool(spec.get("encrypted")),
                     "computed": bool(spec.get("compute"))})
    return rows


def _field_spec(form, old: dict | None) -> dict:
    """The YAML mapping of a field from the designer's form (an edit keeps the keys it does not show)."""
    spec = dict(old or {})
    ftype = spec.get("type") if old else (form.get("type") or "").strip()
    if not old:
        if ftype not in NEW_FIELD_TYPES:
            raise EditError(_("Choose the type of the field."), "type")
        spec["type"] = ftype
    spec["label"] = label(form.get("label_en"), form.get("label_zh"), form.get("id") or "")
    for flag in ("required", "index", "searchable"):
        if form.get(flag):
            spec[flag] = True
        else:
            spec.pop(flag, None)
    default = _default(form.get("default"))
    if default is None:
        spec.pop("default", None)
    else:
        spec["default"] = default
    if ftype in ("select", "multiselect"):
        opts = parse_options(form.get("options"), spec.get("options"))
        if not opts:
            raise EditError(_("A choice field needs at least one option."), "options")
        spec["options"] = opts
    if ftype == "link" and not old:
        spec["to"] = ident(form.get("to"), _("The linked entity"), "to")
    order = ("type", "label", "required", "default", "options", "to")
    return {**{k: spec[k] for k in order if k in spec}, **{k: v for k, v in spec.items() if k not in order}}


# ---- home -------------------------------------------------------------------------------------
@bp.get("/admin")
@login_required
def studio_home():
    admin()
    ws = files()
    entities = listing(ws, "entity")
    workflows = listing(ws, "workflow")
    return render("studio/home.html", entities=entities, workflows=workflows, drafts=drafts(),
                  paths=sorted(ws))


# ---- entity designer ---------------------------------------------------------------------------
def _entity_page(eid, path, data, values=None, errors=None, problems=None, status=200, editing=None):
    ws_entities = [e for e, _p, _d in listing(files(), "entity")]
    return render("studio/entity.html", status=status, eid=eid, path=path, data=data, rows=field_rows(data),
                  types=NEW_FIELD_TYPES, entities=ws_entities, values=values or {}, errors=errors or {},
                  problems=problems or [], editing=editing, options_text=options_text,
                  label_parts=_label_parts, in_draft=path in drafts())


@bp.get("/admin/entities/<eid>")
@login_required
def studio_entity(eid):
    admin()
    path, data = text_of("entity", eid)
    return _entity_page(eid, path, data)


def _commit(path, data, redo, what: str):
    """Save the edited data as a draft, or show the page again with the problems it would bring."""
    problems = save(path, dump(data))
    if problems:
        return redo(problems)
    flash(what + " " + _("Draft saved: review and apply it under Changes."), "success")
    return None


@bp.post("/admin/entities/<eid>/fields")
@login_required
def studio_field_add(eid):
    admin()
    path, data = text_of("entity", eid)
    form = {k: request.form.get(k, "") for k in FIELD_KEYS}
    fields = data.get("fields") or {}

    def again(errors=None, problems=None):
        return _entity_page(eid, path, data, values=form, errors=errors, problems=problems, status=422)
    try:
        fid = ident(form["id"], _("The field id"))
        if fid in fields:
            raise EditError(_("There is already a field %(id)s.", id=fid), "id")
        spec = _field_spec(form, None)
    except EditError as e:
        return again(errors={e.field or "id": e.message})
    new = {**data, "fields": {**fields, fid: spec}}
    return _commit(path, new, lambda p: again(problems=p), _("Field %(id)s added.", id=fid)) \
        or redirect(url_for("ui.studio_entity", eid=eid) + "#fields")


def _field_choices(data: dict, spec: dict) -> dict:
    """The lists the field editor offers: this entity's fields and the linked entity's (link fields)."""
    here = [(f, s.get("label") if isinstance(s, dict) else None) for f, s in (data.get("fields") or {}).items()]
    linked = []
    target = spec.get("to") if fieldkeys.kind_of(spec) == "link" else None
    if target:
        tpath = find(files(), "entity", target)
        if tpath:
            try:
                tdata = parse(files()[tpath], tpath)
            except EditError:
                tdata = {}
            linked = [(f, s.get("label") if isinstance(s, dict) else None)
                      for f, s in (tdata.get("fields") or {}).items()
                      if not (isinstance(s, dict) and s.get("type") == "table")]
    return {"here": here, "linked": linked, "target": target, "offered": fieldkeys.offered(spec),
            "currencies": fieldkeys.CURRENCIES}


@bp.route("/admin/entities/<eid>/fields/<fid>", methods=["GET", "POST"])
@login_required
def studio_field_edit(eid, fid):
    admin()
    path, data = text_of("entity", eid)
    fields = data.get("fields") or {}
    if fid not in fields or not isinstance(fields[fid], dict):
        flash(_("There is no field %(id)s.", id=fid), "error")
        return redirect(url_for("ui.studio_entity", eid=eid))
    old = fields[fid]
    choices = _field_choices(data, old)
    if request.method == "GET":
        en, zh = _label_parts(old.get("label"))
        values = {"id": fid, "label_en": en, "label_zh": zh, "required": old.get("required"),
                  "default": scalar_text(old.get("default")),
                  "options": options_text(old.get("options")), "index": old.get("index"),
                  "searchable": old.get("searchable"), **fieldkeys.values_from_spec(old)}
        return render("studio/field_edit.html", eid=eid, fid=fid, spec=old, values=values, errors={}, problems=[],
                      choices=choices)
    form = {k: request.form.get(k, "") for k in FIELD_KEYS}
    form["id"] = fid
    shown = {**form, **fieldkeys.values_from_form(request.form)}

    def again(errors=None, problems=None):
        return render("studio/field_edit.html", status=422, eid=eid, fid=fid, spec=old, values=shown,
                      errors=errors or {}, problems=problems or [], choices=choices)
    try:
        spec = fieldkeys.apply(_field_spec(form, old), request.form)
    except EditError as e:
        return again(errors={e.field or "label_en": e.message})
    new = {**data, "fields": {**fields, fid: spec}}
    inputs = set(fieldkeys.KEYS) | {"default", "options", "required", "index", "searchable"}

    def refused(problems):
        errors, rest = fieldkeys.split_problems(problems, fid, inputs)
        return again(errors=errors, problems=rest)
    return _commit(path, new, refused, _("Field %(id)s changed.", id=fid)) \
        or redirect(url_for("ui.studio_entity", eid=eid) + "#fields")


@bp.post("/admin/entities/<eid>/fields/<fid>/move")
@login_required
def studio_field_move(eid, fid):
    admin()
    path, data = text_of("entity", eid)
    delta = -1 if request.form.get("direction") == "up" else 1
    new = {**data, "fields": move_key(dict(data.get("fields") or {}), fid, delta)}
    problems = save(path, dump(new))
    for p in problems:
        flash(p, "error")
    return redirect(url_for("ui.studio_entity", eid=eid) + "#fields")


@bp.post("/admin/entities/<eid>/fields/<fid>/remove")
@login_required
def studio_field_remove(eid, fid):
    admin()
    path, data = text_of("entity", eid)
    fields = dict(data.get("fields") or {})
    fields.pop(fid, None)
    problems = save(path, dump({**data, "fields": fields}))
    if problems:
        return _entity_page(eid, path, data, problems=problems, status=422)
    flash(_("Field %(id)s removed in the draft; the plan shows what happens to its data.", id=fid), "success")
    return redirect(url_for("ui.studio_entity", eid=eid) + "#fields")


@bp.route("/admin/entities/new", methods=["GET", "POST"])
@login_required
def studio_entity_new():
    admin()
    modules = [(m, lbl) for m, lbl in (config().pack.modules if config().pack else ())]
    if request.method == "GET":
        return render("studio/entity_new.html", values={"title_field": "name"}, errors={}, problems=[],
                      modules=modules)
    form = {k: request.form.get(k, "").strip() for k in
            ("id", "label_en", "label_zh", "module", "title_field", "title_en", "title_zh")}

    def again(errors=None, problems=None):
        return render("studio/entity_new.html", status=422, values=form, errors=errors or {},
                      problems=problems or [], modules=modules)
    try:
        eid = ident(form["id"], _("The entity id"))
        tf = ident(form["title_field"] or "name", _("The title field id"), "title_field")
        if any(e == eid for e, _p, _d in listing(files(), "entity")):
            raise EditError(_("There is already an entity %(id)s.", id=eid), "id")
        if form["module"] and form["module"] not in {m for m, _l in modules}:
            raise EditError(_("Choose one of the modules."), "module")
    except EditError as e:
        return again(errors={e.field or "id": e.message})
    path = f"entities/{eid}.yaml"
    if path in files():
        return again(errors={"id": _("The file %(path)s exists already.", path=path)})
    lbl = label(form["label_en"], form["label_zh"], eid)
    data = {"entity": eid, "label": lbl, "plural": lbl}
    if form["module"]:
        data["module"] = form["module"]
    data["title"] = "{" + tf + "}"
    data["fields"] = {tf: {"type": "string", "required": True, "searchable": True, "in_list": True,
                           "label": label(form["title_en"], form["title_zh"], tf)}}
    problems = save(path, dump(data))
    if problems:
        return again(problems=problems)
    flash(_("Entity %(id)s drafted.", id=eid) + " " + _("Draft saved: review and apply it under Changes."), "success")
    return redirect(url_for("ui.studio_entity", eid=eid))


def lang_label(lbl, fallback=""):
    en, zh = _label_parts(lbl)
    return (zh or en or fallback) if lang() == "zh" else (en or fallback)


bp.add_app_template_filter(lang_label, "studio_label")

# their routes join bp
from . import studio_access, studio_changes, studio_forms, studio_workflows  # noqa: E402,F401
