"""The auditor's page `/audit` (H6): the audit log searched by user, action, entity, record and
dates, 50 entries a page, exported as CSV, and its hash chain verified on demand.

Administrators and the roles access.yaml names in `audit_readers` may open it (the check is
platform_.auditlog.require_reader, shared with GET /api/v1/audit); everyone else gets 403.
Entries are shown in the reader's words: full names, action and entity labels, field labels and
option labels (ui/records.py `shown_value`, as the record timeline does), without fields the reader
may not see.
"""
from __future__ import annotations

import datetime as dt
import math
import re

from flask import request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine import audit
from engine.errors import BadRequest
from platform_ import auditlog
from platform_.csvsafe import csv_response
from platform_.lookups import rows_by_id

from .automation import local_time, local_zone, page_links
from .records import shown_value
from .refs import user_names
from .web import actor, bp, config, is_htmx, lang, render, runtime, store

PER_PAGE = 50
MAX_ID = 2 ** 31
DETAIL_PART = re.compile(r"(\w+)=([^;]*)")


# ---- who may read -------------------------------------------------------------------------
def may_read_audit() -> bool:
    """For the navigation: is the signed-in user an audit reader?"""
    try:
        return bool(current_user.is_authenticated and auditlog.may_read(store(), current_user.actor))
    except Exception:  # noqa: BLE001 - a menu entry must never break a page
        return False


@bp.app_context_processor
def _audit_context():
    return {"may_read_audit": may_read_audit}


def _require_reader():
    auditlog.require_reader(store(), actor(), _("Only an administrator or an auditor may read the audit trail."))


# ---- words for codes ----------------------------------------------------------------------
def action_labels() -> dict:
    return {
        "create": _("Created"), "update": _("Changed"), "delete": _("Deleted"), "restore": _("Restored"),
        "transition": _("Status changed"), "signin": _("Signed in"), "signin_failed": _("Sign-in failed"),
        "signout": _("Signed out"), "config.reload": _("Configuration reloaded"),
        "config.reload_failed": _("Configuration reload refused"), "config.apply": _("Database schema changed"),
        "config.purge": _("Removed data purged"), "user.create": _("User created"), "user.update": _("User changed"),
        "user.roles": _("Roles changed"), "user.password": _("Password reset"), "user.disable": _("User disabled"),
        "user.enable": _("User enabled"), "user.transfer": _("Work handed over"),
        "token.create": _("API token created"), "token.revoke": _("API token revoked"),
        "team.create": _("Team created"), "team.update": _("Team changed"), "team.delete": _("Team deleted"),
        "region.create": _("Region created"), "region.update": _("Region changed"),
        "region.delete": _("Region deleted"),
    }


def system_entity_labels() -> dict:
    return {auditlog.USER_ENTITY: _("User"), "sys_team": _("Team"), "sys_region": _("Region")}


def key_labels() -> dict:
    """Labels of the keys that governance entries change (users, teams, the config)."""
    return dict(roles=_("Roles"), active=_("Active"), full_name=_("Full name"), email=_("E-mail"),
                language=_("Language"), manager=_("Manager"), team=_("Team"), region=_("Region"),
                digest=_("Configuration"), label_en=_("Label (English)"), label_zh=_("Label (Chinese)"),
                parent=_("Parent team"))


def reason_labels() -> dict:
    return {"wrong_password": _("wrong password"), "unknown_user": _("unknown user name"),
            "disabled": _("account disabled"),
            "locked_out_by_user": _("locked out: too many failed sign-ins for this user name"),
            "locked_out_by_address": _("locked out: too many failed sign-ins from this address"),
            "locked_out": _("locked out: too many failed sign-ins")}


def entity_label(eid: str | None) -> str:
    if not eid:
        return ""
    e = config().entities.get(eid)
    if e is not None:
        return e.label_text(lang())
    return system_entity_labels().get(eid, eid)


def _plain(value) -> str:
    if value in (None, "", []):
        return "∅"
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    text = str(value)
    return text if len(text) <= 60 else text[:59] + "…"


def change_lines(entry: dict, hidden: frozenset, names: dict) -> list[str]:
    """'Label: before → after' per changed field, in the reader's language, hidden fields left out."""
    lng = lang()
    e = config().entities.get(entry["entity"] or "")
    keys = key_labels()
    out = []
    for key, pair in (entry["changes"] or {}).items():
        if key in hidden:
            continue
        before, after = (list(pair) + [None, None])[:2] if isinstance(pair, (list, tuple)) else (None, pair)
        f = e.fields.get(key) if e is not None else None
        if f is not None and f.type != "table":
            out.append(f"{f.label_text(lng)}: {shown_value(f, before, names, lng)} → {shown_value(f, after, names, lng)}")
        elif key == "roles" and f is None:                    # a user's roles: their labels, not ids
            out.append(f"{keys['roles']}: {_roles(before, lng)} → {_roles(after, lng)}")
        else:
            label = f.label_text(lng) if f is not None else keys.get(key, key)
            out.append(f"{label}: {_plain(before)} → {_plain(after)}")
    return out


def _roles(value, lng: str) -> str:
    if not value:
        return "∅"
    from engine.access import role_label
    ids = value if isinstance(value, (list, tuple)) else [value]
    return ("、" if lng == "zh" else ", ").join(role_label(config(), r, lng) for r in ids)


def detail_text(entry: dict) -> str:
    """Sign-in details in the reader's words ('from 10.0.0.1 · wrong password'); others as logged."""
    detail = entry.get("detail") or ""
    if not entry["action"].startswith(("signin", "signout")):
        return detail
    parts = dict(DETAIL_PART.findall(detail))
    out = []
    if parts.get("address") and parts["address"] != "-":
        out.append(_("from %(address)s", address=parts["address"].strip()))
    if parts.get("reason"):
        out.append(reason_labels().get(parts["reason"].strip(), parts["reason"].strip()))
    return " · ".join(out) if out else detail


def when_text(at) -> str:
    t = local_time(at)
    return t.strftime("%Y-%m-%d %H:%M:%S") if t else ""


# ---- the records entries name ---------------------------------------------------------------
def record_refs(items) -> dict:
    """{(entity, id): {"title", "href"}}: the record's title, linked while the record is not deleted."""
    cfg = config()
    wanted: dict = {}
    for i in items:
        if i["record"] is not None and i["entity"] in cfg.entities:
            wanted.setdefault(i["entity"], set()).add(i["record"])
    out = {}
    for eid, ids in wanted.items():
        e = cfg.entities[eid]
        for r in rows_by_id(store(), e, ids):
            alive = "deleted_at" not in r or r["deleted_at"] is None
            out[(eid, r["id"])] = {"title": store().title(e, r), "deleted": not alive,
                                   "href": url_for("ui.record", entity=eid, rid=r["id"]) if alive and not e.child
                                   else None}
    return out


def rows_for(items) -> list[dict]:
    names = user_names()
    labels = action_labels()
    refs = record_refs(items)
    a = actor()
    hidden_by_entity: dict = {}
    out = []
    for i in items:
        e = config().entities.get(i["entity"] or "")
        if e is not None and e.id not in hidden_by_entity:
            hidden_by_entity[e.id] = store().hidden_fields(e, a)
        ref = refs.get((i["entity"], i["record"]))
        if ref is None and i["record"] is not None:
            title = names.get(i["record"]) if i["entity"] == auditlog.USER_ENTITY else None
            ref = {"title": title or f"#{i['record']}", "href": None, "deleted": False}
        out.append({"id": i["id"], "at": i["at"], "when": when_text(i["at"]),
                    "who": names.get(i["user_id"]) or i["user"] or "—", "action": i["action"],
                    "action_label": labels.get(i["action"], i["action"]), "entity": i["entity"],
                    "entity_label": entity_label(i["entity"]), "record": i["record"], "ref": ref,
                    "changes": change_lines(i, hidden_by_entity.get(i["entity"], frozenset()), names),
                    "detail": detail_text(i)})
    return out


# ---- filters ------------------------------------------------------------------------------
def _zone():
    return local_zone() or dt.datetime.now().astimezone().tzinfo


def read_filters(args) -> tuple[dict, dict, str | None]:
    """(engine filters, the form's values, an error message or None) from the query string."""
    form = {k: (args.get(k) or "").strip()[:64] for k in ("user", "action", "entity", "record", "since", "until")}
    filters: dict = {"entity": form["entity"] or None, "action": form["action"] or None}
    for key, target, what in (("user", "user_id", _("User")), ("record", "record_id", _("Record ID"))):
        raw = form[key]
        if raw and (not raw.isdigit() or not 0 < int(raw) <= MAX_ID):
            return {}, form, _("%(what)s: a whole number, not %(value)s.", what=what, value=raw)
        filters[target] = int(raw) if raw else None
    try:
        filters["since"], filters["until"] = auditlog.day_bounds(form["since"], form["until"], _zone())
    except BadRequest as e:
        if "ends before" in e.message:
            return {}, form, _("The date range ends before it starts.")
        key = "until" if e.message.startswith("until") else "since"
        return {}, form, _("%(what)s: a date YYYY-MM-DD, not %(value)s.",
                           what=_("To") if key == "until" else _("From"), value=form[key])
    return filters, form, None


def _page() -> int:
    try:
        return max(1, min(int(request.args.get("page") or 1), 10 ** 6))
    except ValueError:
        return 1


def choices() -> dict:
    """The filter form's options: users, the actions the platform writes, the config's entities and
    the system ones (no scan of the log, which may be large)."""
    ents = [e.id for e in config().entities.values() if not e.child] + list(system_entity_labels())
    return {"users": sorted(user_names().items(), key=lambda kv: kv[1].lower()),
            "actions": sorted(action_labels().items(), key=lambda kv: kv[1].lower()),
            "entities": sorted(((x, entity_label(x)) for x in ents), key=lambda kv: kv[1].lower())}


def _page_context(status: int = 200, verify: dict | None = None):
    filters, form, error = read_filters(request.args)
    page = _page()
    res = {"items": [], "total": 0}
    if error is None:
        res = audit.entries(runtime().engine, page=page, per_page=PER_PAGE, **filters)
        pages = max(1, math.ceil(res["total"] / PER_PAGE))
        if page > pages:
            page = pages
            res = audit.entries(runtime().engine, page=page, per_page=PER_PAGE, **filters)
    pages = max(1, math.ceil(res["total"] / PER_PAGE))
    query = {k: v for k, v in form.items() if v}

    def link(p):
        return url_for("ui.audit_page", **query, **({"page": p} if p > 1 else {}))

    return dict(rows=rows_for(res["items"]), total=res["total"], page=page, pages=pages,
                page_links=page_links(page, pages), link=link, form=form, error=error, choices=choices(),
                export_url=url_for("ui.audit_export", **query), verify=verify), (400 if error else status)


@bp.get("/audit")
@login_required
def audit_page():
    _require_reader()
    ctx, status = _page_context()
    resp = render("audit.html", "entries", status=status, **ctx)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/audit/export.csv")
@login_required
def audit_export():
    """The filtered entries as a CSV file (UTF-8 with BOM, cells safe from formulas), newest first."""
    _require_reader()
    filters, _form, error = read_filters(request.args)
    if error is not None:
        raise BadRequest(error)
    items = list(audit.each_entry(runtime().engine, auditlog.EXPORT_LIMIT, **filters))
    rows = []
    for start in range(0, len(items), 500):            # titles and labels looked up 500 entries at a time
        for r in rows_for(items[start:start + 500]):
            ref = r["ref"] or {}
            rows.append([r["when"], r["who"], r["action_label"], r["entity_label"], r["record"] or "",
                         ref.get("title") or "", "; ".join(r["changes"]), r["detail"]])
    header = [_("Time"), _("User"), _("Action"), _("Entity"), _("Record ID"), _("Record"), _("Changes"),
              _("Detail")]
    resp = csv_response(header, rows, "audit.csv")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def verify_result() -> dict:
    """audit.verify in the reader's words: intact, or the first bad entry."""
    ok, message, n = audit.verify(runtime().engine)
    if ok:
        return {"ok": True, "text": _("The audit log is intact: %(n)d entries checked.", n=n), "raw": message}
    m = re.search(r"entry #(\d+)", message)
    if m and "altered" in message:
        text = _("Entry #%(id)s was altered after it was written.", id=m.group(1))
    elif m:
        text = _("Entry #%(id)s does not follow the entry before it: an entry was removed or inserted.",
                 id=m.group(1))
    elif "removed" in message:
        text = _("The newest entries were removed: the log ends after %(n)d entries.", n=n)
    else:
        text = message
    return {"ok": False, "text": text, "raw": message, "entry": int(m.group(1)) if m else None}


@bp.post("/audit/verify")
@login_required
def audit_verify():
    _require_reader()
    result = verify_result()
    if is_htmx():
        return render("audit.html", "verify", verify=result)
    ctx, status = _page_context(verify=result)
    return render("audit.html", status=status, **ctx)
