"""The administrator's "view as" page `/admin/access?user=NAME` (H1, H3, H4): for one user, per
entity, what each action, scope and field rule gives and which role it comes from. The figures
come from the same policy object that filters every query (platform_/access_explain.py)."""
from __future__ import annotations

from flask import request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine.access import ACTIONS, role_label
from engine.errors import Forbidden, NotFound
from platform_.access_explain import explain
from platform_.auth import list_users

from .web import bp, config, lang, render, runtime


def action_labels() -> dict:
    return {"read": _("Read"), "create": _("Create"), "update": _("Edit"), "delete": _("Delete"),
            "export": _("Export"), "import": _("Import"), "assign": _("Assign"), "admin": _("Recycle bin")}


def scope_labels() -> dict:
    return {"own": _("own records"), "team": _("team's records (with sub-teams)"),
            "region": _("region's records"), "all": _("all records")}


def _role_text(role: str, lng: str) -> str:
    base = role.replace(" (default)", "")
    text = role_label(config(), base, lng) if base and base != "-" else _("no role")
    return text + (" " + _("(default)") if role.endswith("(default)") else "")


def _scope_text(entity, scope: str, lng: str) -> str:
    if scope.startswith("match "):
        who = {"me": _("the user"), "my_team": _("the user's team"), "my_region": _("the user's region")}
        parts = []
        for pair in scope[6:].split(", "):
            fid, _eq, w = pair.partition("=")
            f = entity.fields.get(fid)
            parts.append(_("%(field)s is %(who)s", field=f.label_text(lng) if f else fid, who=who.get(w, w)))
        return _("records where %(rule)s", rule=("，" if lng == "zh" else ", ").join(parts))
    if scope.startswith("via "):
        f = entity.fields.get(scope[4:])
        return _("records whose %(field)s is visible", field=f.label_text(lng) if f else scope[4:])
    return scope_labels().get(scope, scope)


@bp.get("/admin/access")
@login_required
def admin_access():
    if not current_user.actor.is_admin:
        raise Forbidden(_("Only an administrator may see what another user may do."))
    lng = lang()
    people = [u for u in list_users(runtime().engine)]
    name = (request.args.get("user") or "").strip()
    view = None
    if name:
        try:
            view = explain(runtime(), name, lng)
        except NotFound:
            raise NotFound(_("There is no user %(name)s.", name=name)) from None
        ents = {e.id: e for e in config().entities.values()}
        for row in view["entities"]:
            e = ents[row["entity"]]
            row["cells"] = [(a, [_role_text(r, lng) for r in row["actions"].get(a, [])]) for a in ACTIONS]
            row["scope_text"] = [(_role_text(s["role"], lng), _scope_text(e, s["scope"], lng)) for s in row["scope"]]
            row["hidden_text"] = [(e.fields[f].label_text(lng) if f in e.fields else f,
                                   [_role_text(r, lng) for r in rs]) for f, rs in row["hidden"].items()]
            row["readonly_text"] = [(e.fields[f].label_text(lng) if f in e.fields else f,
                                     [_role_text(r, lng) for r in rs]) for f, rs in row["readonly"].items()]
        view["role_text"] = [_role_text(r, lng) for r in view["user"]["roles"]] or [_("no role")]
    return render("access.html", people=people, name=name, view=view, actions=ACTIONS, action_labels=action_labels())
