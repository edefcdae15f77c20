"""The OpenAPI document covers data in and out (issue 10): an entity's import and export and the
reports and dashboards — paths, parameters, bodies and every error answer with the error shape — and
those operations answer as documented (schemathesis, bounded and deterministic, on the default pack
with demo records)."""
from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import ROOT

CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance", "negative_data_rejection",
          "unsupported_method", "ignored_auth", "missing_required_header"]      # as test_api_fuzz.py
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ERROR = {"$ref": "#/components/schemas/Error"}


@pytest.fixture
def doc(make_app):
    app, _token, _ = make_app(ROOT / "config")
    r = app.test_client().get("/api/v1/openapi.json")
    assert r.status_code == 200
    return r.get_json()


def _errors(op, codes):
    for code in codes:
        assert op["responses"][code]["content"]["application/json"]["schema"] == ERROR, code


def test_import_is_documented_for_every_entity(doc):
    entities = [p.split("/")[3] for p in doc["paths"] if p.startswith("/api/v1/") and p.count("/") == 3
                and "post" in doc["paths"][p] and p.split("/")[3] not in ("reports", "me", "approvals")]
    assert "customer" in entities
    for name in entities:
        op = doc["paths"].get(f"/api/v1/{name}/import", {}).get("post")
        if op is None:
            continue
        form = op["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert form["required"] == ["file"] and form["properties"]["file"]["format"] == "binary"
        assert {"dry_run", "key", "mapping"} <= set(form["properties"])
        result = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert {"created", "updated", "errors"} <= set(result["required"])
        assert result["properties"]["errors"]["items"]["required"] == ["line", "field", "message"]
        _errors(op, ("400", "401", "403", "413", "422"))
    assert "post" in doc["paths"]["/api/v1/customer/import"]


def test_export_takes_the_list_filters_and_answers_files(doc):
    op = doc["paths"]["/api/v1/contract/export"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["format"]["schema"] == {"enum": ["csv", "xlsx"]}
    assert {"q", "fields", "customer", "amount", "start_date"} <= set(params)
    assert "per_page" not in params and "page" not in params
    assert params["start_date"]["schema"]["anyOf"][0] == {"type": "string", "format": "date"}
    assert set(op["responses"]["200"]["content"]) == {"text/csv", XLSX}
    _errors(op, ("400", "401", "403"))


def test_reports_and_dashboards_are_documented(doc, make_app):
    op = doc["paths"]["/api/v1/reports/{report_id}"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["report_id"]["in"] == "path" and "pipeline_by_stage" in params["report_id"]["schema"]["anyOf"][0]["enum"]
    assert "sales_forecast" in params["report_id"]["description"]
    assert params["format"]["schema"] == {"enum": ["json", "csv", "xlsx"]}
    assert set(op["responses"]["200"]["content"]) == {"application/json", "text/csv", XLSX}
    figures = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"columns", "rows"} <= set(figures["required"])
    _errors(op, ("400", "401", "403", "404"))
    for path in ("/api/v1/reports", "/api/v1/dashboards"):
        assert "items" in doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["required"]
        _errors(doc["paths"][path]["get"], ("401",))


@pytest.fixture
def data_schema(make_app, request):
    from engine import demo

    if not hasattr(request.node, "_nodeid"):          # see tests/platform_/test_api_fuzz.py
        request.node._nodeid = request.node.nodeid
    app, token, _staff = make_app(ROOT / "config")
    rt = app.extensions["crm"]
    rt.workflows.register_definitions()
    demo.generate(rt.engine, rt.config, rt.store.metadata, 3, seed=1)
    config = schemathesis.Config.from_dict({
        "headers": {"Authorization": f"Bearer {token}"},
        "generation": {"mode": "all", "max-examples": 4, "deterministic": True, "no-shrink": True,
                       "database": "none"},
        "phases": {"examples": {"enabled": False}, "coverage": {"enabled": True},
                   "fuzzing": {"enabled": True}, "stateful": {"enabled": False}},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        # the boundary values of every parameter on the reports; generated requests on import and export
        "operations": [{"include-path-regex": "/(import|export)$", "phases": {"coverage": {"enabled": False}}}],
    })
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config)
    return schema.include(path_regex=r"^/api/v1/(reports|dashboards|ticket/(import|export))")


data = schemathesis.pytest.from_fixture("data_schema")


@pytest.mark.fuzz
@pytest.mark.parametrize("db_url", [os.environ.get("CRM_FUZZ_DB", "sqlite")], indirect=True)  # as test_api_fuzz
@data.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), print_blob=False)
def test_data_operations_answer_as_documented(case):
    case.call_and_validate()
