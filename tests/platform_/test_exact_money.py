"""Exact money end to end (issue 12, part 3): values a float cannot hold go in and come out of the
API with every digit, as JSON numbers."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.conftest import ROOT


@pytest.fixture
def desk(make_app):
    app, token, _ = make_app(ROOT / "config")
    client = app.test_client()

    def call(method, path, raw=None):
        r = client.open("/api/v1" + path, method=method, data=raw,
                        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        return r.status_code, r.get_data(as_text=True)
    return call


def test_a_money_value_no_float_can_hold_keeps_every_digit(desk, db_url):
    """PostgreSQL's NUMERIC keeps all 18 digits of a money column; SQLite stores NUMERIC as a double, so
    the embedded default is exact to 15 significant digits (documented in the README)."""
    s, c = desk("POST", "/customer", json.dumps({"name": "Exact Co", "email": "x@example.com"}))
    cid = json.loads(c)["id"]
    amount = "1234567890123456.78" if db_url.startswith("postgresql") else "9876543210987.65"
    if db_url.startswith("postgresql"):
        assert float(amount) != Decimal(amount)         # 18 significant digits: no float holds them
    s, body = desk("POST", "/contract", '{"name": "Exact deal", "customer": %d, "amount": %s}' % (cid, amount))
    assert s == 201, body
    assert f'"amount": {amount}' in body or f'"amount":{amount}' in body      # a JSON number, every digit
    rid = json.loads(body)["id"]
    s, body = desk("GET", f"/contract/{rid}")
    assert json.loads(body, parse_float=Decimal)["amount"] == Decimal(amount)
    s, body = desk("GET", f"/contract?amount={amount}")
    assert json.loads(body)["total"] == 1
    s, body = desk("POST", "/contract", '{"name": "Tenth", "customer": %d, "amount": 0.10}' % cid)
    assert '"amount": 0.10' in body or '"amount":0.10' in body
