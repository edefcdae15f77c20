"""REST API under /api/v1 (DESIGN.md "Public contracts"): CRUD, list queries, OpenAPI."""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from engine.errors import (BadRequest, Conflict, EngineError, Forbidden, MigrationRefused, NotFound, RuleError,
                           ValidationFailed)
from engine import approvals
from engine import segments
from engine.store import MAX_BULK
from engine.values import MAX_ID

from .auth import actor_for_token
from .openapi import openapi_document
from .serialize import record_json

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.record_once
def _exact_json(state):
    """Decimals leave (and enter) the API with all their digits, never through a float."""
    from .jsonexact import ExactJSONProvider
    state.app.json = ExactJSONProvider(state.app)

STATUS = {NotFound: 404, Forbidden: 403, Conflict: 409, ValidationFailed: 422, BadRequest: 400, RuleError: 422,
          MigrationRefused: 409}


def runtime():
    return current_app.extensions["crm"]


def error(status: int, code: str, message: str, fields=None, **extra):
    body = {"error": {"code": code, "message": message, **extra}}
    if fields:
        body["error"]["fields"] = fields
    resp = jsonify(body)
    resp.status_code = status
    return resp


@bp.errorhandler(EngineError)
def _engine_error(e: EngineError):
    status = next((s for cls, s in STATUS.items() if isinstance(e, cls)), 500)
    extra = {}
    if isinstance(e, Conflict) and e.current is not None and g.get("entity") is not None:
        current = runtime().store.visible(g.entity, g.actor, e.current) if g.get("actor") else {}
        extra["current"] = record_json(runtime().config, g.entity, current)
    return error(status, e.code, e.message, getattr(e, "fields", None), **extra)


@bp.errorhandler(404)
def _not_found(_e):
    return error(404, "not_found", f"No API endpoint at {request.path}.")


@bp.errorhandler(405)
def _method(e):
    resp = error(405, "method_not_allowed", f"{request.method} is not allowed on {request.path}.")
    resp.headers["Allow"] = ", ".join(getattr(e, "valid_methods", None) or ())
    return resp


@bp.errorhandler(413)
def _too_large(_e):
    limit = request.max_content_length or current_app.config.get("MAX_CONTENT_LENGTH") or 0
    return error(413, "too_large", f"The request body is larger than the limit of {limit / (1024 * 1024):g} MB.")


@bp.errorhandler(500)
def _server_error(_e):
    return error(500, "internal_error", "The server failed to handle this request; it has been logged.")


@bp.before_request
def _authenticate():
    rt = runtime()
    if rt.store is None:
        return error(503, "config_invalid", "The configuration does not load: "
                     + "; ".join(str(p) for p in rt.problems[:5]))
    rt.ensure_schema()
    if request.endpoint == "api.openapi":
        return None
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    actor = actor_for_token(rt.engine, token) if token else None
    if actor is None:
        return error(401, "unauthorized", "Send a valid API token as 'Authorization: Bearer <token>' "
                     "(create one with `flask crm token create --user NAME`).")
    lang = request.headers.get("Accept-Language", "")
    if lang.lower().startswith("zh"):
        from dataclasses import replace
        actor = replace(actor, language="zh")
    g.actor = actor


def json_body():
    if not request.data:
        return {}
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        raise BadRequest("The request body is nested too deeply.") from None
    if data is None:
        raise BadRequest("The request body is not valid JSON.")
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object of fields.")
    return data


def _entity(name):
    if name not in runtime().config.entities:
        _fixed_route_405()
    e = runtime().store.entity(name)
    g.entity = e
    return e


def _fixed_route_405():
    """`GET /delegations` lands on the generic `/<entity>` route; when a fixed API address answers
    other methods, say so (405 with `Allow`) instead of "there is no entity 'delegations'"."""
    from werkzeug.exceptions import MethodNotAllowed
    methods = {m for r in current_app.url_map.iter_rules() if r.rule == request.path and not r.arguments
               for m in (r.methods or ())} - {"HEAD", "OPTIONS"}
    if methods:
        raise MethodNotAllowed(valid_methods=sorted(methods))


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document(runtime().config))


@bp.get("/me")
def me():
    a = g.actor
    return jsonify({"id": a.id, "username": a.username, "roles": list(a.roles), "language": a.language})


@bp.post("/admin/reload")
def reload_config():
    if not g.actor.is_admin:
        raise Forbidden("Only an administrator may reload the configuration.")
    from . import auditlog
    rt = runtime()
    before = rt.config.digest if rt.config is not None else None
    ok = rt.load()
    if ok:
        applied = rt.ensure_schema(by=g.actor)
        auditlog.record(rt.engine, "config.reload", g.actor, changes={"digest": (before, rt.config.digest)},
                        detail=auditlog.steps_summary(applied, rt.config.digest))
        return jsonify({"reloaded": True, "digest": rt.config.digest})
    auditlog.record(rt.engine, "config.reload_failed", g.actor,
                    detail=f"{len(rt.problems)} problem(s); still serving config {before}: "
                           + "; ".join(str(p) for p in rt.problems[:5])[:2000])
    return error(422, "config_invalid", "The new configuration has errors; still serving the last good one.",
                 problems=[str(p) for p in rt.problems])


@bp.get("/<entity>")
def list_records(entity):
    e = _entity(entity)
    store = runtime().store
    req = segments.list_request(store.config, e, request.args, g.actor)   # `?segment=<id>` adds its filters
    result = store.list(entity, req, g.actor)
    result["items"] = [record_json(store.config, e, r) for r in result["items"]]
    return jsonify(result)


@bp.post("/<entity>")
def create_record(entity):
    e = _entity(entity)
    store = runtime().store
    from engine.linkopts import fill  # a link's `fetch`: empty fields filled from the linked record
    rec = store.create(entity, fill(store, e, json_body(), g.actor), g.actor)
    resp = jsonify(record_json(store.config, e, rec))
    resp.status_code = 201
    resp.headers["Location"] = f"{request.base_url.rstrip('/')}/{rec['id']}"
    return resp


@bp.post("/<entity>/bulk")
def bulk_write(entity):
    """Create (items without `id`) and update (items with `id`, and `version` when known) up to
    MAX_BULK records in one transaction: all saved, or none with every row's errors (`<index>.<field>`)."""
    e = _entity(entity)
    store = runtime().store
    items = json_body().get("records")
    if not isinstance(items, list) or not items:
        raise BadRequest('Send {"records": [{...}, ...]}: a list of objects of fields '
                         '(with "id" to update a record).')
    if len(items) > MAX_BULK:
        raise BadRequest(f"At most {MAX_BULK} records per request; this one has {len(items)}.")
    from engine.linkopts import fill
    items = [fill(store, e, d, g.actor) if isinstance(d, dict) and "id" not in d else d for d in items]
    result = store.write_many(entity, items, g.actor)
    resp = jsonify({"created": len(result["created"]), "updated": len(result["updated"]),
                    "ids": result["created"], "updated_ids": result["updated"]})
    resp.status_code = 201 if result["created"] else 200
    return resp


@bp.get("/<entity>/<int:rid>")
def get_record(entity, rid):
    e = _entity(entity)
    store = runtime().store
    return jsonify(record_json(store.config, e, store.get(entity, rid, g.actor)))


def _version(body: dict | None = None):
    """The version the client last read, sent one way on every write: the `If-Match` header, or
    `version` in the JSON body, or `?version=` — whole numbers; two that disagree are a 400."""
    from engine.errors import ValidationFailed
    seen = []
    header = request.headers.get("If-Match")
    if header is not None:
        seen.append(("If-Match", header.strip().removeprefix("W/").strip('"')))
    if body and "version" in body:
        seen.append(("version", body.get("version")))
    if request.args.get("version") is not None:
        seen.append(("?version", request.args.get("version")))
    values = []
    for where, raw in seen:
        if isinstance(raw, bool) or raw is None or (isinstance(raw, str) and not raw.strip().isdigit()) \
                or not isinstance(raw, (int, str)):
            raise ValidationFailed({"version": f"{where} must be the record's version, a whole number"})
        n = int(raw)
        if not 0 < n < 2 ** 31:
            raise ValidationFailed({"version": f"{where} is out of range"})
        values.append(n)
    if len(set(values)) > 1:
        raise BadRequest("If-Match and version disagree; send the version once.")
    return values[0] if values else None


@bp.route("/<entity>/<int:rid>", methods=["PATCH"])
def update_record(entity, rid):
    e = _entity(entity)
    store = runtime().store
    body = json_body()
    version = _version(body)
    body.pop("version", None)
    rec = store.update(entity, rid, body, g.actor, version=version)
    return jsonify(record_json(store.config, e, rec))


@bp.put("/<entity>/<int:rid>")
def replace_record(entity, rid):
    """PUT would replace the whole record; the API updates fields with PATCH only."""
    _entity(entity)
    resp = error(405, "method_not_allowed", "PUT is not supported: send the changed fields with PATCH "
                                            "(and the version you read as If-Match or `version`).")
    resp.headers["Allow"] = "GET, PATCH, DELETE"
    return resp


@bp.delete("/<entity>/<int:rid>")
def delete_record(entity, rid):
    _entity(entity)
    runtime().store.delete(entity, rid, g.actor, version=_version())
    return "", 204


@bp.post("/<entity>/<int:rid>/restore")
def restore_record(entity, rid):
    e = _entity(entity)
    store = runtime().store
    return jsonify(record_json(store.config, e, store.restore(entity, rid, g.actor, version=_version(json_body()))))


# ---- workflows and approvals ---------------------------------------------------------------
def _label(label):
    from engine.model import label_of
    return label_of(label, g.actor.language)


@bp.get("/<entity>/<int:rid>/transitions")
def transitions(entity, rid):
    _entity(entity)
    items = runtime().workflows.available(entity, rid, g.actor)
    for t in items:
        t["label"] = _label(t["label"])
        t["to_label"] = _label(t["to_label"])
    return jsonify({"items": items})


@bp.post("/<entity>/<int:rid>/transitions/<name>")
def run_transition(entity, rid, name):
    e = _entity(entity)
    body = json_body()
    result = runtime().workflows.execute(entity, rid, name, g.actor, comment=_comment(body), version=_version(body))
    seen = runtime().store.visible(e, g.actor, result["record"])
    out = {"status": result["status"], "record": record_json(runtime().config, e, seen)}
    if result["status"] == "pending_approval":
        approval = dict(result["approval"])
        approval.pop("record", None)
        out["approval"] = approval
        resp = jsonify(out)
        resp.status_code = 202
        return resp
    return jsonify(out)


@bp.get("/<entity>/<int:rid>/history")
def record_history(entity, rid):
    _entity(entity)
    runtime().store.get(entity, rid, g.actor)
    return jsonify({"items": [_jsonable(h) for h in runtime().workflows.history(entity, rid)]})


@bp.get("/<entity>/<int:rid>/approvals")
def record_approvals(entity, rid):
    _entity(entity)
    runtime().store.get(entity, rid, g.actor)
    return jsonify({"items": [_jsonable(r) for r in approvals.trail(runtime().workflows, entity, rid)]})


@bp.get("/approvals")
def my_approvals():
    items = approvals.pending_for(runtime().workflows, g.actor, request.args.get("entity"))
    return jsonify({"items": [_jsonable(r) for r in items], "total": len(items)})


@bp.post("/approvals/<int:task_id>/<decision>")
def decide(task_id, decision):
    if decision not in ("approve", "reject", "delegate"):
        raise NotFound(f"Unknown decision {decision!r}; use approve, reject or delegate.")
    body = json_body()
    delegate_to = body.get("delegate_to")
    if delegate_to is not None and (isinstance(delegate_to, bool) or not isinstance(delegate_to, (int, str))):
        raise ValidationFailed({"delegate_to": "the id of an active user other than you"})
    result = approvals.decide(runtime().workflows, task_id, g.actor, decision, _comment(body), delegate_to)
    result.pop("record", None)
    return jsonify(result)


@bp.post("/delegations")
def create_delegation():
    """Holiday cover: the acting user's approvals go to `delegate` from `starts_on` to `ends_on`."""
    import datetime as dt
    from engine.errors import ValidationFailed
    body = json_body()
    errors, dates = {}, {}
    for key in ("starts_on", "ends_on"):
        try:
            dates[key] = dt.date.fromisoformat(str(body.get(key, "")))
        except ValueError:
            errors[key] = "is not a date (YYYY-MM-DD)"
    delegate = body.get("delegate")
    if isinstance(delegate, bool) or not isinstance(delegate, int) or not 0 < delegate <= MAX_ID:
        errors["delegate"] = "the id of the user who covers"
    if errors:
        raise ValidationFailed(errors)
    did = approvals.set_delegation(runtime().workflows, g.actor, body["delegate"], dates["starts_on"], dates["ends_on"])
    resp = jsonify({"id": did, "delegate": body["delegate"], "starts_on": dates["starts_on"].isoformat(),
                    "ends_on": dates["ends_on"].isoformat()})
    resp.status_code = 201
    return resp


@bp.post("/approval-requests/<int:request_id>/withdraw")
def withdraw(request_id):
    return jsonify(approvals.withdraw(runtime().workflows, request_id, g.actor, _comment(json_body())))


def _comment(body: dict):
    """The optional `comment` of a decision or a withdrawal: text, or a 422 naming it."""
    comment = body.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise ValidationFailed({"comment": "a text"})
    if comment is not None and _unencodable(comment):
        raise ValidationFailed({"comment": "contains an invalid character (a lone UTF-16 surrogate)"})
    return comment


def _unencodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _jsonable(row: dict) -> dict:
    from engine.values import to_json
    return {k: ([_jsonable(x) for x in v] if isinstance(v, list) and v and isinstance(v[0], dict) else to_json(None, v, True, utc=True))
            for k, v in row.items()}


# ---- automation: SLA, notifications, webhooks, background jobs -----------------------------
def page_args():
    from engine.errors import ValidationFailed
    try:
        page = int(request.args.get("page", 1))
        per_page = int(request.args.get("per_page", 50))
    except ValueError:
        raise ValidationFailed({"page": "page and per_page are whole numbers"}) from None
    if not (1 <= page <= 100000 and 1 <= per_page <= 200):
        raise ValidationFailed({"per_page": "page ≥ 1 and 1 ≤ per_page ≤ 200"})
    return page, per_page


@bp.get("/<entity>/<int:rid>/sla")
def record_sla(entity, rid):
    _entity(entity)
    items = runtime().automation.sla_items(entity, rid, g.actor)
    for it in items:
        it["label"] = _label(it["label"])
        it["target_label"] = _label(it["target_label"])
    return jsonify({"items": items})


@bp.get("/<entity>/sla-compliance")
def sla_compliance(entity):
    """SLA compliance of an entity's records started between `from` and `to` (dates, `to` exclusive)."""
    import datetime as dt

    import sqlalchemy as sa

    from engine import clock
    from engine.automation import sla
    from engine.db import reading
    from engine.errors import ValidationFailed
    e = _entity(entity)
    store = runtime().store
    store.policy.check(e, "read", g.actor)
    bounds = {}
    for key in ("from", "to"):
        raw = request.args.get(key)
        if raw:
            try:
                bounds[key] = dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(0))
            except ValueError:
                raise ValidationFailed({key: "a date YYYY-MM-DD"}) from None
    if not runtime().automation.has_sla(e.id):
        raise NotFound(f"{e.label_text()} has no SLA.")
    t = store.table(e)
    scope = store.row_scope(e, g.actor, t)
    visible = sa.select(t.c.id).where(t.c.deleted_at.is_(None), *([scope] if scope is not None else []))
    with reading(runtime().engine) as conn:
        items = sla.compliance(conn, e.id, bounds.get("from"), bounds.get("to"), clock.now(), visible)
    return jsonify({"items": items})


@bp.get("/audit")
def audit_entries():
    """The audit trail (admin, auditor): `?entity=&record=&user=&action=&since=&until=&page=&per_page=`,
    `format=csv` for every match as a file (UTF-8 with BOM; cells safe from formulas)."""
    from engine import audit
    from engine.errors import ValidationFailed

    from . import auditlog
    store = runtime().store
    auditlog.require_reader(store, g.actor)
    page, per_page = page_args()
    ids = {}
    for key in ("record", "user"):
        raw = request.args.get(key)
        if raw not in (None, ""):
            if not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
                raise ValidationFailed({key: "an id"})
            ids[key] = int(raw)
    try:
        since, until = auditlog.day_bounds(request.args.get("since"), request.args.get("until"))
    except BadRequest as e:
        raise ValidationFailed({e.message.split(":")[0]: e.message}) from None
    fmt = request.args.get("format") or "json"
    if fmt not in ("json", "csv"):
        raise ValidationFailed({"format": "json or csv"})
    filters = dict(entity=request.args.get("entity") or None, record_id=ids.get("record"), user_id=ids.get("user"),
                   action=request.args.get("action") or None, since=since, until=until)
    if fmt == "csv":
        import json

        from .csvsafe import csv_response
        rows = ([i["id"], i["at"].isoformat() + "Z", i["user_id"], i["user"], i["action"], i["entity"], i["record"],
                 json.dumps(auditlog.visible_changes(store, g.actor, i), ensure_ascii=False, default=str),
                 i["detail"]] for i in audit.each_entry(runtime().engine, auditlog.EXPORT_LIMIT, **filters))
        return csv_response(["id", "at", "user_id", "user", "action", "entity", "record", "changes", "detail"],
                            rows, "audit.csv")
    out = audit.entries(runtime().engine, page=page, per_page=per_page, **filters)
    out["items"] = [_jsonable(dict(i, changes=auditlog.visible_changes(store, g.actor, i))) for i in out["items"]]
    return jsonify(out)


@bp.get("/notifications")
def my_notifications():
    from engine.automation import notifications
    page, per_page = page_args()
    from .openapi import UNREAD
    if request.args.get("unread", "") not in UNREAD:
        raise ValidationFailed({"unread": "1, true or yes for unread only; 0, false or no for all"})
    unread = request.args.get("unread") in ("1", "true", "yes")
    out = notifications.listing(runtime().engine, g.actor.id, unread, page, per_page)
    out["items"] = [_jsonable(n) for n in out["items"]]
    out["unread"] = notifications.unread_count(runtime().engine, g.actor.id)
    return jsonify(out)


@bp.post("/notifications/read")
def read_notifications():
    """Body {"ids": [..]} marks those read; no ids marks all of the user's notifications read."""
    from engine.automation import notifications
    body = json_body()
    ids = body.get("ids")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool)
                                                                  and 0 < i < 2 ** 31 for i in ids)):
        raise ValidationFailed({"ids": "a list of notification ids"})
    n = notifications.mark_read(runtime().engine, g.actor.id, ids)
    return jsonify({"marked": n, "unread": notifications.unread_count(runtime().engine, g.actor.id)})


def _admin(what: str):
    if not g.actor.is_admin:
        raise Forbidden(f"Only an administrator may {what}.")


@bp.route("/webhooks", methods=["GET", "POST"])
def webhook_collection():
    from engine.automation import webhooks
    _admin("manage webhooks")
    rt = runtime()
    if request.method == "GET":
        return jsonify({"items": [_jsonable(w) for w in webhooks.listing(rt.engine)]})
    resp = jsonify(webhooks.create(rt.engine, rt.config, json_body(), g.actor.id))
    resp.status_code = 201
    return resp


@bp.delete("/webhooks/<int:wid>")
def webhook_delete(wid):
    from engine.automation import webhooks
    _admin("manage webhooks")
    if wid > MAX_ID or not webhooks.remove(runtime().engine, wid):
        raise NotFound(f"Webhook #{wid} does not exist.")
    return "", 204


@bp.get("/webhooks/<int:wid>/deliveries")
def webhook_deliveries(wid):
    """The delivery log of a subscription: each event, its status, attempts and last error."""
    from engine.automation import outbox, webhooks
    _admin("read webhook deliveries")
    if wid > MAX_ID or not any(w["id"] == wid for w in webhooks.listing(runtime().engine)):
        raise NotFound(f"Webhook #{wid} does not exist.")
    items = outbox.for_webhook(runtime().engine, wid)
    return jsonify({"items": [_jsonable(i) for i in items], "total": len(items)})


@bp.get("/admin/jobs")
def failed_jobs():
    """Background work that failed: outbox rows (e-mails, webhook calls) and timers, with the error."""
    from engine.automation import outbox, timers
    _admin("see background jobs")
    rt = runtime()
    items = [{"kind": r["kind"], "id": r["id"], "status": r["status"], "attempts": r["attempts"],
              "error": r["last_error"], "entity": r["entity"], "record_id": r["record_id"],
              "at": r["created_at"], "next_at": r["next_at"]} for r in outbox.problems(rt.engine)]
    items += [{"kind": "timer", "id": r["id"], "status": r["status"], "attempts": r["attempts"], "name": r["name"],
               "error": r["last_error"], "entity": r["entity"], "record_id": r["record_id"], "at": r["created_at"],
               "next_at": r["due_at"]} for r in timers.problems(rt.engine)]
    return jsonify({"items": [_jsonable(i) for i in items], "total": len(items)})


@bp.post("/admin/jobs/<kind>/<int:job_id>/retry")
def retry_job(kind, job_id):
    from engine.automation import outbox, timers
    _admin("re-run background jobs")
    rt = runtime()
    if kind not in ("timer", "webhook", "email"):
        raise NotFound(f"Unknown job kind {kind!r}; use timer, webhook or email.")
    if job_id > MAX_ID:
        raise NotFound(f"There is no {kind} job #{job_id}.")
    found = timers.get(rt.engine, job_id) if kind == "timer" else outbox.get(rt.engine, job_id)
    if found is None or (kind != "timer" and found["kind"] != kind):
        raise NotFound(f"There is no {kind} job #{job_id}.")
    ok = timers.retry(rt.engine, job_id) if kind == "timer" else outbox.retry(rt.engine, job_id)
    if not ok:
        raise Conflict(f"{kind} #{job_id} is not waiting to be re-run (it is {found['status']}).")
    if current_app.config.get("CRM_BACKGROUND"):
        current_app.extensions["crm_jobs"].kick()
    return jsonify({"retried": True, "kind": kind, "id": job_id})


from . import org_api  # noqa: E402,F401  (admin routes for users, teams and regions join this blueprint)
from . import config_api  # noqa: E402,F401  (the studio's plan / apply / versions routes, ditto)

from . import access_explain  # noqa: E402  (the "view as" explanation of one user's permissions)

access_explain.register(bp, runtime, _admin)

from . import dataio_api  # noqa: E402  (import and export of records: POST /<entity>/import, GET /<entity>/export)

dataio_api.register(bp, runtime, _entity)

from . import reports_api  # noqa: E402  (reports and dashboards: GET /reports, /reports/<id>, /dashboards)

reports_api.register(bp, runtime)
