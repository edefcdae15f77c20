"""The OpenAPI part of data in and out (issue 10): an entity's import and export
(platform_/dataio_api.py) and the reports and dashboards (platform_/reports_api.py). The error
answers get the shared `Error` shape in openapi_conform.py."""
from __future__ import annotations

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FILE = {"type": "string", "format": "binary"}
LIST_ONLY = ("page", "per_page", "count")
ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description):
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


def entity_paths(e, tag: str, list_params: list) -> dict:
    """`POST /<entity>/import` (multipart) and `GET /<entity>/export` (the list's filters)."""
    row_error = {"type": "object", "required": ["line", "field", "message"], "properties": {
        "line": {"type": ["integer", "null"]}, "field": {"type": ["string", "null"]}, "message": {"type": "string"}}}
    result = {"type": "object", "required": ["created", "updated", "errors"], "properties": {
        "created": {"type": "integer"}, "updated": {"type": "integer"}, "skipped": {"type": "integer"},
        "errors": {"type": "array", "items": row_error},
        "unknown_columns": {"type": "array", "items": {"type": "string"}},
        "import_id": {"type": ["integer", "null"]}}}
    form = {"type": "object", "required": ["file"], "properties": {
        "file": {**FILE, "description": "a CSV (UTF-8, UTF-8 with BOM, GBK/GB18030) or XLSX file; header: "
                                        "field ids or labels in either language"},
        "dry_run": {"enum": ["1", "true", "yes", "on", "0", "false", "no", "off", ""],
                    "description": "check every row, change nothing"},
        "key": {"type": "string", "description": "a field: a row whose value matches a record updates it"},
        "mapping": {"type": "string", "description": "JSON {column: field id} instead of the guessed mapping"}}}
    export = [p for p in list_params if p["name"] not in LIST_ONLY]
    export += [{"name": "format", "in": "query", "schema": {"enum": ["csv", "xlsx"]},
                "description": "csv (default; UTF-8 with BOM, formula cells neutralised) or xlsx"},
               {"name": "fields", "in": "query", "schema": {"type": "string"},
                "description": "comma-separated field ids (default: every field you may see)"}]
    return {
        f"/api/v1/{e.id}/import": {"post": {
            "tags": [tag], "summary": f"Import {tag} records from a CSV or XLSX file (`import` permission)",
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": form}}},
            "responses": {"200": {"description": "imported (or checked, with dry_run); bad rows in `errors`",
                                  "content": {"application/json": {"schema": result}}},
                          "400": _error("not a CSV or XLSX file, an unknown encoding, no header row, a bad key "
                                        "or mapping"),
                          "403": _error("no `import` permission on the entity"),
                          "413": _error("the file is larger than the limit (CRM_IMPORT_MAX_MB)"),
                          "422": _error("a duplicate or key rule refused the file")}}},
        f"/api/v1/{e.id}/export": {"get": {
            "tags": [tag], "summary": f"Every {tag} record the list filters match, as a CSV or XLSX file "
                                      f"(streamed; your row scope, without fields hidden from you)",
            "parameters": export,
            "responses": {"200": {"description": "the file", "content": {
                "text/csv": {"schema": {"type": "string"}}, XLSX: {"schema": FILE}}},
                "400": _error("a bad format, field or filter"),
                "403": _error("no `export` permission on the entity")}}},
    }


def report_paths(config) -> dict:
    """The reports and dashboards a user may run, and one report's figures or file."""
    ids = sorted(config.reports)
    column = {"type": "object", "required": ["id", "kind", "type", "label"], "properties": {
        "id": {"type": "string"}, "kind": {"enum": ["group", "measure"]}, "type": {"type": "string"},
        "label": {"type": "string"}}}
    figures = {"type": "object", "required": ["id", "columns", "rows"], "properties": {
        "id": {"type": "string"}, "label": {"type": "string"},
        "columns": {"type": "array", "items": column},
        "rows": {"type": "array", "items": {"type": "array"},
                 "description": "raw values: state and option ids, link ids, bucket text, exact numbers"},
        "totals": {"type": ["array", "null"]},
        "labels": {"type": "object", "description": "{column: {value: text}} for the group columns"}}}
    label = {"type": "object", "additionalProperties": {"type": "string"}}
    listing = {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {
        "type": "object", "required": ["id"], "properties": {
            "id": {"type": "string"}, "label": label, "entity": {"type": "string"}, "chart": {"type": "string"},
            "columns": {"type": "array", "items": {"type": "string"}}}}}}}
    boards = {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {
        "type": "object", "required": ["id"], "properties": {
            "id": {"type": "string"}, "label": label, "reports": {"type": "array", "items": {"type": "string"}}}}}}}
    params = [{"name": "report_id", "in": "path", "required": True,
               "schema": {"anyOf": [{"enum": ids}, {"type": "string", "maxLength": 64}]},
               "description": "a report id: " + ", ".join(ids)},
              {"name": "format", "in": "query", "schema": {"enum": ["json", "csv", "xlsx"]},
               "description": "json (default), or the table as a file with labels in your language: csv "
                              "(UTF-8 with BOM) or xlsx (numbers as exact decimals); files need the "
                              "`export` permission on the report's entity"}]
    ok = {"description": "the report's figures, computed in SQL under your row scope", "content": {
        "application/json": {"schema": figures}, "text/csv": {"schema": {"type": "string"}}, XLSX: {"schema": FILE}}}
    return {
        "/api/v1/reports": {"get": {"tags": ["Reports"], "summary": "The reports you may run",
                                    "responses": {"200": {"description": "ok", "content": {
                                        "application/json": {"schema": listing}}}}}},
        "/api/v1/reports/{report_id}": {"get": {
            "tags": ["Reports"], "summary": "A report's figures; its `params` and any list filter of its source "
                                            "entity narrow it (?since=…, ?owner=me)",
            "parameters": params,
            "responses": {"200": ok, "400": _error("a bad format, parameter or filter"),
                          "403": _error("the report is not for your roles, uses a field hidden from you, or "
                                        "(files) you may not export its entity"),
                          "404": _error("there is no such report")}}},
        "/api/v1/dashboards": {"get": {"tags": ["Reports"], "summary": "The dashboards of your roles",
                                       "responses": {"200": {"description": "ok", "content": {
                                           "application/json": {"schema": boards}}}}}},
    }
