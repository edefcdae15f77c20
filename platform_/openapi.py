"""An OpenAPI 3.1 document generated from the loaded config (A10)."""
from __future__ import annotations

from engine.model import Config
from engine.validation import field_schema, input_schema

ERROR = {"$ref": "#/components/schemas/Error"}


def _record_schema(config: Config, entity) -> dict:
    props = {}
    for f in entity.fields.values():
        if f.type == "table":
            props[f.id] = {"type": "array", "items": {"$ref": f"#/components/schemas/{f.of}"}}
        else:
            props[f.id] = field_schema(f)
    return {"type": "object", "properties": props, "title": entity.label.get("en")}


def openapi_document(config: Config) -> dict:
    schemas = {"Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}}}}}}}
    paths = {}
    for e in config.entities.values():
        schemas[e.id] = _record_schema(config, e)
        if e.child:
            continue
        schemas[f"{e.id}_input"] = input_schema(e, partial=False)
        ref = {"$ref": f"#/components/schemas/{e.id}"}
        errors = {str(c): {"description": d, "content": {"application/json": {"schema": ERROR}}}
                  for c, d in ((400, "bad request"), (401, "no or bad token"), (403, "forbidden"),
                               (404, "not found"), (409, "version conflict"), (422, "invalid fields"))}
        params = [{"name": "q", "in": "query", "schema": {"type": "string"}, "description": "text search"},
                  {"name": "sort", "in": "query", "schema": {"type": "string"}, "description": "-field,field"},
                  {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                  {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}}]
        for f in e.stored_fields:
            params.append({"name": f.id, "in": "query", "required": False, "schema": {"type": "string"},
                           "description": f"{f.label.get('en')}; also {f.id}__ne|lt|lte|gt|gte|in|contains"})
        tag = e.label.get("en", e.id)
        paths[f"/api/v1/{e.id}"] = {
            "get": {"tags": [tag], "summary": f"List {tag}", "parameters": params, "responses": {
                "200": {"description": "a page", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"items": {"type": "array", "items": ref},
                                                     "total": {"type": "integer"}, "page": {"type": "integer"},
                                                     "per_page": {"type": "integer"}}}}}}, **errors}},
            "post": {"tags": [tag], "summary": f"Create a {tag}", "requestBody": {"content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{e.id}_input"}}}},
                "responses": {"201": {"description": "created", "content": {"application/json": {"schema": ref}}}, **errors}},
        }
        rid = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
        paths[f"/api/v1/{e.id}/{{id}}"] = {
            "get": {"tags": [tag], "parameters": rid, "responses": {"200": {"description": "the record", "content": {
                "application/json": {"schema": ref}}}, **errors}},
            "patch": {"tags": [tag], "parameters": rid, "requestBody": {"content": {"application/json": {
                "schema": input_schema(e, partial=True)}}},
                "responses": {"200": {"description": "updated", "content": {"application/json": {"schema": ref}}}, **errors}},
            "delete": {"tags": [tag], "parameters": rid, "responses": {"204": {"description": "moved to the recycle bin"},
                                                                       **errors}},
        }
        if e.state_field is not None:
            paths.update(_workflow_paths(e, tag, rid, errors))
        if config.auto.slas_for(e.id):
            paths[f"/api/v1/{e.id}/{{id}}/sla"] = {"get": {
                "tags": [tag], "summary": "SLA clocks of the record (working time of its calendar)",
                "parameters": rid, "responses": {"200": _json({"type": "object", "properties": {"items": {
                    "type": "array", "items": {"$ref": "#/components/schemas/SlaClock"}}}}), **errors}}}
    paths.update(_approval_paths())
    paths.update(_automation_paths())
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
    return {"openapi": "3.1.0", "info": {"title": (config.pack.label.get("en") if config.pack else "CRM") + " API",
                                         "version": config.pack.version if config.pack else "0"},
            "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}], "paths": paths}


def _json(schema, description="ok"):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _workflow_paths(e, tag, rid, errors) -> dict:
    comment = {"content": {"application/json": {"schema": {"type": "object", "properties": {
        "comment": {"type": "string"}, "version": {"type": "integer"}}}}}}
    name = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    return {
        f"/api/v1/{e.id}/{{id}}/transitions": {"get": {
            "tags": [tag], "summary": "Transitions of the record for the acting user, each allowed or with the reason",
            "parameters": rid, "responses": {"200": _json({"type": "object", "properties": {
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/Transition"}}}}), **errors}}},
        f"/api/v1/{e.id}/{{id}}/transitions/{{name}}": {"post": {
            "tags": [tag], "summary": "Run a transition (one transaction: checks, actions, history)",
            "parameters": rid + name, "requestBody": comment,
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


def _automation_paths() -> dict:
    ok = {"200": _json({"type": "object"})}
    unauthorized = {"401": {"description": "no valid token"}}
    admin = {"403": {"description": "not an administrator"}, **unauthorized}
    paging = [{"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
              {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
              {"name": "unread", "in": "query", "schema": {"enum": ["1", "true", "yes", "0"]}}]
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
                "ids": {"type": "array", "items": {"type": "integer", "minimum": 1}}}}}}},
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
