"""What the schemathesis fuzz of the API found (test_api_fuzz.py), one case each: the answer is a 4xx
that names what is wrong, and nothing changed in the database."""
from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from engine.wftables import approval_tasks, delegations, requests
from platform_ import auth
from tests.conftest import ROOT


@pytest.fixture
def desk(make_app):
    app, token, staff_token = make_app(ROOT / "config")
    client = app.test_client()
    rt = app.extensions["crm"]

    def call(method, path, body=None, raw=None, tok=token, headers=None):
        h = {"Authorization": f"Bearer {tok}", "Content-Type": "application/json", **(headers or {})}
        r = client.open("/api/v1" + path, method=method, data=raw if raw is not None else
                        (json.dumps(body) if body is not None else None), headers=h)
        return r.status_code, r.get_json(silent=True), r.headers
    call.rt = rt
    return call


def _rows(desk, table):
    with desk.rt.engine.connect() as c:
        return [dict(r) for r in c.execute(sa.select(table).order_by(table.c.id)).mappings()]


@pytest.fixture
def approval(desk):
    """A contract waiting for its sales manager's approval."""
    eng = desk.rt.engine
    mgr = auth.create_user(eng, "mgr", "mgr-Passw0rd!", ["sales_manager"])
    auth.create_user(eng, "rep", "rep-Passw0rd!", ["sales"], manager=mgr)
    rep_tok, mgr_tok = auth.create_token(eng, "rep"), auth.create_token(eng, "mgr")
    code, cust, _ = desk("POST", "/customer", {"name": "Fuzz Co", "email": "fuzz@example.com"}, tok=rep_tok)
    assert code == 201, cust
    code, c, _ = desk("POST", "/contract", {"name": "Deal", "customer": cust["id"], "amount": 5000,
                                            "start_date": "2026-12-01", "end_date": "2027-11-30"}, tok=rep_tok)
    assert code == 201, c
    assert desk("POST", f"/contract/{c['id']}/transitions/submit", {}, tok=rep_tok)[0] == 200
    code, r, _ = desk("POST", f"/contract/{c['id']}/transitions/approve", {}, tok=rep_tok)
    assert code == 202, r
    task = [t for t in desk("GET", "/approvals", tok=mgr_tok)[1]["items"] if t["record_id"] == c["id"]][0]
    return {"task": task["id"], "request": r["approval"]["id"], "rep_tok": rep_tok, "mgr_tok": mgr_tok,
            "contract": c["id"]}


# ---- 500s the fuzz found -------------------------------------------------------------------
@pytest.mark.parametrize("comment", [["looks", "fine"], True, {"text": "ok"}, 3])
def test_a_decision_comment_that_is_not_text_is_a_422(desk, approval, comment):
    """Was a 500: AttributeError: 'list' object has no attribute 'strip'."""
    before = _rows(desk, approval_tasks)
    code, body, _ = desk("POST", f"/approvals/{approval['task']}/approve", {"comment": comment},
                         tok=approval["mgr_tok"])
    assert code == 422, body
    assert body["error"]["fields"] == {"comment": "a text"}
    assert _rows(desk, approval_tasks) == before
    assert desk("GET", f"/contract/{approval['contract']}")[1]["status"] == "in_review"


def test_a_decision_comment_with_a_lone_surrogate_is_a_422(desk, approval):
    """The database cannot store a lone UTF-16 surrogate; it was a 500 on the way in."""
    before = _rows(desk, approval_tasks)
    code, body, _ = desk("POST", f"/approvals/{approval['task']}/reject",
                         raw='{"comment": "no \\ud800 way"}', tok=approval["mgr_tok"])
    assert code == 422, body
    assert "invalid character" in body["error"]["fields"]["comment"]
    assert _rows(desk, approval_tasks) == before


def test_a_withdrawal_comment_that_is_not_text_is_a_422_and_the_request_stays(desk, approval):
    before = _rows(desk, requests)
    code, body, _ = desk("POST", f"/approval-requests/{approval['request']}/withdraw", {"comment": [1, 2]},
                         tok=approval["rep_tok"])
    assert code == 422 and body["error"]["fields"] == {"comment": "a text"}, body
    assert _rows(desk, requests) == before and before[-1]["status"] == "pending"


def test_a_transition_comment_with_a_lone_surrogate_is_a_422(desk, approval):
    before = desk("GET", f"/contract/{approval['contract']}/history")[1]["items"]
    code, body, _ = desk("POST", f"/contract/{approval['contract']}/transitions/approve",
                         raw='{"comment": "\\udfff"}', tok=approval["rep_tok"])
    assert code == 422 and "invalid character" in body["error"]["fields"]["comment"], body
    assert desk("GET", f"/contract/{approval['contract']}/history")[1]["items"] == before


@pytest.mark.parametrize("delegate", [774518610878946852470784, 2 ** 31, 0, -4, True, "2", 1.5, None])
def test_a_delegation_to_an_impossible_user_id_is_a_422_and_none_is_stored(desk, delegate):
    """A 24-digit id was a 500 (OverflowError: Python int too large to convert to SQLite INTEGER);
    `true` would have been user 1."""
    code, body, _ = desk("POST", "/delegations", {"delegate": delegate, "starts_on": "2026-12-01",
                                                  "ends_on": "2026-12-24"})
    assert code == 422, body
    assert body["error"]["fields"]["delegate"] == "the id of the user who covers"
    assert _rows(desk, delegations) == []


def test_a_delegation_answers_with_the_dates_it_stored(desk):
    other = auth.create_user(desk.rt.engine, "cover", "cover-Passw0rd!", ["sales_manager"])
    code, body, _ = desk("POST", "/delegations", {"delegate": other, "starts_on": "2026-12-01",
                                                  "ends_on": "2026-12-24"})
    assert code == 201, body
    assert (body["starts_on"], body["ends_on"]) == ("2026-12-01", "2026-12-24")
    [row] = _rows(desk, delegations)
    assert (row["delegate"], row["starts_on"]) == (other, dt.date(2026, 12, 1))


# ---- answers the document did not match ----------------------------------------------------
@pytest.mark.parametrize("method, path, allowed", [
    ("TRACE", "/customer/1", {"GET", "PATCH", "DELETE", "PUT"}),
    ("DELETE", "/customer", {"GET", "POST"}),
    ("GET", "/delegations", {"POST"}),
    ("POST", "/approvals", {"GET"}),
])
def test_a_method_an_address_does_not_take_is_a_405_naming_the_ones_it_does(desk, method, path, allowed):
    """`GET /delegations` said "There is no entity 'delegations'" (404); a 405 had no `Allow`."""
    code, body, headers = desk(method, path)
    assert code == 405, body
    assert body["error"]["code"] == "method_not_allowed"
    assert {m.strip() for m in headers["Allow"].split(",")} - {"HEAD", "OPTIONS"} == allowed


def test_an_unknown_recycle_bin_value_is_a_400_not_the_live_records(desk):
    """`?deleted=null` used to list the live records as if the parameter were absent."""
    code, body, _ = desk("GET", "/customer?deleted=null")
    assert code == 400 and "deleted must be" in body["error"]["message"], body
    assert desk("GET", "/customer?deleted=0")[0] == 200


def test_an_unknown_unread_value_is_a_422(desk):
    code, body, _ = desk("GET", "/notifications?unread=maybe")
    assert code == 422 and "unread" in body["error"]["fields"], body
    assert desk("GET", "/notifications?unread=false")[0] == 200


def test_audit_user_zero_is_a_422(desk):
    code, body, _ = desk("GET", "/audit?user=0")
    assert code == 422 and body["error"]["fields"] == {"user": "an id"}, body


def test_datetimes_leave_the_api_in_utc_with_their_zone(desk):
    code, rec, _ = desk("POST", "/activity", {"subject": "Call back", "occurred_at": "2026-11-23T18:30:00+08:00"})
    assert code == 201, rec
    assert rec["occurred_at"] == "2026-11-23T10:30:00Z"
    for key in ("created_at", "updated_at"):
        assert rec[key].endswith("Z") and dt.datetime.fromisoformat(rec[key]).tzinfo is not None
    listed = desk("GET", f"/activity?id={rec['id']}")[1]["items"][0]
    assert listed["occurred_at"] == "2026-11-23T10:30:00Z"
    entry = desk("GET", f"/audit?entity=activity&record={rec['id']}")[1]["items"][0]
    assert entry["at"].endswith("Z")


def test_a_nul_character_in_a_query_is_a_400_on_both_databases(desk):
    """PostgreSQL refuses NUL in text: `?q=a%00b` was a 500 there."""
    for query in ("q=a%00b", "name__contains=x%00", "name=%00"):
        code, body, _ = desk("GET", f"/customer?{query}")
        assert code == 400 and "NUL character" in body["error"]["message"], (query, body)


def test_a_file_field_filters_by_emptiness_only(desk):
    """`?document=` compared a JSON column with text: a 500 on PostgreSQL."""
    code, body, _ = desk("GET", "/contract?document=")
    assert code == 200 and body["total"] == 0, body
    code, body, _ = desk("GET", "/contract?document=report.pdf")
    assert code == 400 and "document__isnull" in body["error"]["message"], body
    assert desk("GET", "/contract?document__isnull=1")[0] == 200
