"""Issue 9: what a person would search for is searchable in the default pack — a city in a
customer's address finds it, from the API and from the header search."""
from __future__ import annotations

from tests.conftest import ROOT


def test_a_city_in_the_address_finds_the_customer(make_app):
    app, tok, _ = make_app(ROOT / "config")
    c = app.test_client()
    h = {"Authorization": f"Bearer {tok}"}
    r = c.post("/api/v1/customer", json={"name": "尚祈机械", "email": "s@example.cn", "address": "浙江省杭州市西湖区文三路 1 号"},
               headers=h)
    assert r.status_code == 201, r.get_json()
    c.post("/api/v1/customer", json={"name": "宁波海天", "email": "n@example.cn", "address": "浙江省宁波市"}, headers=h)
    found = c.get("/api/v1/customer?q=杭州", headers=h).get_json()
    assert [i["name"] for i in found["items"]] == ["尚祈机械"]
