"""One way to send a version (issue 12, part 4): If-Match, a body `version` or `?version=` are
taken the same way on PATCH, DELETE, restore and transitions; a stale one is a 409 and changes
nothing; a malformed one a 422/400 that says why; PUT is refused with Allow."""
from __future__ import annotations

import pytest

from tests.conftest import ROOT


@pytest.fixture
def desk(make_app):
    app, token, _staff = make_app(ROOT / "config")
    client = app.test_client()

    def call(method, path, body=None, headers=None, **kw):
        h = {"Authorization": f"Bearer {token}", **(headers or {})}
        r = client.open("/api/v1" + path, method=method, json=body, headers=h, **kw)
        return r.status_code, r.get_json(silent=True), r
    return call


def _customer(call, name="Versioned Co"):
    code, body, _ = call("POST", "/customer", {"name": name, "email": "v@example.com"})
    assert code == 201, body
    return body


@pytest.mark.parametrize("how", ["if-match", "body", "query"])
def test_a_stale_version_is_refused_the_same_way_on_patch(desk, how):
    c = _customer(desk)
    assert desk("PATCH", f"/customer/{c['id']}", {"name": "Fresh"})[0] == 200       # now version 2
    kw = {"if-match": dict(body={"name": "Stale write"}, headers={"If-Match": '"1"'}),
          "body": dict(body={"name": "Stale write", "version": 1}),
          "query": dict(body={"name": "Stale write"}, query_string={"version": "1"})}[how]
    code, body, _ = desk("PATCH", f"/customer/{c['id']}", **kw)
    assert code == 409 and body["error"]["current"]["name"] == "Fresh", body
    assert desk("GET", f"/customer/{c['id']}")[1]["name"] == "Fresh"


@pytest.mark.parametrize("bad", ["abc", "1.5", "-1", "99999999999"])
def test_a_malformed_version_is_a_422_that_changes_nothing(desk, bad):
    c = _customer(desk)
    code, body, _ = desk("PATCH", f"/customer/{c['id']}", {"name": "Changed"}, headers={"If-Match": bad})
    assert code == 422 and "version" in body["error"]["fields"], body
    code, body, _ = desk("DELETE", f"/customer/{c['id']}", query_string={"version": bad})
    assert code == 422 and "version" in body["error"]["fields"], body
    assert desk("GET", f"/customer/{c['id']}")[1]["name"] == "Versioned Co"


def test_versions_that_disagree_are_a_400(desk):
    c = _customer(desk)
    code, body, _ = desk("PATCH", f"/customer/{c['id']}", {"name": "X", "version": 1}, headers={"If-Match": "2"})
    assert code == 400 and "disagree" in body["error"]["message"]
    assert desk("GET", f"/customer/{c['id']}")[1]["name"] == "Versioned Co"


def test_delete_and_restore_check_the_version(desk):
    c = _customer(desk)
    desk("PATCH", f"/customer/{c['id']}", {"name": "Fresh"})
    assert desk("DELETE", f"/customer/{c['id']}", headers={"If-Match": "1"})[0] == 409
    assert desk("GET", f"/customer/{c['id']}")[0] == 200                            # still there
    assert desk("DELETE", f"/customer/{c['id']}", headers={"If-Match": "2"})[0] == 204
    code, body, _ = desk("POST", f"/customer/{c['id']}/restore", {"version": 2})
    assert code == 409, body                                                         # deleting made it 3
    assert desk("GET", f"/customer/{c['id']}")[0] == 404
    code, body, _ = desk("POST", f"/customer/{c['id']}/restore", {"version": 3})
    assert code == 200 and body["name"] == "Fresh"


def test_a_transition_takes_if_match_and_refuses_a_stale_one(desk):
    c = _customer(desk)
    code, t, _ = desk("POST", "/ticket", {"subject": "Versioned ticket", "customer": c["id"]})
    assert code == 201
    code, body, _ = desk("POST", f"/ticket/{t['id']}/transitions/start", {}, headers={"If-Match": str(t["version"] + 5)})
    assert code == 409, body
    assert desk("GET", f"/ticket/{t['id']}")[1]["status"] == "new"
    code, body, _ = desk("POST", f"/ticket/{t['id']}/transitions/start", {"comment": 42})
    assert code == 422 and "comment" in body["error"]["fields"]
    assert desk("GET", f"/ticket/{t['id']}")[1]["status"] == "new"
    code, body, _ = desk("POST", f"/ticket/{t['id']}/transitions/start", {}, headers={"If-Match": f'"{t["version"]}"'})
    assert code == 200 and body["record"]["status"] == "in_progress"


def test_put_is_refused_with_allow(desk):
    c = _customer(desk)
    code, body, resp = desk("PUT", f"/customer/{c['id']}", {"name": "Replaced", "email": "r@example.com"})
    assert code == 405 and "PATCH" in body["error"]["message"]
    assert set(resp.headers["Allow"].replace(" ", "").split(",")) == {"GET", "PATCH", "DELETE"}
    assert desk("GET", f"/customer/{c['id']}")[1]["name"] == "Versioned Co"
