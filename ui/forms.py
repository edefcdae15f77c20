"""Forms `/e/<entity>/new` and `/e/<entity>/<id>/edit`: widgets per field type, child-table rows
added and removed in place, computed fields and visible_if/required_if re-evaluated live, one
field validated on change and every error shown on save, with what the user typed kept."""
from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Mapping

from flask import abort, current_app, flash, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine import linkopts, rules, values
from engine.errors import Conflict, EngineError, RuleError, ValidationFailed
from engine.model import Entity, Field, FieldOverride, label_of
from engine.store import LazyRecord
from engine.store import msg as store_msg

from . import display
from .messages import localize_all
from .formspec import all_overrides, form_sections
from .pickers import fetched_inputs
from .refs import active_users, link_labels, state_labels, user_names
from .web import actor, bp, config, entity_or_404, hx_redirect, is_htmx, lang, render, runtime, store

READONLY_TYPES = ("autonumber", "state")


# ---- which fields a form edits ------------------------------------------------------------
def editable(f: Field, ov: FieldOverride | None = None) -> bool:
    return f.writable and not (ov and ov.readonly) and f.type not in READONLY_TYPES and not f.computed


def shown_fields(sections) -> list[Field]:
    seen, out = set(), []
    for s in sections:
        for f in s.fields:
            if f.id not in seen:
                seen.add(f.id)
                out.append(f)
    return out


# ---- values: record → inputs, request → inputs and store data ---------------------------------
def record_inputs(entity: Entity, rec: Mapping) -> dict:
    cfg = config()
    out = {}
    for f in entity.fields.values():
        if f.type == "table":
            child = cfg.entities[f.of]
            out[f.id] = [{cf.id: display.to_input(cf, row.get(cf.id)) for cf in child.user_fields}
                         for row in rec.get(f.id) or []]
        else:
            out[f.id] = display.to_input(f, rec.get(f.id))
    return out


def default_inputs(entity: Entity) -> dict:
    """Defaults of a new record as inputs (expressions like today() evaluated for the user)."""
    out = {}
    a = actor()
    for f in entity.user_fields:
        if f.default is None or f.computed or f.type == "table":
            continue
        d = f.default
        try:
            if isinstance(d, str) and rules.is_call_expression(d):
                d = rules.evaluate(d, {}, a.id)
            out[f.id] = display.to_input(f, values.coerce(f, d))
        except (ValueError, RuleError):
            continue
    if "owner" in entity.fields:
        out.setdefault("owner", str(a.id))
    return out


def _row_groups(form, table: Field, child: Entity) -> list[dict]:
    """Child rows from `table-<key>-<field>` inputs, in the order they appear in the form."""
    prefix = table.id + "-"
    rows: dict[str, dict] = {}
    for key in form.keys():
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        rkey, _sep, fid = rest.partition("-")
        if not fid or fid not in child.fields:
            continue
        row = rows.setdefault(rkey, {"_key": rkey})
        cf = child.fields[fid]
        row[fid] = form.getlist(key) if cf.value_type == "multiselect" else form.get(key, "")
    return list(rows.values())


def request_inputs(entity: Entity, fields: list[Field]) -> dict:
    """What the user typed, as inputs to show again (uploads are stored and kept as references)."""
    form = request.form
    out = {}
    for f in fields:
        t = f.value_type
        if f.type == "table":
            child = config().entities[f.of]
            out[f.id] = _row_groups(form, f, child)
        elif t == "multiselect":
            out[f.id] = form.getlist(f.id)
        elif t == "boolean":
            got = form.getlist(f.id)
            out[f.id] = "true" if "true" in got else ("false" if got else "")
        elif t == "attachment":
            out[f.id] = _attachment_input(f)
        elif t == "link":
            out[f.id] = form.get(f.id, "")
            out["_lk_" + f.id] = form.get("_lk_" + f.id, "")
        else:
            out[f.id] = form.get(f.id, "")
    return out


def _attachment_input(f: Field):
    """The attachment as it should be after this request: a new upload, the kept one, or removed."""
    upload = request.files.get(f.id)
    if upload is not None and upload.filename:
        data = upload.read()
        try:
            ref = runtime().attachments.put(upload.filename, data, upload.mimetype, f.max_size_mb)
        except ValueError as e:
            return {"_error": str(e)}
        from .files import remember_upload
        remember_upload(ref["sha256"])      # the form shown again links the file before it is saved
        return ref
    if request.form.get("_remove_" + f.id):
        return ""
    kept = request.form.get("_att_" + f.id)
    if kept:
        try:
            ref = json.loads(kept)
            if isinstance(ref, dict) and runtime().attachments.path(str(ref.get("sha256", ""))).exists():
                return {k: ref[k] for k in ("name", "sha256", "size", "mime") if k in ref}
        except (ValueError, TypeError):
            pass
    return None  # untouched


def coerce_inputs(entity: Entity, inputs: dict) -> tuple[dict, dict]:
    """(coerced values, errors) of the inputs; rows are coerced per field too."""
    cfg = config()
    out, errors = {}, {}
    for fid, raw in inputs.items():
        f = entity.fields.get(fid)
        if f is None:
            continue
        if f.type == "table":
            child = cfg.entities[f.of]
            rows = []
            for i, row in enumerate(raw):
                crow = {}
                for cf in child.user_fields:
                    try:
                        crow[cf.id] = values.coerce(cf, row.get(cf.id)) if not cf.computed else None
                    except ValueError as e:
                        crow[cf.id] = None
                        errors[f"{f.id}.{i}.{cf.id}"] = str(e)
                rows.append(crow)
            out[fid] = rows
            continue
        if isinstance(raw, dict) and "_error" in raw:
            errors[fid] = raw["_error"]
            out[fid] = None
            continue
        try:
            out[fid] = values.coerce(f, raw)
        except ValueError as e:
            out[fid] = None
            errors[fid] = str(e)
    return out, errors


# ---- live evaluation: computed fields, visible_if, required_if --------------------------------
def _linked(f: Field, rid) -> LazyRecord:
    def load():
        try:
            if f.value_type == "user":
                return {"id": rid, "name": user_names().get(rid)}
            return store().get(f.to, rid, actor())
        except EngineError:
            return {}
    return LazyRecord(load)


def names_of(entity: Entity, vals: dict) -> dict:
    names = {f: vals.get(f) for f in entity.fields}
    for f in entity.fields.values():
        if f.value_type in ("link", "user") and vals.get(f.id) is not None:
            names[f.id] = _linked(f, vals[f.id])
    return names


def _eval(expr: str, entity: Entity, vals: dict, default=None):
    try:
        return rules.evaluate(expr, names_of(entity, vals), actor().id)
    except RuleError:
        return default


def compute(entity: Entity, vals: dict) -> dict:
    """Fill computed fields (child rows first) like the store does, errors becoming empty values."""
    cfg = config()
    for f in entity.table_fields:
        child = cfg.entities[f.of]
        for row in vals.get(f.id) or []:
            for cf in child.user_fields:
                if cf.computed:
                    v = _eval(cf.compute, child, row)
                    try:
                        row[cf.id] = values.coerce(cf, v) if v is not None else None
                    except ValueError:
                        row[cf.id] = None
    for f in entity.user_fields:
        if f.computed and f.stored:
            v = _eval(f.compute, entity, vals)
            try:
                vals[f.id] = values.coerce(f, v) if v is not None else None
            except ValueError:
                vals[f.id] = None
    return vals


def form_state(entity: Entity, sections, vals: dict) -> dict:
    """Which sections and fields are hidden and which are required, for these values."""
    hidden_sections = {s.key for s in sections if s.visible_if and not _eval(s.visible_if, entity, vals, True)}
    hidden, required = set(), set()
    for fid, ov in all_overrides(sections).items():
        if ov.visible_if and not _eval(ov.visible_if, entity, vals, True):
            hidden.add(fid)
        if ov.required_if and _eval(ov.required_if, entity, vals, False):
            required.add(fid)
    for s in sections:
        if s.key in hidden_sections:
            hidden.update(f.id for f in s.fields)
    for f in entity.user_fields:
        if f.required and not f.computed and f.type not in READONLY_TYPES:
            required.add(f.id)
    return {"hidden_sections": hidden_sections, "hidden": hidden, "required": required - hidden}


def local_errors(entity: Entity, fields: list[Field], vals: dict, coerce_errors: dict, state: dict,
                 creating: bool) -> dict:
    """Errors the form can tell without the database: types, limits, required, required_if."""
    cfg = config()
    lng = lang()
    errors = dict(coerce_errors)
    for f in fields:
        if f.id in errors or f.id in state["hidden"]:
            continue
        v = vals.get(f.id)
        if f.type == "table":
            child = cfg.entities[f.of]
            for i, row in enumerate(v or []):
                for cf in child.user_fields:
                    key = f"{f.id}.{i}.{cf.id}"
                    if key in errors or cf.computed:
                        continue
                    if cf.required and values.empty(row.get(cf.id)):
                        errors[key] = store_msg("required", lng)
                    elif (p := values.check_limits(cf, row.get(cf.id))):
                        errors[key] = p
            continue
        if f.id in state["required"] and values.empty(v) and editable(f):
            if not (f.value_type == "attachment" and v is None and not creating):
                errors[f.id] = store_msg("required", lng)
            continue
        if (p := values.check_limits(f, v)) and editable(f):
            errors[f.id] = p
    return errors


def store_data(entity: Entity, fields: list[Field], inputs: dict, overrides: dict, creating: bool) -> dict:
    """What goes to the store (mode='form'): editable fields; empty values left out on create so
    defaults apply; an untouched attachment left out so it is kept."""
    data = {}
    for f in fields:
        if not editable(f, overrides.get(f.id)):
            continue
        raw = inputs.get(f.id)
        if f.type == "table":
            child = config().entities[f.of]
            data[f.id] = [{k: v for k, v in row.items() if k in child.fields and editable(child.fields[k])
                           and not (creating and values.empty(v))} for row in raw or []
                          if any(not values.empty(v) for k, v in row.items() if k != "_key")]
            continue
        if f.value_type == "attachment" and raw is None:
            continue
        if creating and values.empty(raw):
            continue
        data[f.id] = raw
    return data


def drop_blank_rows(entity: Entity, inputs: dict) -> dict:
    for f in entity.table_fields:
        if f.id in inputs:
            inputs[f.id] = [r for r in inputs[f.id] if any(not values.empty(v) for k, v in r.items() if k != "_key")]
    return inputs


# ---- rendering ---------------------------------------------------------------------------------
def render_form(entity: Entity, inputs: dict, errors: dict, rec: dict | None, status=200, conflict=None,
                dialog=False, vals=None):
    lng = lang()
    cfg = config()
    sections = form_sections(cfg, entity, lng, store().hidden_fields(entity, actor()),
                             store().readonly_fields(entity, actor()))
    fields = shown_fields(sections)
    if vals is None:
        vals, _errs = coerce_inputs(entity, inputs)
    compute(entity, vals)
    for f in entity.table_fields:  # computed cells of the rows show what the server computed
        child = cfg.entities[f.of]
        for row_in, row in zip(inputs.get(f.id) or [], vals.get(f.id) or []):
            for cf in child.user_fields:
                if cf.computed:
                    row_in[cf.id] = row.get(cf.id)
    state = form_state(entity, sections, vals)
    link_titles = {}
    for f in fields:
        if f.value_type == "link" and inputs.get(f.id):
            if inputs.get("_lk_" + f.id):
                link_titles[f.id] = inputs["_lk_" + f.id]
            else:
                try:
                    link_titles[f.id] = link_labels(f, [inputs[f.id]], actor()).get(int(inputs[f.id]), "")
                except (ValueError, EngineError):
                    link_titles[f.id] = ""
    child_links = {}
    for f in entity.table_fields:
        child = cfg.entities[f.of]
        for cf in child.fields.values():
            if cf.value_type == "link":
                ids = {r.get(cf.id) for r in inputs.get(f.id) or [] if r.get(cf.id)}
                try:
                    child_links[(f.id, cf.id)] = link_labels(cf, ids) if ids else {}
                except (ValueError, EngineError):
                    child_links[(f.id, cf.id)] = {}
    errors = localize_all(errors, lng)
    if is_htmx() and status >= 400:
        status = 200  # htmx swaps only successful answers; the errors are in the fragment
    creating = rec is None
    readonly_text = {}
    states = state_labels(entity, lng)
    for f in fields:
        if f.type == "table" or f.computed or editable(f, all_overrides(sections).get(f.id)):
            continue
        v = rec.get(f.id) if rec else None
        if f.type == "state" and v is None:
            wf = cfg.workflows.get(f.workflow)
            v = wf.initial if wf else None
        readonly_text[f.id] = display.fmt(f, v, lng, states=states, users=user_names()) if v is not None else (
            _("assigned on save") if f.type == "autonumber" else "")
    action = url_for("ui.new_record", entity=entity.id) if creating else \
        url_for("ui.edit_record", entity=entity.id, rid=rec["id"])
    return render("form.html", "form", status=status, entity=entity, sections=sections, inputs=inputs,
                  errors=errors, rec=rec, vals=vals, state=state, link_titles=link_titles, child_links=child_links,
                  users=active_users(), editable=editable, action=action, readonly_text=readonly_text, conflict=conflict, dialog=dialog,
                  preview_url=url_for("ui.preview", entity=entity.id), new_key=new_row_key,
                  title=(store().title(entity, rec) if rec else None), overrides=all_overrides(sections),
                  child_entity=lambda f: cfg.entities[f.of], step_for=step_for, row_errors=_row_errors(errors),
                  form_label=_form_label(cfg, entity, lng))


def _form_label(cfg, entity: Entity, lng: str) -> str | None:
    """A form's own `label` heads the new-record page (e.g. "Register a customer")."""
    form = cfg.form_for(entity.id)
    return label_of(form.label, lng) if form is not None and getattr(form, "label", None) else None


def _row_errors(errors: dict) -> dict:
    """{table field: {row index: [messages]}} for messages the rows cannot show per cell."""
    out: dict = {}
    for k, v in errors.items():
        parts = k.split(".")
        if len(parts) == 2 and parts[1].isdigit():
            out.setdefault(parts[0], {}).setdefault(int(parts[1]), []).append(v)
    return out


def step_for(f: Field) -> str:
    if f.value_type == "integer":
        return "1"
    scale = f.scale if f.scale is not None else 2
    return "1" if scale <= 0 else "0." + "0" * (scale - 1) + "1"


def new_row_key() -> str:
    return "n" + secrets.token_hex(4)


def prefill_from_args(entity: Entity, inputs: dict) -> dict:
    """`/e/<entity>/new?field=value` prefills editable fields (a related list's "New", quick actions)."""
    for key, value in request.args.items():
        f = entity.fields.get(key)
        if f is None or f.type == "table" or not editable(f):
            continue
        inputs[key] = request.args.getlist(key) if f.value_type == "multiselect" else value
    return inputs


# ---- views -----------------------------------------------------------------------------------
def _save(entity: Entity, rec: dict | None):
    creating = rec is None
    dialog = bool(request.values.get("_dialog"))
    cfg = config()
    sections = form_sections(cfg, entity, lang(), store().hidden_fields(entity, actor()),
                             store().readonly_fields(entity, actor()))
    fields = shown_fields(sections)
    overrides = all_overrides(sections)
    inputs = drop_blank_rows(entity, request_inputs(entity, fields))
    if creating:  # what the picked links fetch, where the user left it empty (the browser does it live)
        inputs = linkopts.fill(store(), entity, inputs, actor())
    if rec is not None:
        for f in fields:  # an untouched attachment shows the current file again
            if f.value_type == "attachment" and inputs.get(f.id) is None:
                inputs[f.id] = display.to_input(f, rec.get(f.id))
    vals, coerce_errors = coerce_inputs(entity, inputs)
    if rec is not None:
        for f in entity.fields.values():
            vals.setdefault(f.id, rec.get(f.id))
    compute(entity, vals)
    state = form_state(entity, sections, vals)
    errors = local_errors(entity, fields, vals, coerce_errors, state, creating)
    if errors:
        return render_form(entity, inputs, errors, rec, status=422, dialog=dialog, vals=vals)
    data = store_data(entity, fields, inputs, overrides, creating)
    a = actor()
    try:
        if creating:
            saved = store().create(entity.id, data, a, mode="form")
        else:
            version = request.form.get("_overwrite") or request.form.get("version")
            saved = store().update(entity.id, rec["id"], data, a, mode="form", version=version)
    except ValidationFailed as e:
        return render_form(entity, inputs, e.fields, rec, status=422, dialog=dialog, vals=vals)
    except Conflict as e:
        current = e.current or {}
        who = user_names().get(current.get("updated_by")) or _("someone else")
        at = current.get("updated_at")
        conflict = {"who": who, "at": at.strftime("%Y-%m-%d %H:%M") if isinstance(at, dt.datetime) else at,
                    "version": current.get("version")}
        return render_form(entity, inputs, {}, rec, status=409, conflict=conflict, dialog=dialog, vals=vals)
    url = url_for("ui.record", entity=entity.id, rid=saved["id"])
    if dialog and is_htmx():
        resp = current_app.make_response(("", 204))
        title = store().title(entity, saved) or f"#{saved['id']}"
        told = (_("%(what)s “%(title)s” created.", what=entity.label_text(lang()), title=title) if creating
                else _("%(what)s “%(title)s” saved.", what=entity.label_text(lang()), title=title))
        resp.headers["HX-Trigger"] = json.dumps({"recordSaved": {"entity": entity.id, "id": saved["id"], "message": told}})
        return resp
    flash(_("Saved.") if not creating else _("Created."), "success")
    return hx_redirect(url)


@bp.route("/e/<entity>/new", methods=["GET", "POST"])
@login_required
def new_record(entity):
    e = entity_or_404(entity)
    store().check(e.id, "create", actor())      # a role without `create` gets the 403 page, not a form
    if request.method == "POST":
        return _save(e, None)
    inputs = fetched_inputs(e, prefill_from_args(e, default_inputs(e)), set(request.args))
    return render_form(e, inputs, {}, None, dialog=bool(request.args.get("_dialog")))


@bp.route("/e/<entity>/<int:rid>/edit", methods=["GET", "POST"])
@login_required
def edit_record(entity, rid):
    e = entity_or_404(entity)
    rec = store().get(e.id, rid, actor())
    store().check(e.id, "update", actor())
    if request.method == "POST":
        return _save(e, rec)
    return render_form(e, record_inputs(e, rec), {}, rec)


@bp.post("/e/<entity>/preview")
@login_required
def preview(entity):
    """Live re-evaluation: computed values, hidden/required fields and the changed field's error,
    answered as out-of-band swaps."""
    e = entity_or_404(entity)
    cfg = config()
    sections = form_sections(cfg, e, lang(), store().hidden_fields(e, actor()), store().readonly_fields(e, actor()))
    fields = shown_fields(sections)
    inputs = request_inputs_no_upload(e, fields)
    vals, coerce_errors = coerce_inputs(e, inputs)
    rid = request.form.get("_rid")
    if rid:
        try:
            rec = store().get(e.id, int(rid), actor())
            for f in e.fields.values():
                vals.setdefault(f.id, rec.get(f.id))
        except (ValueError, EngineError):
            pass
    compute(e, vals)
    state = form_state(e, sections, vals)
    changed = request.form.get("_changed") or ""
    errors = local_errors(e, fields, vals, coerce_errors, state, creating=not rid)
    checked = {}
    if changed:
        if "-" in changed:
            tf, rkey, cf = (changed.split("-") + ["", ""])[:3]
            rows = inputs.get(tf) or []
            idx = next((i for i, r in enumerate(rows) if r.get("_key") == rkey), None)
            if idx is not None:
                checked[changed] = errors.get(f"{tf}.{idx}.{cf}", "")
        elif changed in e.fields:
            checked[changed] = errors.get(changed, "")
    computed = []
    for f in e.user_fields:
        if f.computed and f.stored:
            computed.append((f"cf-{f.id}", display.fmt(f, vals.get(f.id), lang())))
    for f in e.table_fields:
        child = cfg.entities[f.of]
        for row_in, row in zip(inputs.get(f.id) or [], vals.get(f.id) or []):
            for cf in child.user_fields:
                if cf.computed:
                    computed.append((f"cf-{f.id}-{row_in.get('_key')}-{cf.id}", display.fmt(cf, row.get(cf.id), lang())))
    return render("_preview.html", computed=computed, state=state, checked=localize_all(checked, lang()))


def request_inputs_no_upload(entity: Entity, fields: list[Field]) -> dict:
    form = request.form
    out = {}
    for f in fields:
        if f.value_type == "attachment":
            continue
        if f.type == "table":
            out[f.id] = _row_groups(form, f, config().entities[f.of])
        elif f.value_type == "multiselect":
            out[f.id] = form.getlist(f.id)
        elif f.value_type == "boolean":
            got = form.getlist(f.id)
            out[f.id] = "true" if "true" in got else ("false" if got else "")
        else:
            out[f.id] = form.get(f.id, "")
    return out


@bp.get("/e/<entity>/row/<field>")
@login_required
def new_row(entity, field):
    """One empty child-table row, appended in place by htmx."""
    e = entity_or_404(entity)
    f = e.fields.get(field)
    if f is None or f.type != "table":
        abort(404)
    child = config().entities[f.of]
    row = {}
    for cf in child.user_fields:
        if cf.default is not None and not cf.computed:
            try:
                row[cf.id] = display.to_input(cf, values.coerce(cf, cf.default))
            except ValueError:
                pass
    return render("_row.html", entity=e, f=f, child=child, row=row, key=new_row_key(), errors={}, idx=None,
                  child_links={}, editable=editable, step_for=step_for, users=active_users())
