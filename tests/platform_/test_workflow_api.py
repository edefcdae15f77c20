"""Workflows through the API: transitions, approvals, history (A5, A12)."""
import threading

import pytest

from platform_ import auth
from tests.conftest import FIXTURES


@pytest.fixture
def wapi(make_app):
    app, token, _ = make_app(FIXTURES / "flow")
    rt = app.extensions["crm"]
    for name, roles in [("clara", ["clerk"]), ("max", ["manager"])]:
        auth.create_user(rt.engine, name, f"{name}-Passw0rd", roles)
    tokens = {"admin": token, **{n: auth.create_token(rt.engine, n) for n in ("clara", "max")}}
    client = app.test_client()

    def call(who, method, path, body=None):
        r = client.open("/api/v1" + path, method=method, json=body,
                        headers={"Authorization": f"Bearer {tokens[who]}"})
        return r.status_code, r.get_json(silent=True)
    return call


def test_a5_transitions_endpoint_and_errors(wapi):
    s, p = wapi("clara", "POST", "/paper", {"title": "P"})
    s, t = wapi("clara", "GET", f"/paper/{p['id']}/transitions")
    assert s == 200
    submit = next(x for x in t["items"] if x["name"] == "submit")
    assert submit["allowed"] is False and "Amount" in submit["reason"] and submit["to"] == "review"
    s, e = wapi("clara", "POST", f"/paper/{p['id']}/transitions/submit", {})
    assert s == 422 and "amount" in e["error"]["fields"]
    s, e = wapi("clara", "POST", f"/paper/{p['id']}/transitions/reopen", {})
    assert s == 403
    s, e = wapi("clara", "POST", f"/paper/{p['id']}/transitions/nope", {})
    assert s == 404
    wapi("clara", "PATCH", f"/paper/{p['id']}", {"amount": 10})
    s, r = wapi("clara", "POST", f"/paper/{p['id']}/transitions/submit", {"comment": "ready"})
    assert s == 200 and r["status"] == "done" and r["record"]["status"] == "review"
    s, e = wapi("clara", "POST", f"/paper/{p['id']}/transitions/submit", {})
    assert s == 409


def test_a12_approval_through_the_api(wapi):
    _, p = wapi("clara", "POST", "/paper", {"title": "P", "amount": 10})
    wapi("clara", "POST", f"/paper/{p['id']}/transitions/submit", {})
    s, r = wapi("clara", "POST", f"/paper/{p['id']}/transitions/approve", {"comment": "please"})
    assert s == 202 and r["status"] == "pending_approval"
    s, inbox = wapi("max", "GET", "/approvals")
    assert s == 200 and inbox["total"] == 1 and inbox["items"][0]["record_id"] == p["id"]
    task = inbox["items"][0]["id"]
    assert wapi("clara", "POST", f"/approvals/{task}/approve", {})[0] == 403
    s, d = wapi("max", "POST", f"/approvals/{task}/approve", {"comment": "ok"})
    assert s == 200 and d["status"] == "approved"
    assert wapi("max", "POST", f"/approvals/{task}/approve", {})[0] == 409
    _, rec = wapi("admin", "GET", f"/paper/{p['id']}")
    assert rec["status"] == "approved" and rec["follow_up"]
    _, hist = wapi("admin", "GET", f"/paper/{p['id']}/history")
    assert [h["event"] for h in hist["items"]] == ["transition", "approval_requested", "approved", "transition"]
    _, trail = wapi("admin", "GET", f"/paper/{p['id']}/approvals")
    assert trail["items"][0]["status"] == "approved"


def test_a5_race_through_the_api(wapi):
    _, p = wapi("clara", "POST", "/paper", {"title": "P", "amount": 10})
    codes = []

    def go():
        codes.append(wapi("clara", "POST", f"/paper/{p['id']}/transitions/submit", {})[0])
    threads = [threading.Thread(target=go) for _ in range(12)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(codes) == [200] + [409] * 11


def test_a2_attachment_stored_by_content_hash(wapi, tmp_path):
    import base64
    import hashlib
    body = "合同正文 v1".encode()
    s, p = wapi("clara", "POST", "/paper", {"title": "P", "scan": {
        "name": "../../contract.pdf", "content_base64": base64.b64encode(body).decode()}})
    assert s == 201
    scan = p["scan"]
    assert scan["sha256"] == hashlib.sha256(body).hexdigest() and scan["size"] == len(body)
    assert scan["name"] == "contract.pdf"                          # no path tricks
    assert (tmp_path / "files" / scan["sha256"][:2] / scan["sha256"]).read_bytes() == body
    s, e = wapi("clara", "POST", "/paper", {"title": "P", "scan": {"name": "x", "content_base64": "@@not base64"}})
    assert s == 422 and "base64" in e["error"]["fields"]["scan"]
    big = base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()
    s, e = wapi("clara", "POST", "/paper", {"title": "P", "scan": {"name": "big.bin", "content_base64": big}})
    assert s == 422 and "larger than 1 MB" in e["error"]["fields"]["scan"]


def test_a12_holiday_cover_through_the_api(wapi):
    _, me = wapi("admin", "GET", "/me")
    _, maxu = wapi("max", "GET", "/me")
    s, e = wapi("max", "POST", "/delegations", {"delegate": maxu["id"], "starts_on": "2026-01-01", "ends_on": "2099-01-01"})
    assert s == 422 and "delegate" in e["error"]["fields"]
    s, e = wapi("max", "POST", "/delegations", {"delegate": me["id"], "starts_on": "2026-02-01", "ends_on": "2026-01-01"})
    assert s == 422 and "ends_on" in e["error"]["fields"]
    s, d = wapi("max", "POST", "/delegations", {"delegate": me["id"], "starts_on": "2020-01-01", "ends_on": "2099-01-01"})
    assert s == 201
    _, p = wapi("clara", "POST", "/paper", {"title": "P", "amount": 10})
    wapi("clara", "POST", f"/paper/{p['id']}/transitions/submit", {})
    wapi("clara", "POST", f"/paper/{p['id']}/transitions/approve", {})
    assert wapi("max", "GET", "/approvals")[1]["total"] == 0
    [task] = wapi("admin", "GET", "/approvals")[1]["items"]
    assert task["delegated_from"] == maxu["id"]


def test_a10_openapi_documents_transitions_and_approvals(wapi):
    s, doc = wapi("admin", "GET", "/openapi.json")
    assert s == 200
    for path in ("/api/v1/paper/{id}/transitions", "/api/v1/paper/{id}/transitions/{name}",
                 "/api/v1/approvals", "/api/v1/approvals/{task_id}/{decision}", "/api/v1/delegations"):
        assert path in doc["paths"], path
    assert "/api/v1/memo/{id}/transitions" not in doc["paths"]           # memo has no workflow
    assert "202" in doc["paths"]["/api/v1/paper/{id}/transitions/{name}"]["post"]["responses"]
