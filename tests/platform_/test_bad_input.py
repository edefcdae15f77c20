"""Every bad input is a 4xx with a message, and nothing changes (issue 8's probe, issue 12):
numbers too large for their column, ids past 2^63 in paths, filters and links, JSON nested 10,000
deep, a lone UTF-16 surrogate, malformed delegation targets, self-approval through delegation and
the recycle bin for those who may not restore — on both databases."""
from __future__ import annotations

import json

import pytest

from platform_ import auth
from tests.conftest import ROOT

HUGE = 99999999999999999999999


@pytest.fixture
def desk(make_app):
    app, token, staff_token = make_app(ROOT / "config")
    client = app.test_client()
    rt = app.extensions["crm"]

    def call(method, path, body=None, raw=None, tok=token):
        h = {"Authorization": f"Bearer {tok}", "Content-Type": "application/json"}
        r = client.open("/api/v1" + path, method=method, data=raw if raw is not None else
                        (json.dumps(body) if body is not None else None), headers=h)
        return r.status_code, r.get_json(silent=True)
    call.rt, call.staff = rt, staff_token
    code, c = call("POST", "/customer", {"name": "Probe Co", "email": "probe@example.com"})
    assert code == 201
    call.customer = c
    return call


def _count(desk, entity):
    return desk("GET", f"/{entity}")[1]["total"]


@pytest.mark.parametrize("amount", [1e30, "12345678901234567890123456789012", "1e400", -1e25])
def test_money_too_large_for_its_column_is_a_422_naming_the_field(desk, amount):
    before = _count(desk, "contract")
    code, body = desk("POST", "/contract", {"name": "Big", "customer": desk.customer["id"], "amount": amount})
    assert code == 422, body
    said = body["error"]["fields"]["amount"]
    assert "too large" in said or "at least 0" in said or "is not a number" in said, said
    assert _count(desk, "contract") == before


def test_ids_past_2_63_are_404_or_4xx_never_500(desk):
    assert desk("GET", f"/customer/{HUGE}")[0] == 404
    assert desk("PATCH", f"/customer/{HUGE}", {"name": "x"})[0] == 404
    assert desk("DELETE", f"/customer/{HUGE}")[0] == 404
    assert desk("GET", f"/customer/{HUGE}/transitions")[0] == 404
    code, body = desk("GET", f"/contact?customer={HUGE}")
    assert code == 400 and "customer" in body["error"]["message"]
    before = _count(desk, "contact")
    code, body = desk("POST", "/contact", {"name": "Nobody", "customer": HUGE})
    assert code == 422 and "customer" in body["error"]["fields"]
    assert _count(desk, "contact") == before


def test_json_nested_ten_thousand_deep_is_a_400(desk):
    before = _count(desk, "customer")
    code, body = desk("POST", "/customer", raw="[" * 10000 + "]" * 10000)
    assert code == 400 and "nested" in body["error"]["message"]
    code, body = desk("POST", "/customer", raw='{"name": ' + "[" * 10000 + "]" * 10000 + "}")
    assert code == 400
    assert _count(desk, "customer") == before


def test_a_lone_surrogate_is_a_422_not_a_500(desk):
    before = _count(desk, "customer")
    code, body = desk("POST", "/customer", raw='{"name": "bad \\ud800 name", "email": "s@example.com"}')
    assert code == 422 and "invalid character" in body["error"]["fields"]["name"]
    assert _count(desk, "customer") == before


@pytest.fixture
def approval(desk):
    """A contract waiting for its sales manager: (task id, requester token, manager token, ids)."""
    eng = desk.rt.engine
    mgr = auth.create_user(eng, "mgr", "mgr-Passw0rd!", ["sales_manager"])
    rep = auth.create_user(eng, "rep", "rep-Passw0rd!", ["sales"], manager=mgr)
    other = auth.create_user(eng, "other", "other-Passw0rd!", ["sales_manager"])
    rep_tok, mgr_tok = auth.create_token(eng, "rep"), auth.create_token(eng, "mgr")
    code, c = desk("POST", "/contract", {"name": "Deal", "customer": desk.customer["id"], "amount": 5000,
                                         "start_date": "2026-12-01", "end_date": "2027-11-30"}, tok=rep_tok)
    assert code == 201, c
    assert desk("POST", f"/contract/{c['id']}/transitions/submit", {}, tok=rep_tok)[0] == 200
    code, r = desk("POST", f"/contract/{c['id']}/transitions/approve", {}, tok=rep_tok)
    assert code == 202, r
    tasks = desk("GET", "/approvals", tok=mgr_tok)[1]["items"]
    mine = [t for t in tasks if t["record_id"] == c["id"]]
    assert mine
    return {"task": mine[0]["id"], "rep": rep, "rep_tok": rep_tok, "mgr_tok": mgr_tok, "other": other,
            "contract": c["id"]}


@pytest.mark.parametrize("target", ["abc", True, 1.5, [1], HUGE, -3])
def test_a_malformed_delegation_target_is_a_422_and_the_task_stays(desk, approval, target):
    code, body = desk("POST", f"/approvals/{approval['task']}/delegate", {"delegate_to": target},
                      tok=approval["mgr_tok"])
    assert code == 422, body
    assert "delegate_to" in body["error"]["fields"] and "invalid literal" not in json.dumps(body)
    pending = desk("GET", "/approvals", tok=approval["mgr_tok"])[1]["items"]
    assert any(t["id"] == approval["task"] for t in pending)


def test_no_self_approval_through_delegation(desk, approval):
    code, body = desk("POST", f"/approvals/{approval['task']}/delegate", {"delegate_to": approval["rep"]},
                      tok=approval["mgr_tok"])
    assert code == 422 and "requester" in body["error"]["fields"]["delegate_to"], body
    assert desk("GET", "/approvals", tok=approval["rep_tok"])[1]["items"] == []
    assert desk("GET", f"/contract/{approval['contract']}")[1]["status"] == "in_review"
    # a legitimate delegation still works
    code, body = desk("POST", f"/approvals/{approval['task']}/delegate", {"delegate_to": approval["other"]},
                      tok=approval["mgr_tok"])
    assert code == 200, body


def test_the_recycle_bin_is_for_admins_only(desk):
    code, c = desk("POST", "/customer", {"name": "Binned", "email": "bin@example.com"})
    assert desk("DELETE", f"/customer/{c['id']}")[0] == 204
    code, body = desk("GET", "/customer?deleted=1", tok=desk.staff)
    assert code == 403, body
    code, body = desk("GET", "/customer?deleted=1")
    assert code == 200 and [r["name"] for r in body["items"]] == ["Binned"]
