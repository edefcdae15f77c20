"""Administrator pages of the organisation: users (/admin/users: create, edit, reset a password,
disable, enable, hand their records to someone else), teams (a tree) and regions.

The work and the admin check are in platform_/org.py; here are forms, labels and messages.
"""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine.errors import Conflict, ValidationFailed
from engine.model import label_of
from platform_ import org

from .automation import when_text
from .web import actor, bp, config, lang, render, runtime

PER_PAGE = 25
FIELDS = ("username", "password", "full_name", "email", "manager", "team", "region", "language")


def _admin():
    a = actor()
    org.require_admin(a)
    return a


def _engine():
    return runtime().engine


def _units(kind: str) -> list[dict]:
    """Teams (as a tree, with `depth`) or regions, each with its label in the page's language."""
    rows = org.team_tree(_engine()) if kind == "team" else org.listing(_engine(), kind)
    for r in rows:
        r["label"] = org.label(r, lang())
        r.setdefault("depth", 0)
    return rows


def _people() -> list[dict]:
    return org.people(_engine())


def _role_choices():
    return [(rid, label_of(lbl, lang(), rid)) for rid, lbl in org.available_roles(config())]


# ---- users ------------------------------------------------------------------------------------
@bp.get("/admin/users")
@login_required
def admin_users():
    _admin()
    q = (request.args.get("q") or "").strip()[:100]
    try:
        page = max(1, min(100000, int(request.args.get("page", 1))))
    except ValueError:
        page = 1
    result = org.list_users(_engine(), q, page, PER_PAGE)
    teams = {r["id"]: r["label"] for r in _units("team")}
    regions = {r["id"]: r["label"] for r in _units("region")}
    for u in result["items"]:
        u["role_labels"] = [org.role_label(config(), r, lang()) for r in u["roles"]]
        u["team_label"] = teams.get(u["team"], u["team"] or "")
        u["region_label"] = regions.get(u["region"], u["region"] or "")
        u["last_text"] = when_text(u["last_sign_in"])
    pages = max(1, -(-result["total"] // PER_PAGE))
    return render("org/users.html", result=result, q=q, page=page, pages=pages)


def _user_form(user=None, values=None, errors=None, status=200):
    values = values or {}
    current = values.get("manager")          # a disabled manager stays selectable, so saving keeps them
    people = [p for p in _people() if (p["active"] or p["username"] == current)
              and (user is None or p["id"] != user["id"])]
    return render("org/user_form.html", status=status, user=user, values=values, errors=errors or {},
                  roles=_role_choices(), teams=_units("team"), regions=_units("region"), people=people)


def _form_data(creating: bool) -> dict:
    data = {k: request.form.get(k, "") for k in FIELDS if k in request.form}
    if not creating:
        data.pop("username", None)
        data.pop("password", None)
    data["roles"] = request.form.getlist("roles")
    return data


@bp.route("/admin/users/new", methods=["GET", "POST"])
@login_required
def admin_user_new():
    a = _admin()
    if request.method == "GET":
        return _user_form(values={"roles": [], "language": ""})
    data = _form_data(True)
    try:
        u = org.create_user(_engine(), config(), a, data)
    except ValidationFailed as e:
        data.pop("password", None)
        return _user_form(values=data, errors=e.fields, status=422)
    flash(_("User %(name)s created.", name=u["username"]), "success")
    return redirect(url_for("ui.admin_users", q=u["username"]))


@bp.route("/admin/users/<username>/edit", methods=["GET", "POST"])
@login_required
def admin_user_edit(username):
    a = _admin()
    user = org.get_user(_engine(), username, a.language)
    if request.method == "GET":
        return _user_form(user, {**user, "manager": user["manager_username"] or ""})
    data = _form_data(False)
    try:
        org.update_user(_engine(), config(), a, username, data)
    except ValidationFailed as e:
        return _user_form(user, {**user, **data}, e.fields, status=422)
    flash(_("Saved."), "success")
    return redirect(url_for("ui.admin_users", q=username))


@bp.post("/admin/users/<username>/password")
@login_required
def admin_user_password(username):
    a = _admin()
    user = org.get_user(_engine(), username, a.language)
    try:
        org.reset_password(_engine(), a, username, request.form.get("password", ""))
    except ValidationFailed as e:
        return _user_form(user, {**user, "manager": user["manager_username"] or ""},
                          {"new_password": e.fields.get("password", e.message)}, status=422)
    flash(_("The password of %(name)s was changed; they were signed out everywhere.", name=username)
          if username != a.username else _("Your password was changed."), "success")
    return redirect(url_for("ui.admin_user_edit", username=username))


@bp.route("/admin/users/<username>/disable", methods=["GET", "POST"])
@login_required
def admin_user_disable(username):
    """GET asks for confirmation; POST disables at once (sessions end, tokens are revoked)."""
    a = _admin()
    user = org.get_user(_engine(), username, a.language)
    if request.method == "GET":
        return render("org/disable.html", user=user, plan=_plan(a, username))
    try:
        revoked = org.disable_user(_engine(), a, username)
    except Conflict as e:
        flash(e.message, "error")
        return redirect(url_for("ui.admin_users", q=username))
    flash(_("%(name)s is disabled: signed out everywhere, %(n)d API token(s) revoked.", name=username, n=revoked),
          "success")
    return redirect(url_for("ui.admin_users", q=username))


@bp.post("/admin/users/<username>/enable")
@login_required
def admin_user_enable(username):
    a = _admin()
    org.enable_user(_engine(), a, username)
    flash(_("%(name)s can sign in again.", name=username), "success")
    return redirect(url_for("ui.admin_users", q=username))


def _plan(a, username) -> dict:
    """What a transfer would move: [(entity label, count)] and the open tasks."""
    p = org.transfer_plan(runtime(), a, username)
    ents = config().entities
    rows = [(ents[e].plural_text(lang()) if e in ents else e, n) for e, n in p["records"].items()]
    return {"rows": rows, "records": sum(p["records"].values()), "tasks": p["tasks"]}


@bp.route("/admin/users/<username>/transfer", methods=["GET", "POST"])
@login_required
def admin_user_transfer(username):
    """Choose who takes over, see what would move (per entity), then confirm."""
    a = _admin()
    user = org.get_user(_engine(), username, a.language)
    to = (request.values.get("to") or "").strip()
    people = [p for p in _people() if p["active"] and p["id"] != user["id"]]
    target = next((p for p in people if p["username"] == to), None)
    error = None
    if request.method == "POST" and target is not None:
        try:
            result = org.transfer_records(runtime(), a, username, to)
        except ValidationFailed as e:
            error = e.fields.get("to") or e.message
        else:
            moved = sum(result.moved.values())
            flash(_("Moved %(n)d record(s) and %(t)d task(s) from %(a)s to %(b)s.", n=moved, t=result.tasks,
                    a=username, b=to), "success")
            if result.failed:
                flash(_("%(n)d record(s) could not move: %(what)s", n=len(result.failed),
                        what="; ".join(f"{e} #{rid}: {msg}" for e, rid, msg in result.failed[:5])), "error")
            return redirect(url_for("ui.admin_users", q=username))
    if (to or request.method == "POST") and target is None and error is None:
        error = _("Choose an active user to take over.")
    return render("org/transfer.html", status=422 if error else 200, user=user, people=people, to=to,
                  target=target, plan=_plan(a, username), error=error)


# ---- teams and regions ------------------------------------------------------------------------
def _kind(kind: str) -> str:
    from flask import abort
    if kind not in ("teams", "regions"):
        abort(404)
    return kind[:-1]


@bp.get("/admin/<any(teams, regions):kinds>")
@login_required
def admin_units(kinds):
    _admin()
    kind = _kind(kinds)
    return render("org/units.html", kind=kind, kinds=kinds, rows=_units(kind))


def _unit_form(kind, kinds, unit=None, values=None, errors=None, status=200):
    teams = [t for t in _units("team") if unit is None or t["id"] != unit["id"]] if kind == "team" else []
    people = [p for p in _people() if p["active"]] if kind == "team" else []
    return render("org/unit_form.html", status=status, kind=kind, kinds=kinds, unit=unit, values=values or {},
                  errors=errors or {}, teams=teams, people=people)


def _unit_data(kind) -> dict:
    keys = ("id", "label_en", "label_zh") + (("parent", "manager") if kind == "team" else ())
    return {k: request.form.get(k, "") for k in keys if k in request.form}


@bp.route("/admin/<any(teams, regions):kinds>/new", methods=["GET", "POST"])
@login_required
def admin_unit_new(kinds):
    a = _admin()
    kind = _kind(kinds)
    if request.method == "GET":
        return _unit_form(kind, kinds, values={"parent": request.args.get("parent", "")})
    data = _unit_data(kind)
    try:
        org.create(_engine(), a, kind, data)
    except ValidationFailed as e:
        return _unit_form(kind, kinds, values=data, errors=e.fields, status=422)
    flash(_("Created."), "success")
    return redirect(url_for("ui.admin_units", kinds=kinds))


@bp.route("/admin/<any(teams, regions):kinds>/<ident>/edit", methods=["GET", "POST"])
@login_required
def admin_unit_edit(kinds, ident):
    a = _admin()
    kind = _kind(kinds)
    unit = next((r for r in _units(kind) if r["id"] == ident), None)
    if unit is None:
        org.get(_engine(), kind, ident, a.language)         # the 404 page, in the user's language
    if request.method == "GET":
        return _unit_form(kind, kinds, unit, {**unit, "manager": unit.get("manager_username") or ""})
    data = _unit_data(kind)
    data.pop("id", None)
    try:
        org.update(_engine(), a, kind, ident, data)
    except ValidationFailed as e:
        return _unit_form(kind, kinds, unit, {**unit, **data}, e.fields, status=422)
    flash(_("Saved."), "success")
    return redirect(url_for("ui.admin_units", kinds=kinds))


@bp.post("/admin/<any(teams, regions):kinds>/<ident>/delete")
@login_required
def admin_unit_delete(kinds, ident):
    a = _admin()
    kind = _kind(kinds)
    try:
        org.delete(_engine(), a, kind, ident)
    except Conflict as e:
        flash(e.message, "error")
    else:
        flash(_("Deleted."), "success")
    return redirect(url_for("ui.admin_units", kinds=kinds))
