"""Admin API of the studio (/api/v1/admin/config/...): plan, apply, versions, restore.

Routes on the API blueprint (bearer tokens, JSON errors). The work is in platform_/configstore.py;
a non-admin gets 403 before anything is read or changed.
"""
from __future__ import annotations

from flask import g, jsonify

from engine.errors import BadRequest, Forbidden, NotFound
from engine.values import MAX_ID

from . import configstore
from .api import json_body, bp, error, runtime


def _admin():
    if not g.actor.is_admin:
        raise Forbidden("Only an administrator may change the configuration.")


@bp.errorhandler(configstore.Refused)
def _refused(e: configstore.Refused):
    return error(e.status, "config_conflict" if e.status == 409 else e.code, e.message,
                 problems=e.problems, steps=e.steps)


def _change(body):
    files = body.get("files", {})
    message = body.get("message") or ""
    if not isinstance(message, str):
        raise BadRequest("'message' must be text.")
    allow = body.get("allow_destructive", False)
    if not isinstance(allow, bool):
        raise BadRequest("'allow_destructive' must be true or false.")
    base = body.get("base_version")
    if base is not None and (isinstance(base, bool) or not isinstance(base, int)):
        raise BadRequest("'base_version' must be a version number.")
    return files, message, allow, base


@bp.post("/admin/config/plan")
def config_plan():
    _admin()
    files, _message, _allow, _base = _change(json_body())
    rt = runtime()
    out = configstore.plan(rt, files)
    out["version"] = configstore.sync_history(rt.engine, rt.config_dir)
    return jsonify(out)


@bp.post("/admin/config/apply")
def config_apply():
    _admin()
    files, message, allow, base = _change(json_body())
    number = configstore.apply(runtime(), files, message, g.actor, allow, base)
    return jsonify({"version": number})


@bp.get("/admin/config/versions")
def config_versions():
    _admin()
    rt = runtime()
    return jsonify({"items": configstore.listing(rt.engine, rt.config_dir)})


def _version(number):
    v = configstore.get_version(runtime().engine, number) if 0 < number <= MAX_ID else None
    if v is None:
        raise NotFound(f"There is no configuration version {number}.")
    return v


@bp.get("/admin/config/versions/<int:number>")
def config_version(number):
    _admin()
    v = _version(number)
    return jsonify({"version": v["version"], "message": v["message"], "user": v["username"],
                    "at": v["at"].isoformat(sep=" ") if v["at"] else None, "files": v["files"]})


@bp.post("/admin/config/versions/<int:number>/restore")
def config_restore(number):
    _admin()
    body = json_body()
    _version(number)
    rt = runtime()
    _files, message, allow, base = _change({**body, "files": {}})
    files = configstore.restore_files(rt, number)
    if body.get("plan_only"):
        return jsonify(configstore.plan(rt, files))
    out = configstore.apply(rt, files, message or f"restore version {number}", g.actor, allow, base)
    return jsonify({"version": out, "restored": number})
