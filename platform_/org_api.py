"""Admin API for the organisation (/api/v1/admin/users|teams|regions): routes on the API blueprint,
so bearer-token sign-in, JSON errors and the CSRF exemption are the API's own. The work and the
admin check are in platform_/org.py; a non-admin gets 403 before anything is read or changed."""
from __future__ import annotations

from flask import g, jsonify, request

from . import org
from .api import json_body, page_args, bp, runtime


def _admin():
    org.require_admin(g.actor)


def _created(body):
    resp = jsonify(body)
    resp.status_code = 201
    return resp


# ---- users ------------------------------------------------------------------------------------
@bp.route("/admin/users", methods=["GET", "POST"])
def admin_users():
    _admin()
    rt = runtime()
    if request.method == "POST":
        return _created(org.user_json(org.create_user(rt.engine, rt.config, g.actor, json_body())))
    page, per_page = page_args()
    out = org.list_users(rt.engine, request.args.get("q"), page, per_page)
    out["items"] = [org.user_json(u) for u in out["items"]]
    return jsonify(out)


@bp.route("/admin/users/<username>", methods=["GET", "PATCH"])
def admin_user(username):
    _admin()
    rt = runtime()
    if request.method == "PATCH":
        return jsonify(org.user_json(org.update_user(rt.engine, rt.config, g.actor, username, json_body())))
    return jsonify(org.user_json(org.get_user(rt.engine, username, g.actor.language)))


@bp.post("/admin/users/<username>/disable")
def admin_user_disable(username):
    _admin()
    revoked = org.disable_user(runtime().engine, g.actor, username)
    return jsonify({**org.user_json(org.get_user(runtime().engine, username)), "tokens_revoked": revoked})


@bp.post("/admin/users/<username>/enable")
def admin_user_enable(username):
    _admin()
    org.enable_user(runtime().engine, g.actor, username)
    return jsonify(org.user_json(org.get_user(runtime().engine, username)))


# ---- teams and regions ------------------------------------------------------------------------
KEEP = ("id", "label_en", "label_zh", "parent", "depth", "members", "children", "manager_username")


def _json(row: dict) -> dict:
    """A team or region as the API shows it: the manager by user name."""
    return {("manager" if k == "manager_username" else k): row.get(k) for k in KEEP if k in row}


def _one(kind, ident):
    return _json(next(r for r in org.listing(runtime().engine, kind) if r["id"] == ident))


def _collection(kind):
    _admin()
    rt = runtime()
    if request.method == "POST":
        return _created(_one(kind, org.create(rt.engine, g.actor, kind, json_body())["id"]))
    rows = org.team_tree(rt.engine) if kind == "team" else org.listing(rt.engine, kind)
    items = [_json(r) for r in rows]
    return jsonify({"items": items, "total": len(items)})


def _item(kind, ident):
    _admin()
    rt = runtime()
    if request.method == "DELETE":
        org.delete(rt.engine, g.actor, kind, ident)
        return "", 204
    org.update(rt.engine, g.actor, kind, ident, json_body())
    return jsonify(_one(kind, ident))


@bp.route("/admin/teams", methods=["GET", "POST"])
def admin_teams():
    return _collection("team")


@bp.route("/admin/teams/<ident>", methods=["PATCH", "DELETE"])
def admin_team(ident):
    return _item("team", ident)


@bp.route("/admin/regions", methods=["GET", "POST"])
def admin_regions():
    return _collection("region")


@bp.route("/admin/regions/<ident>", methods=["PATCH", "DELETE"])
def admin_region(ident):
    return _item("region", ident)
