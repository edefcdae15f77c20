"""An OpenAPI 3.1 document generated from the loaded config (A10)."""
from __future__ import annotations

from engine.model import Config
from engine.query import COUNT_CAP, MAX_PER_PAGE
from engine.store import MAX_BULK
from engine.validation import field_schema, input_schema

from .openapi_conform import conform
from .openapi_data import entity_paths, report_paths

ERROR = {"$ref": "#/components/schemas/Error"}
EMPTY = {"type": "string", "maxLength": 0}


def _record_schema(config: Config, entity) -> dict:
    props = {}
    for f in entity.fields.values():
        if f.type == "table":
            props[f.id] = {"type": "array", "items": {"$ref": f"#/components/schemas/{f.of}"}}
        else:
            props[f.id] = field_schema(f)
            if f.required and f.id not in ("id", "version"):   # records older than the rule may lack it
                props[f.id] = {"anyOf": [props[f.id], {"type": "null"}], "title": props[f.id].get("title")}
        if not f.writable:
            props[f.id]["readOnly"] = True
    return {"type": "object", "properties": props, "title": entity.label.get("en")}


def _create_schema(entity) -> dict:
    """The create body: a required field that a link fetches (`fetch: {customer: customer}`) may be
    left out when that link is given; the server fills it in before it validates."""
    s = input_schema(entity, partial=False)
    via: dict = {}
    for f in entity.user_fields:
        for dst, _src in f.fetch:
            via.setdefault(dst, []).append(f.id)
    either = [r for r in s.get("required", ()) if r in via]
    if either:
        props = {**s["properties"], **{r: {"anyOf": [s["properties"][r], {"type": "null"}]} for r in either}}
        s = {**s, "properties": props, "required": [r for r in s["required"] if r not in via],
             "allOf": [{"anyOf": [{"required": [r]}] + [{"required": [link]} for link in via[r]]} for r in either]}
        if not s["required"]:
            del s["required"]
    return s


def _filter_schema(f) -> dict:
    """A list filter `?field=value` as the server reads it: the field's type, or empty for "is empty"."""
    t = f.value_type
    if t in ("integer",):
        typed = {"type": "integer", "minimum": -(2 ** 31 - 1), "maximum": 2 ** 31 - 1}
    elif t in ("link", "user"):
        typed = {"type": "integer", "minimum": 1, "maximum": 2 ** 31 - 1}
        if t == "user":
            typed = {"anyOf": [typed, {"enum": ["me", "@me"]}]}
    elif t in ("decimal", "money", "percent"):
        typed = {"type": "number"}
    elif t == "boolean":
        typed = {"enum": ["true", "false", "1", "0", "yes", "no", "on", "off"]}
    elif t in ("date", "datetime"):
        typed = {"type": "string", "format": "date" if t == "date" else "date-time"}
    elif t == "select" and f.options:
        typed = {"enum": list(f.option_values)}
    elif t == "attachment":
        return EMPTY                     # no file; `__isnull` and `__contains` (the file name) also work
    else:
        return {"type": "string"}
    return {"anyOf": [typed, EMPTY]}


def openapi_document(config: Config) -> dict:
    schemas = {"Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}}}}}}}
    paths = {}
    for e in config.entities.values():
        schemas[e.id] = _record_schema(config, e)
        if e.child:
            continue
        schemas[f"{e.id}_input"] = _create_schema(e)
        ref = {"$ref": f"#/components/schemas/{e.id}"}
        errors = {str(c): {"description": d, "content": {"application/json": {"schema": ERROR}}}
                  for c, d in ((400, "bad request"), (401, "no or bad token"), (403, "forbidden"),
                               (404, "not found"), (409, "version conflict"), (422, "invalid fields"))}
        params = [{"name": "q", "in": "query", "schema": {"type": "string"}, "description": "text search"},
                  {"name": "sort", "in": "query", "schema": {"type": "string"}, "description": "-field,field"},
                  {"name": "page", "in": "query", "schema": {"anyOf": [
                      {"type": "integer", "minimum": 1, "maximum": 10 ** 7}, EMPTY]}},
                  {"name": "per_page", "in": "query", "schema": {"anyOf": [
                      {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE}, EMPTY]}},
                  {"name": "deleted", "in": "query", "schema": {"enum": ["1", "true", "only", "0", "false", ""]},
                   "description": "the recycle bin (administrators)"}]
        if "count" not in e.fields:
            params.append({"name": "count", "in": "query", "schema": {"enum": ["exact", "capped", ""]},
                           "description": f"exact: count every match; by default matches are counted up to "
                                          f"{COUNT_CAP:,} (then total_exact is false)"})
        for f in e.stored_fields:
            params.append({"name": f.id, "in": "query", "required": False, "schema": _filter_schema(f),
                           "description": f"{f.label.get('en')}; empty: no value; "
                                          f"also {f.id}__ne|lt|lte|gt|gte|in|contains|isnull"})
        tag = e.label.get("en", e.id)
        paths[f"/api/v1/{e.id}"] = {
            "get": {"tags": [tag], "summary": f"List {tag}", "parameters": params, "responses": {
                "200": {"description": "a page", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"items": {"type": "array", "items": ref},
                                                     "total": {"type": "integer"}, "total_exact": {"type": "boolean"},
                                                     "page": {"type": "integer"},
                                                     "per_page": {"type": "integer"}}}}}}, **errors}},
            "post": {"tags": [tag], "summary": f"Create a {tag}", "requestBody": {"content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{e.id}_input"}}}},
                "responses": {"201": {"description": "created", "content": {"application/json": {"schema": ref}}}, **errors}},
        }
        paths[f"/api/v1/{e.id}/bulk"] = {"post": {
            "tags": [tag], "summary": f"Create and update up to {MAX_BULK} {tag} records at once, all or none",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["records"], "properties": {"records": {
                    "type": "array", "minItems": 1, "maxItems": MAX_BULK, "items": {"type": "object"},
                    "description": "objects of fields; with `id` (and `version`) an item updates that record"}}}}}},
            "responses": {code: {"description": what, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"created": {"type": "integer"}, "updated": {"type": "integer"},
                                                 "ids": {"type": "array", "items": {"type": "integer"}},
                                                 "updated_ids": {"type": "array", "items": {"type": "integer"}}}}}}}
                          for code, what in (("201", "saved, some created"), ("200", "saved, all updates"))}
            | {c: r for c, r in errors.items() if c != "409"}}}
        paths.update(entity_paths(e, tag, params))
        rid = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
        paths[f"/api/v1/{e.id}/{{id}}"] = {
            "get": {"tags": [tag], "parameters": rid, "responses": {"200": {"description": "the record", "content": {
                "application/json": {"schema": ref}}}, **errors}},
            "patch": {"tags": [tag], "parameters": rid + [IF_MATCH], "requestBody": {"content": {"application/json": {
                "schema": input_schema(e, partial=True)}}},
                "responses": {"200": {"description": "updated", "content": {"application/json": {"schema": ref}}}, **errors}},
            "delete": {"tags": [tag], "parameters": rid + [IF_MATCH, VERSION_QUERY],
                       "responses": {"204": {"description": "moved to the recycle bin"}, **errors}},
        }
        paths[f"/api/v1/{e.id}/{{id}}/restore"] = {"post": {
            "tags": [tag], "summary": "Take the record back out of the recycle bin (administrators)",
            "parameters": rid + [IF_MATCH, VERSION_QUERY], "requestBody": {"content": {"application/json": {
                "schema": {"type": "object", "properties": {"version": VERSION}}}}},
            "responses": {"200": {"description": "restored", "content": {"application/json": {"schema": ref}}},
                          **errors}}}
        if e.state_field is not None:
            paths.update(_workflow_paths(e, tag, rid, errors))
        if config.auto.slas_for(e.id):
            paths[f"/api/v1/{e.id}/{{id}}/sla"] = {"get": {
                "tags": [tag], "summary": "SLA clocks of the record (working time of its calendar)",
                "parameters": rid, "responses": {"200": _json({"type": "object", "properties": {"items": {
                    "type": "array", "items": {"$ref": "#/components/schemas/SlaClock"}}}}), **errors}}}
    paths.update(_approval_paths())
    paths.update(report_paths(config))
    paths.update(_automation_paths())
    paths.update(_org_paths())
    paths.update(_audit_paths())
    schemas["SlaClock"] = {"type": "object", "required": ["name", "target", "due_at", "status"], "properties": {
        "name": {"type": "string"}, "label": {"type": "string"}, "target": {"enum": ["response", "resolution"]},
        "target_label": {"type": "string"}, "policy": {"type": "string"},
        "status": {"enum": ["running", "paused", "met", "breached"]},
        "due_at": {"type": ["string", "null"], "format": "date-time"},
        "started_at": {"type": "string", "format": "date-time"},
        "met_at": {"type": ["string", "null"], "format": "date-time"},
        "breached_at": {"type": ["string", "null"], "format": "date-time"},
        "target_seconds": {"type": "integer"}, "remaining_seconds": {"type": ["integer", "null"]}}}
    schemas["Transition"] = {"type": "object", "properties": {
        "name": {"type": "string"}, "label": {"type": "string"}, "to": {"type": "string"},
        "to_label": {"type": "string"}, "allowed": {"type": "boolean"}, "reason": {"type": ["string", "null"]},
        "comment": {"enum": ["required", "optional", "none"]}, "approval": {"type": "boolean"}}}
    paths.update(_platform_paths())
    return conform({"openapi": "3.1.0",
                    "info": {"title": (config.pack.label.get("en") if config.pack else "CRM") + " API",
                             "version": config.pack.version if config.pack else "0"},
                    "components": {"schemas": schemas,
                                   "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
                    "security": [{"bearer": []}], "paths": paths})


def _platform_paths() -> dict:
    """The acting user, and the administrator's configuration reload."""
    return {
        "/api/v1/me": {"get": {"tags": ["Platform"], "summary": "The user the token belongs to", "responses": {
            "200": _json({"type": "object", "required": ["id", "username", "roles", "language"], "properties": {
                "id": {"type": "integer"}, "username": {"type": "string"},
                "roles": {"type": "array", "items": {"type": "string"}}, "language": {"type": ["string", "null"]}}})}}},
        "/api/v1/admin/reload": {"post": {
            "tags": ["Platform"], "summary": "Load the configuration again (administrators); a bad one is refused",
            "responses": {"200": _json({"type": "object", "properties": {"reloaded": {"const": True},
                                                                         "digest": {"type": "string"}}}),
                          "403": {"description": "not an administrator"},
                          "422": {"description": "the new configuration has errors (`problems` lists them)"}}}},
    }


VERSION = {"type": "integer", "minimum": 1, "maximum": 2 ** 31 - 1,
           "description": "the version you read (or send it as If-Match)"}
IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string", "pattern": r"^(W/)?\"?[1-9][0-9]{0,8}\"?$"},
            "description": "the version you read; a stale one answers 409 with the current record"}
VERSION_QUERY = {"name": "version", "in": "query", "required": False, "schema": VERSION}


def _json(schema, description="ok"):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _workflow_paths(e, tag, rid, errors) -> dict:
    comment = {"content": {"application/json": {"schema": {"type": "object", "properties": {
        "comment": {"type": "string"}, "version": VERSION}}}}}
    name = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    return {
        f"/api/v1/{e.id}/{{id}}/transitions": {"get": {
            "tags": [tag], "summary": "Transitions of the record for the acting user, each allowed or with the reason",
            "parameters": rid, "responses": {"200": _json({"type": "object", "properties": {
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/Transition"}}}}), **errors}}},
        f"/api/v1/{e.id}/{{id}}/transitions/{{name}}": {"post": {
            "tags": [tag], "summary": "Run a transition (one transaction: checks, actions, history)",
            "parameters": rid + name + [IF_MATCH, VERSION_QUERY], "requestBody": comment,
            "responses": {"200": _json({"type": "object"}, "done"),
                          "202": _json({"type": "object"}, "an approval request was opened"), **errors}}},
        f"/api/v1/{e.id}/{{id}}/history": {"get": {
            "tags": [tag], "summary": "State history", "parameters": rid,
            "responses": {"200": _json({"type": "object"}), **errors}}},
        f"/api/v1/{e.id}/{{id}}/approvals": {"get": {
            "tags": [tag], "summary": "Approval requests of the record with their steps", "parameters": rid,
            "responses": {"200": _json({"type": "object"}), **errors}}},
    }


def _approval_paths() -> dict:
    task = [{"name": "task_id", "in": "path", "required": True, "schema": {"type": "integer"}},
            {"name": "decision", "in": "path", "required": True, "schema": {"enum": ["approve", "reject", "delegate"]}}]
    body = {"content": {"application/json": {"schema": {"type": "object", "properties": {
        "comment": {"type": "string"}, "delegate_to": {"type": "integer"}}}}}}
    return {
        "/api/v1/approvals": {"get": {"tags": ["Approvals"], "summary": "The acting user's pending approval tasks",
                                      "responses": {"200": _json({"type": "object"})}}},
        "/api/v1/approvals/{task_id}/{decision}": {"post": {
            "tags": ["Approvals"], "summary": "Approve, reject (comment required) or delegate a task",
            "parameters": task, "requestBody": body, "responses": {"200": _json({"type": "object"}),
                                                                    "403": {"description": "not an approver"},
                                                                    "409": {"description": "already decided"},
                                                                    "422": {"description": "comment missing"}}}},
        "/api/v1/approval-requests/{id}/withdraw": {"post": {
            "tags": ["Approvals"], "summary": "Withdraw a pending request (the requester)",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": {"200": _json({"type": "object"})}}},
        "/api/v1/delegations": {"post": {
            "tags": ["Approvals"], "summary": "Holiday cover: delegate my approvals for a date range",
            "requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": [
                "delegate", "starts_on", "ends_on"], "properties": {"delegate": {"type": "integer"},
                "starts_on": {"type": "string", "format": "date"}, "ends_on": {"type": "string", "format": "date"}}}}}},
            "responses": {"201": _json({"type": "object"}, "created"), "422": {"description": "invalid"}}}},
    }


UNREAD = ["1", "true", "yes", "0", "false", "no", ""]


def _automation_paths() -> dict:
    ok = {"200": _json({"type": "object"})}
    unauthorized = {"401": {"description": "no valid token"}}
    admin = {"403": {"description": "not an administrator"}, **unauthorized}
    paging = [{"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
              {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
              {"name": "unread", "in": "query", "schema": {"enum": UNREAD}}]
    hook = {"type": "object", "required": ["url", "events", "secret"], "properties": {
        "url": {"type": "string", "format": "uri", "maxLength": 2000},
        "events": {"type": "array", "minItems": 1, "items": {"type": "string",
                                                             "pattern": "^[a-z][a-z0-9_]*\\.(created|updated|deleted|transition)$"}},
        "secret": {"type": "string", "minLength": 8, "maxLength": 255}}}
    jid = [{"name": "kind", "in": "path", "required": True, "schema": {"enum": ["timer", "webhook", "email"]}},
           {"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}]
    return {
        "/api/v1/notifications": {"get": {"tags": ["Notifications"], "summary": "The acting user's notifications",
                                          "parameters": paging, "responses": {
                                              **ok, "422": {"description": "bad paging"}, **unauthorized}}},
        "/api/v1/notifications/read": {"post": {
            "tags": ["Notifications"], "summary": "Mark notifications read (the given ids, or all)",
            "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
                "ids": {"type": ["array", "null"], "items": {"type": "integer", "minimum": 1, "maximum": 2 ** 31 - 1},
                        "description": "leave out (or null) to mark all read"}}}}}},
            "responses": {**ok, "422": {"description": "bad ids"}, **unauthorized}}},
        "/api/v1/webhooks": {
            "get": {"tags": ["Webhooks"], "summary": "Webhook subscriptions", "responses": {**ok, **admin}},
            "post": {"tags": ["Webhooks"], "summary": "Subscribe a URL to record events (signed deliveries)",
                     "requestBody": {"content": {"application/json": {"schema": hook}}},
                     "responses": {"201": _json({"type": "object"}, "created"), **admin,
                                   "422": {"description": "invalid"}}}},
        "/api/v1/webhooks/{id}": {"delete": {
            "tags": ["Webhooks"], "summary": "Remove a subscription",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": {"204": {"description": "removed"}, "404": {"description": "no such webhook"}, **admin}}},
        "/api/v1/admin/jobs": {"get": {"tags": ["Jobs"], "summary": "Failed background work with its error",
                                       "responses": {**ok, **admin}}},
        "/api/v1/admin/jobs/{kind}/{job_id}/retry": {"post": {
            "tags": ["Jobs"], "summary": "Re-run a failed e-mail, webhook call or timer", "parameters": jid,
            "responses": {**ok, "404": {"description": "unknown kind"}, "409": {"description": "not waiting"},
                          **admin}}},
    }


def _org_paths() -> dict:
    """The admin API of users, teams and regions (platform_/org_api.py)."""
    admin = {"401": {"description": "no valid token"}, "403": {"description": "not an administrator"}}
    bad = {"404": {"description": "not found"}, "422": {"description": "invalid fields (message and `fields`)"}}
    text = {"type": ["string", "null"]}
    user = {"type": "object", "properties": {
        "username": {"type": "string", "maxLength": 64}, "password": {"type": "string", "minLength": 10},
        "roles": {"type": "array", "items": {"type": "string"}, "minItems": 1}, "full_name": text, "email": text,
        "language": {"enum": ["en", "zh", None]}, "manager": {**text, "description": "user name of the manager"},
        "team": {**text, "description": "team id"}, "region": {**text, "description": "region id"}}}
    unit = {"type": "object", "properties": {"id": {"type": "string", "maxLength": 64}, "label_en": text,
                                              "label_zh": text}}
    team = {"type": "object", "properties": {**unit["properties"], "parent": {**text, "description": "parent team id"},
                                              "manager": {**text, "description": "user name"}}}
    name = [{"name": "username", "in": "path", "required": True, "schema": {"type": "string"}}]
    ident = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    paging = [{"name": "q", "in": "query", "schema": {"type": "string"}, "description": "user name, name or e-mail"},
              {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
              {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}}]
    ok = _json({"type": "object"})

    def body(schema):
        return {"content": {"application/json": {"schema": schema}}}
    out = {
        "/api/v1/admin/users": {
            "get": {"tags": ["Organisation"], "summary": "Users, a page at a time, searchable", "parameters": paging,
                    "responses": {"200": ok, **admin}},
            "post": {"tags": ["Organisation"], "summary": "Create a user (password policy applies; audited)",
                     "requestBody": body({**user, "required": ["username", "password", "roles"]}),
                     "responses": {"201": _json({"type": "object"}, "created"), **admin, **bad}}},
        "/api/v1/admin/users/{username}": {
            "get": {"tags": ["Organisation"], "parameters": name, "responses": {"200": ok, **admin, **bad}},
            "patch": {"tags": ["Organisation"], "summary": "Change profile and roles; `password` resets it (audited)",
                      "parameters": name, "requestBody": body(user), "responses": {"200": ok, **admin, **bad}}},
    }
    for action, what in (("disable", "Disable: sign-in refused, sessions ended, tokens revoked"),
                         ("enable", "Let a disabled user sign in again")):
        out[f"/api/v1/admin/users/{{username}}/{action}"] = {"post": {
            "tags": ["Organisation"], "summary": what, "parameters": name,
            "responses": {"200": ok, "409": {"description": "own account or the last administrator"}, **admin, **bad}}}
    for kind, schema in (("teams", team), ("regions", unit)):
        out[f"/api/v1/admin/{kind}"] = {
            "get": {"tags": ["Organisation"], "summary": f"All {kind} with member counts",
                    "responses": {"200": ok, **admin}},
            "post": {"tags": ["Organisation"], "summary": f"Create one of the {kind} (audited)",
                     "requestBody": body({**schema, "required": ["id"]}),
                     "responses": {"201": _json({"type": "object"}, "created"), **admin, **bad}}}
        out[f"/api/v1/admin/{kind}/{{id}}"] = {
            "patch": {"tags": ["Organisation"], "summary": "Change labels" + (", parent, manager" if kind == "teams" else ""),
                      "parameters": ident, "requestBody": body(schema), "responses": {"200": ok, **admin, **bad}},
            "delete": {"tags": ["Organisation"], "summary": "Remove it when no user (or sub-team) uses it",
                       "parameters": ident, "responses": {"204": {"description": "removed"},
                                                          "409": {"description": "still in use"}, **admin, **bad}}}
    return out


def _audit_paths() -> dict:
    """The audit trail (H6) for administrators and the roles of access.yaml `audit_readers`."""
    q = [{"name": n, "in": "query", "schema": sch, "description": d} for n, sch, d in (
        ("entity", {"type": "string"}, "entity id (also sys_user for sign-ins and user administration)"),
        ("record", {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 2 ** 31 - 1}, EMPTY]}, "record id"),
        ("user", {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 2 ** 31 - 1}, EMPTY]}, "id of the acting user"),
        ("action", {"type": "string"}, "create, update, delete, restore, transition, signin, signin_failed, "
                                        "signout, config.reload, config.apply, user.*, token.*, team.*, region.*"),
        ("since", {"anyOf": [{"type": "string", "format": "date"}, EMPTY]}, "from this day (UTC), YYYY-MM-DD"),
        ("until", {"anyOf": [{"type": "string", "format": "date"}, EMPTY]}, "up to and including this day (UTC), YYYY-MM-DD"),
        ("page", {"type": "integer", "minimum": 1}, "page"),
        ("per_page", {"type": "integer", "minimum": 1, "maximum": 200}, "entries per page (default 50)"),
        ("format", {"enum": ["json", "csv"]}, "csv: every match as a file (UTF-8 with BOM)"))]
    item = {"type": "object", "properties": {
        "id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}, "user": {"type": ["string", "null"]},
        "user_id": {"type": ["integer", "null"]}, "action": {"type": "string"}, "entity": {"type": ["string", "null"]},
        "record": {"type": ["integer", "null"]}, "detail": {"type": ["string", "null"]},
        "changes": {"type": "object", "description": "{field: [before, after]}"}}}
    return {"/api/v1/audit": {"get": {
        "tags": ["Audit"], "summary": "Search the audit trail (newest first), or export it as CSV", "parameters": q,
        "responses": {"200": {"description": "ok", "content": {
            "application/json": {"schema": {"type": "object", "properties": {
                "items": {"type": "array", "items": item}, "total": {"type": "integer"},
                "page": {"type": "integer"}, "per_page": {"type": "integer"}}}},
            "text/csv": {"schema": {"type": "string"}}}},
            "401": {"description": "no valid token"}, "403": {"description": "not an audit reader"},
            "422": {"description": "bad filter"}}}}}
