"""The OpenAPI document says what the server does (issue 12): every operation lists its error answers
with the one error shape, system fields are read-only, list filters carry the field's type, and a
create body may leave out a field its link fills in."""
from __future__ import annotations

import pytest

from tests.conftest import ROOT

METHODS = ("get", "post", "patch", "put", "delete")


@pytest.fixture
def doc(make_app):
    app, token, _ = make_app(ROOT / "config")
    r = app.test_client().get("/api/v1/openapi.json")
    assert r.status_code == 200
    return r.get_json()


def _operations(doc):
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_every_operation_documents_its_error_answers_with_the_error_shape(doc):
    for path, method, op in _operations(doc):
        codes = set(op["responses"])
        assert {"401", "503"} <= codes, (method, path, codes)
        params = {p["in"] for p in op.get("parameters", [])}
        if "path" in params:
            assert "404" in codes, (method, path)
        if "requestBody" in op:
            assert {"400", "413", "422"} <= codes, (method, path)
        for code, answer in op["responses"].items():
            if code.startswith(("4", "5")):
                assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error"] and error["properties"]["error"]["required"] == ["code", "message"]


def test_the_operations_that_lacked_401_and_404_have_them(doc):
    assert {"401", "404"} <= set(doc["paths"]["/api/v1/approval-requests/{id}/withdraw"]["post"]["responses"])
    assert {"401", "404"} <= set(doc["paths"]["/api/v1/approvals/{task_id}/{decision}"]["post"]["responses"])
    assert "401" in doc["paths"]["/api/v1/delegations"]["post"]["responses"]
    assert "401" in doc["paths"]["/api/v1/approvals"]["get"]["responses"]


def test_system_fields_are_read_only_in_records_and_inputs(doc):
    schemas = doc["components"]["schemas"]
    for name in ("customer", "customer_input"):
        props = schemas[name]["properties"]
        for key in ("id", "created_at", "created_by", "updated_at", "updated_by", "deleted_at", "code"):
            assert props[key].get("readOnly") is True, (name, key)
        assert not props["name"].get("readOnly") and not props["owner"].get("readOnly")
    assert schemas["contract"]["properties"]["status"]["readOnly"] is True
    # `version` is what the client read: an input of a change, read-only in a new record
    patch = doc["paths"]["/api/v1/customer/{id}"]["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert patch["properties"]["version"]["minimum"] == 1 and not patch["properties"]["version"].get("readOnly")
    assert schemas["customer_input"]["properties"]["version"]["readOnly"] is True


def test_datetimes_are_documented_as_date_time(doc):
    created = doc["components"]["schemas"]["customer"]["properties"]["created_at"]
    assert {"type": "string", "format": "date-time"} in [
        {k: v for k, v in alt.items() if k in ("type", "format")} for alt in created["anyOf"]]


def test_list_filters_carry_the_field_type(doc):
    params = {p["name"]: p["schema"] for p in doc["paths"]["/api/v1/contract"]["get"]["parameters"]}
    typed = params["customer"]["anyOf"][0]
    assert typed["type"] == "integer" and typed["minimum"] == 1
    assert params["start_date"]["anyOf"][0] == {"type": "string", "format": "date"}
    assert params["amount"]["anyOf"][0] == {"type": "number"}
    assert params["owner"]["anyOf"][0]["anyOf"][1] == {"enum": ["me", "@me"]}
    assert params["name"] == {"type": "string"}
    assert params["per_page"]["anyOf"][0]["maximum"] == 500 and params["page"]["anyOf"][0]["minimum"] == 1
    assert {"type": "string", "maxLength": 0} in params["start_date"]["anyOf"]   # empty: no value


def test_required_text_has_a_minimum_length_and_numbers_their_bounds(doc):
    props = doc["components"]["schemas"]["customer_input"]["properties"]
    assert props["name"]["minLength"] == 1
    assert props["employees"]["anyOf"][0]["maximum"] == 2 ** 31 - 1


def test_a_create_body_may_leave_out_what_its_link_fills_in(doc):
    order = doc["components"]["schemas"]["order_input"]
    assert "customer" not in order.get("required", [])
    assert {"anyOf": [{"required": ["customer"]}, {"required": ["contract"]}]} in order["allOf"]


def test_writes_document_the_version_they_take(doc):
    item = doc["paths"]["/api/v1/customer/{id}"]
    assert "If-Match" in {p["name"] for p in item["patch"]["parameters"]}
    assert {"If-Match", "version"} <= {p["name"] for p in item["delete"]["parameters"]}
    assert "post" in doc["paths"]["/api/v1/customer/{id}/restore"]
