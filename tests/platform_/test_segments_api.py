"""The default pack's RFM grading (config/segments/customer_value.yaml) and its segment
high_value_customers, from outside: `flask crm segments grade|list`, `GET /api/v1/<entity>?segment=`
under each reader's row scope, a clear 400 for a segment that is not one, the audit trail of the
grades written, and the list page `/e/<entity>?segment=`."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from engine import clock
from engine.systables import users
from platform_ import auth
from tests.conftest import ROOT

NOW = dt.datetime(2026, 6, 30, 4, 0)     # naive UTC: 12:00 in Shanghai, the grading's zone


@pytest.fixture
def crm(make_app):
    """Customers A and C of ann (team east), B and D of cy (team west); delivered orders over the last
    year. Graded among A, B, C (score = 1 + customers with a strictly lower value):
      A: last 06-20 R3, 3 orders F3, 1500 M2 → 8 high
      B: last 06-10 R2, 2 orders F2, 5000 M3 → 7 high
      C: last 01-05 R1, 1 order  F1,  100 M1 → 3 low   (its draft order of 99999 does not count)
      D: no order → low"""
    app, admin_tok, _ = make_app(ROOT / "config")
    rt = app.extensions["crm"]
    eng = rt.engine
    ids = {}
    for name, team in (("ann", "east"), ("cy", "west")):
        ids[name] = auth.create_user(eng, name, f"{name}-Passw0rd!", ["sales"])
        with eng.begin() as c:
            c.execute(users.update().where(users.c.id == ids[name]).values(team=team))
    toks = {n: auth.create_token(eng, n) for n in ids}
    toks["admin"] = admin_tok
    cust, order = rt.store.table("customer"), rt.store.table("order")
    owners = {"A": "ann", "B": "cy", "C": "ann", "D": "cy"}
    with eng.begin() as c:
        for i, (name, who) in enumerate(owners.items(), start=1):
            c.execute(cust.insert().values(id=i, name=name, email=f"{name.lower()}@example.com",
                                           owner=ids[who], version=1))
        orders = [(1, "2026-06-20", 500), (1, "2026-03-01", 500), (1, "2025-09-01", 500),
                  (2, "2026-06-10", 4000), (2, "2026-02-01", 1000), (3, "2026-01-05", 100)]
        c.execute(order.insert(), [{"customer": cid, "order_date": dt.date.fromisoformat(d), "status": "delivered",
                                    "total": Decimal(t), "version": 1, "owner": ids[owners["ABCD"[cid - 1]]]}
                                   for cid, d, t in orders])
        c.execute(order.insert(), [{"customer": 3, "order_date": dt.date(2026, 6, 29), "status": "draft",
                                    "total": Decimal(99999), "version": 1, "owner": ids["ann"]}])
    client = app.test_client()

    def call(who, path):
        r = client.get("/api/v1" + path, headers={"Authorization": f"Bearer {toks[who]}"})
        return r.status_code, r.get_json(silent=True)

    def cli(*args, code=0):
        r = app.test_cli_runner().invoke(args=["crm", *args], catch_exceptions=False)
        assert r.exit_code == code, r.output
        return r.output
    call.app, call.cli, call.rt = app, cli, rt
    clock.set_global(NOW)
    try:
        yield call
    finally:
        clock.set_global(None)


def names(body) -> list:
    return sorted(r["name"] for r in body["items"])


def test_the_cli_grades_customers_and_the_segment_lists_them_per_reader(crm):
    assert crm("admin", "/customer?segment=high_value_customers")[1]["total"] == 0      # not graded yet
    out = crm.cli("segments", "grade", "customer_value")
    assert out.strip().splitlines()[-1] == "customer_value: graded 4 changed 4"
    assert crm.cli("segments", "grade").strip().splitlines()[-1] == "customer_value: graded 4 changed 0"
    grades = {r["name"]: r["value_grade"] for r in crm("admin", "/customer")[1]["items"]}
    assert grades == {"A": "high", "B": "high", "C": "low", "D": "low"}
    status, body = crm("admin", "/customer?segment=high_value_customers")
    assert status == 200 and names(body) == ["A", "B"] and body["total"] == 2
    assert names(crm("ann", "/customer?segment=high_value_customers")[1]) == ["A"]     # her team's only
    assert names(crm("cy", "/customer?segment=high_value_customers")[1]) == ["B"]
    # with other filters: both apply
    assert names(crm("admin", "/customer?segment=high_value_customers&name__contains=B")[1]) == ["B"]
    listed = crm.cli("segments", "list")
    assert "high_value_customers\tsegment of customer\t2 members" in listed
    assert "customer_value\tgrading rfm of customer.value_grade\t30 2 1 * *" in listed


def test_the_grades_are_written_with_an_audit_trail(crm):
    crm.cli("segments", "grade", "customer_value")
    status, body = crm("admin", "/audit?entity=customer&record=1")
    assert status == 200
    assert any(e["changes"].get("value_grade") == [None, "high"] for e in body["items"]), body


@pytest.mark.parametrize("path, words", [
    ("/customer?segment=nope", ["unknown segment 'nope'", "high_value_customers"]),
    ("/customer?segment=high_value_customer", ["did you mean 'high_value_customers'"]),
    ("/customer?segment=customer_value", ["is a grading", "filter by value_grade"]),
    ("/order?segment=high_value_customers", ["a segment of customer, not of order"]),
])
def test_a_segment_that_is_not_one_is_a_400_with_a_message(crm, path, words):
    status, body = crm("admin", path)
    assert status == 400
    assert body["error"]["code"] == "bad_request"
    for w in words:
        assert w in body["error"]["message"]


def test_an_unknown_grading_on_the_cli_exits_1_naming_the_gradings(crm):
    r = crm.app.test_cli_runner().invoke(args=["crm", "segments", "grade", "nope"])
    assert r.exit_code == 1
    assert "There is no grading 'nope'; the gradings are: customer_value." in r.output
    assert {x["value_grade"] for x in crm("admin", "/customer")[1]["items"]} == {None}     # nothing graded


def test_the_list_page_shows_the_segments_members(crm):
    from tests.ui.conftest import Client
    crm.cli("segments", "grade")
    ann = Client(crm.app, "ann", "ann-Passw0rd!")
    html = ann.get("/e/customer?segment=high_value_customers").get_data(as_text=True)
    rows = _row_names(html)
    assert rows == ["A"]
    cy_rows = _row_names(Client(crm.app, "cy", "cy-Passw0rd!").get("/e/customer?segment=high_value_customers")
                            .get_data(as_text=True))
    assert cy_rows == ["B"]
    page = ann.get("/e/customer?segment=nope").get_data(as_text=True)
    assert "unknown segment" in page


def _row_names(html: str) -> list:
    import re
    return sorted(set(re.findall(r">\s*([ABCD])\s*</a>", html)))


def test_the_list_page_offers_the_entitys_segments_and_marks_the_active_one(make_app, tmp_path):
    """The list page shows the entity's segments as chips; the chosen one is marked and narrows the list."""
    import re
    import shutil

    from tests.conftest import FIXTURES
    cfg = tmp_path / "seg-ui"
    shutil.copytree(FIXTURES / "mini", cfg)
    (cfg / "segments").mkdir()
    (cfg / "segments" / "big.yaml").write_text(
        "segment: big_accounts\nentity: account\nlabel: {en: Big accounts, zh: 大客户}\n"
        "filter: {revenue__gte: 1000}\n", encoding="utf-8")
    app, token, _ = make_app(cfg)
    c = app.test_client()
    h = {"Authorization": f"Bearer {token}"}
    for name, revenue in (("Big One", "5000"), ("Small One", "10")):
        assert c.post("/api/v1/account", json={"name": name, "revenue": revenue}, headers=h).status_code == 201
    assert c.post("/login", data={"username": "admin", "password": "admin-Passw0rd"}).status_code == 302
    page = c.get("/e/account?lang=zh").get_data(as_text=True)
    assert re.search(r'<a class="chip" href="/e/account\?segment=big_accounts"[^>]*>大客户</a>', page)
    chosen = c.get("/e/account?segment=big_accounts&lang=en").get_data(as_text=True)
    assert re.search(r'class="chip active"[^>]*aria-current="true"[^>]*>Big accounts</a>', chosen)
    assert "Big One" in chosen and "Small One" not in chosen
    assert ">Everyone</a>" in chosen
