"""Studio: the permissions designer (/admin/permissions): per role, a grid of entities × actions and
the row scope, written into access.yaml as section 15 of docs/config-reference.md has it.

Only `permissions` and the plain scopes (own, team, region, all) of the role shown are rewritten;
`hidden`, `readonly`, `audit_readers`, `{via: …}` / `{match: …}` scopes and other roles stay as
they are. A row that differs from the role's "every other entity" row gets its own line; a line
the file had already is kept.
"""
from __future__ import annotations

import re

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine.access import ACTIONS, ANY_ENTITY, DEFAULT_ACTIONS
from engine.errors import BadRequest

from .access_view import action_labels, scope_labels
from .studio_base import admin, drafts, files, save
from .studio_yaml import EditError, dump, listing, parse
from .web import bp, config, render

PATH = "access.yaml"
SCOPES = ("own", "team", "region", "all")
ALL_KEY = "_all"          # the form's name for the "*" row (every entity the role does not list)


def _data() -> dict:
    text = files().get(PATH)
    if not text:
        return {}
    try:
        data = parse(text, PATH)
    except EditError as e:
        raise BadRequest(e.message) from None
    return data if isinstance(data, dict) else {}


def _roles(data: dict) -> list[tuple[str, object]]:
    pack = config().pack
    out = [(r, lbl) for r, lbl in (pack.roles if pack else ()) if r != "admin"]
    known = {r for r, _l in out}
    for section in ("permissions", "scopes"):
        for r in data.get(section) or {}:
            if r not in known and r != "admin":
                out.append((r, None))
                known.add(r)
    return out


def _entities() -> list[tuple[str, object]]:
    return [(eid, d.get("label")) for eid, _p, d in listing(files(), "entity") if not d.get("child")]


def grid(data: dict, role: str, entities: list) -> list[dict]:
    """Rows of the grid: the "*" row, then one per entity, with the actions the role has there."""
    perms = (data.get("permissions") or {}).get(role)
    scopes = (data.get("scopes") or {}).get(role) or {}
    listed = isinstance(perms, dict)
    star = set(perms.get(ANY_ENTITY) or ()) if listed else set(DEFAULT_ACTIONS)
    rows = [{"key": ALL_KEY, "id": ANY_ENTITY, "label": None, "actions": star, "own_line": listed and
             ANY_ENTITY in perms, "scope": None}]
    for eid, lbl in entities:
        own = listed and eid in perms
        acts = set(perms.get(eid) or ()) if own else star
        rows.append({"key": eid, "id": eid, "label": lbl, "actions": acts, "own_line": own,
                     "scope": scopes.get(eid)})
    return rows


def _posted(key: str) -> list[str]:
    return [a for a in request.form.getlist("act_" + key) if a]


def apply(data: dict, role: str, entities: list) -> dict:
    """access.yaml's data with the role's permissions and plain scopes from the posted grid."""
    old_perms = (data.get("permissions") or {}).get(role)
    listed = isinstance(old_perms, dict)
    star = _posted(ALL_KEY)
    order = {a: i for i, a in enumerate(ACTIONS)}
    ordered = lambda acts: sorted(dict.fromkeys(acts), key=lambda a: order.get(a, len(order)))   # noqa: E731
    lines = {}
    if star or (listed and ANY_ENTITY in old_perms):
        lines[ANY_ENTITY] = ordered(star)
    for eid, _l in entities:
        acts = _posted(eid)
        if (listed and eid in old_perms) or set(acts) != set(star):
            lines[eid] = ordered(acts)
    if listed:            # lines of entities the grid does not show (e.g. child entities) are kept
        lines.update({k: v for k, v in old_perms.items() if k not in lines and k != ANY_ENTITY
                      and k not in dict(entities)})
    unchanged_default = not listed and set(star) == set(DEFAULT_ACTIONS) and \
        all(set(v) == set(DEFAULT_ACTIONS) for v in lines.values())
    out = dict(data)
    perms = dict(data.get("permissions") or {})
    if unchanged_default:
        perms.pop(role, None)
    else:
        perms[role] = lines
    role_scopes = dict((data.get("scopes") or {}).get(role) or {})
    for eid, _l in entities:
        value = (request.form.get("scope_" + eid) or "").strip()
        if value == "keep":
            continue
        if value:
            role_scopes[eid] = value
        else:
            role_scopes.pop(eid, None)
    scopes = dict(data.get("scopes") or {})
    if role_scopes:
        scopes[role] = role_scopes
    else:
        scopes.pop(role, None)
    for key, value in (("permissions", perms), ("scopes", scopes)):
        if value:
            out[key] = value
        else:
            out.pop(key, None)
    first = ("permissions", "scopes", "hidden", "readonly", "audit_readers")
    return {**{k: out[k] for k in first if k in out}, **{k: v for k, v in out.items() if k not in first}}


PROBLEM_KEY = re.compile(r"(?P<section>permissions|scopes)\.(?P<role>[a-z][a-z0-9_]*)"
                         r"(?:\.(?P<entity>\*|[a-z][a-z0-9_]*))?")


def split_problems(problems: list[str], role: str) -> tuple[dict, list[str]]:
    """({row key: message}, the rest): a message about this role's entity goes beside its row."""
    errors: dict = {}
    rest = []
    for p in problems:
        m = PROBLEM_KEY.search(p)
        if not m or m["role"] != role or not m["entity"]:
            rest.append(p)
            continue
        key = ALL_KEY if m["entity"] == ANY_ENTITY else m["entity"]
        msg = p[m.start("section"):]
        errors[key] = (errors[key] + " " + msg) if key in errors else msg
    return errors, rest


def _page(data, role, roles, entities, rows=None, errors=None, problems=None, status=200):
    return render("studio/access.html", status=status, role=role, roles=roles, rows=rows or grid(data, role, entities),
                  actions=ACTIONS, action_labels=action_labels(), scope_labels=scope_labels(), scopes=SCOPES,
                  errors=errors or {}, problems=problems or [], path=PATH, in_draft=PATH in drafts(),
                  kept=[k for k in ("hidden", "readonly", "audit_readers") if data.get(k)], all_key=ALL_KEY)


def _role(roles) -> str:
    role = (request.values.get("role") or "").strip()
    ids = [r for r, _l in roles]
    if not role:
        return ids[0] if ids else ""
    if role not in ids:
        raise BadRequest(_("Choose one of the roles."))
    return role


@bp.route("/admin/permissions", methods=["GET", "POST"])
@login_required
def studio_access():
    admin()
    data = _data()
    roles = _roles(data)
    role = _role(roles)
    entities = _entities()
    if request.method == "GET" or not role:
        return _page(data, role, roles, entities)
    new = apply(data, role, entities)
    problems = save(PATH, dump(new))
    if problems:
        errors, rest = split_problems(problems, role)
        return _page(data, role, roles, entities, rows=grid(new, role, entities), errors=errors, problems=rest,
                     status=422)
    flash(_("Permissions of %(role)s changed.", role=role) + " "
          + _("Draft saved: review and apply it under Changes."), "success")
    return redirect(url_for("ui.studio_access", role=role))
