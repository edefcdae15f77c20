"""The database as the last line of defence (issue 12, part 2): writers racing past the store's
own checks get a 409/422 naming the field — never a raw driver error (HTTP 500) — on both databases."""
from __future__ import annotations

import threading

import pytest

from tests.conftest import ROOT


@pytest.fixture
def pack_api(make_app):
    app, token, _staff = make_app(ROOT / "config")
    return app, token


def test_concurrent_creates_with_one_unique_value_give_one_record_and_no_500(pack_api):
    app, token = pack_api
    results, start = [], threading.Barrier(8)

    def create(i):
        client = app.test_client()
        start.wait()
        r = client.post("/api/v1/holiday", json={"date": "2027-02-10", "name": f"racer {i}"},
                        headers={"Authorization": f"Bearer {token}"})
        results.append((r.status_code, r.get_json(silent=True)))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(code for code, _ in results)
    assert 500 not in codes, results
    assert codes.count(201) == 1, codes
    for code, body in results:
        if code != 201:
            assert code in (409, 422), (code, body)
            assert "date" in (body["error"].get("fields") or {}) or code == 409, body
    client = app.test_client()
    listed = client.get("/api/v1/holiday?date=2027-02-10", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert listed["total"] == 1


def test_a_unique_violation_the_checks_miss_names_the_field(pack_api):
    """Simulate the race deterministically: the store's own unique check is skipped, so only the
    database's unique index can refuse the second record."""
    app, token = pack_api
    rt = app.extensions["crm"]
    client = app.test_client()
    h = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/v1/holiday", json={"date": "2027-03-01", "name": "first"}, headers=h).status_code == 201
    original = rt.store._check_unique
    rt.store._check_unique = lambda *a, **k: None
    try:
        r = client.post("/api/v1/holiday", json={"date": "2027-03-01", "name": "second"}, headers=h)
    finally:
        rt.store._check_unique = original
    assert r.status_code == 422, r.get_json()
    err = r.get_json()["error"]
    assert err["fields"] == {"date": "is already used by another record"}
    assert client.get("/api/v1/holiday?date=2027-03-01", headers=h).get_json()["total"] == 1
