"""The last pass over the OpenAPI document: every operation lists the error answers the server really
gives, each with the one error shape (issue 12).

The server's answers that do not depend on the operation: 401 without a valid token, 503 while the
configuration does not load; 400 (malformed JSON, a body that is not an object, a bad query), 413 (a
body over the size limit) and 422 (invalid fields) where there is a body or a query; 404 where the
path names something. An operation's own codes (403, 409, …) stay as its part of the document
declares them; an error answer without a body schema gets the shared `Error` one.
"""
from __future__ import annotations

ERROR = {"$ref": "#/components/schemas/Error"}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
DESCRIPTIONS = {"400": "bad request (malformed JSON, not an object, a bad query value)",
                "401": "no or bad token", "404": "not found", "413": "the body is larger than the limit",
                "422": "invalid fields (`fields` names each)", "503": "the configuration does not load"}

ERROR_SCHEMA = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string", "description": "not_found, forbidden, conflict, validation_failed, …"},
        "message": {"type": "string", "description": "in the language of Accept-Language (en, zh)"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "field id → what is wrong with it"},
        "current": {"type": "object", "description": "409 on a stale version: the record as it is now"},
        "problems": {"type": "array", "items": {"type": "string"}}}}}}


def conform(doc: dict) -> dict:
    doc.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for item in doc.get("paths", {}).values():
        shared = item.get("parameters", [])
        for method in METHODS:
            op = item.get(method)
            if op is not None:
                _operation(op, shared + op.get("parameters", []))
    return doc


def _operation(op: dict, params: list) -> None:
    responses = op.setdefault("responses", {})
    where = {p.get("in") for p in params}
    codes = ["503"]
    if op.get("security") != []:
        codes.append("401")
    if "requestBody" in op or "query" in where or "header" in where:
        codes += ["400", "422"]
    if "requestBody" in op:
        codes.append("413")
    if "path" in where:
        codes.append("404")
    for code in codes:
        responses.setdefault(code, {"description": DESCRIPTIONS[code]})
    for code, answer in responses.items():
        if code[:1] in ("4", "5") and "$ref" not in answer and "content" not in answer:
            answer["content"] = {"application/json": {"schema": ERROR}}
