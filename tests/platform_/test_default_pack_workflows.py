"""Each workflow of the default pack driven through the API (A5, A12, C1, C3, C4, E1/E2, F4)."""
import pytest

from platform_ import auth
from tests.conftest import ROOT


@pytest.fixture
def crm(make_app):
    app, token, _ = make_app(ROOT / "config")
    rt = app.extensions["crm"]
    people = {"boss": ["sales_manager"], "sales": ["sales"], "cfo": ["finance"], "ship": ["logistics"],
              "agent": ["service_agent"]}
    tokens = {"admin": token}
    ids = {}
    for name, roles in people.items():
        # the sales rep reports to the manager (row scope `team` covers one's reports)
        ids[name] = auth.create_user(rt.engine, name, f"{name}-Passw0rd", roles,
                                     manager=ids.get("boss") if name != "boss" else None)
        tokens[name] = auth.create_token(rt.engine, name)
    client = app.test_client()

    def call(who, method, path, body=None, expect=None):
        r = client.open("/api/v1" + path, method=method, json=body, headers={"Authorization": f"Bearer {tokens[who]}"})
        data = r.get_json(silent=True)
        if expect is not None:
            assert r.status_code == expect, (r.status_code, data)
        return data

    def move(who, entity, rid, name, expect=200, **body):
        return call(who, "POST", f"/{entity}/{rid}/transitions/{name}", body, expect)

    call.move = move
    call.rt = rt
    return call


def product(crm, price=1000):
    return crm("admin", "POST", "/product", {"name": "工业水泵", "code": f"P-{price}", "price": price}, 201)


def customer(crm):
    return crm("sales", "POST", "/customer", {"name": "宁波海天贸易有限公司", "email": "buy@haitian.example.cn"}, 201)


def test_c1_lead_qualified_and_converted_creates_customer_contact_opportunity(crm):
    lead = crm("sales", "POST", "/lead", {"name": "王伟", "company": "杭州尚祈科技", "phone": "+86 571 8888 0000",
                                          "email": "wang@shangqi.example.cn", "grade": "a"}, 201)
    assert lead["status"] == "new"
    crm.move("sales", "lead", lead["id"], "contact")
    crm.move("sales", "lead", lead["id"], "qualify")
    done = crm.move("sales", "lead", lead["id"], "convert")["record"]
    assert done["status"] == "converted"
    cust = crm("admin", "GET", f"/customer/{done['converted_customer']}")
    assert cust["name"] == "杭州尚祈科技" and cust["phone"] == "+86 571 8888 0000"
    contacts = crm("admin", "GET", f"/contact?customer={cust['id']}")
    assert contacts["total"] == 1 and contacts["items"][0]["is_primary"] is True
    opp = crm("admin", "GET", f"/opportunity/{done['converted_opportunity']}")
    assert opp["customer"] == cust["id"] and opp["stage"] == "potential"
    assert crm("admin", "GET", f"/activity?customer={cust['id']}")["total"] == 1


def test_c1_grade_d_lead_cannot_be_qualified(crm):
    lead = crm("sales", "POST", "/lead", {"name": "Li", "company": "X", "phone": "123456", "grade": "d"}, 201)
    items = {t["name"]: t for t in crm("sales", "GET", f"/lead/{lead['id']}/transitions")["items"]}
    assert not items["qualify"]["allowed"] and "Grade D" in items["qualify"]["reason"]
    crm.move("sales", "lead", lead["id"], "disqualify", 422)                    # comment required
    crm.move("sales", "lead", lead["id"], "disqualify", comment="no budget")


def test_c1_opportunity_stages_set_probability_and_won_creates_todo(crm):
    c = customer(crm)
    p = product(crm)
    opp = crm("sales", "POST", "/opportunity", {"name": "水泵改造", "customer": c["id"], "expected_close": "2099-01-01"}, 201)
    crm.move("sales", "opportunity", opp["id"], "show_intent")
    assert crm("sales", "GET", f"/opportunity/{opp['id']}")["probability"] == 30
    crm.move("sales", "opportunity", opp["id"], "propose")
    r = crm.move("sales", "opportunity", opp["id"], "negotiate", 422)            # no lines yet: guard
    assert "Add product lines first" in r["error"]["message"]
    cur = crm("sales", "GET", f"/opportunity/{opp['id']}")
    crm("sales", "PATCH", f"/opportunity/{opp['id']}", {"version": cur["version"], "lines": [
        {"product": p["id"], "quantity": 2, "unit_price": 1000}, {"product": p["id"], "quantity": 1, "unit_price": 500,
                                                                   "discount": 10}]}, 200)
    rec = crm.move("sales", "opportunity", opp["id"], "negotiate")["record"]
    assert rec["probability"] == 75 and rec["amount"] == 2450 and rec["weighted"] == 1837.5
    rec = crm.move("sales", "opportunity", opp["id"], "win")["record"]
    assert rec["stage"] == "won" and rec["probability"] == 100
    assert crm("sales", "GET", f"/opportunity/{opp['id']}/transitions")["items"] == []     # final


def test_c1_a_probability_typed_by_hand_survives_the_next_stage(crm):
    """Issue 9: a stage proposes a probability (`suggest`), it does not overwrite one the user typed."""
    c = customer(crm)
    opp = crm("sales", "POST", "/opportunity", {"name": "手填概率", "customer": c["id"], "expected_close": "2099-01-01"}, 201)
    assert opp["probability"] == 10                                              # the first stage's proposal
    crm.move("sales", "opportunity", opp["id"], "show_intent")
    cur = crm("sales", "GET", f"/opportunity/{opp['id']}")
    assert cur["probability"] == 30                                              # untouched: follows the stage
    crm("sales", "PATCH", f"/opportunity/{opp['id']}", {"version": cur["version"], "probability": 42}, 200)
    rec = crm.move("sales", "opportunity", opp["id"], "propose")["record"]
    assert rec["stage"] == "proposal" and rec["probability"] == 42              # the typed value is kept


def test_c2_quote_discount_over_limit_needs_manager(crm):
    c = customer(crm)
    p = product(crm)
    q = crm("sales", "POST", "/quote", {"customer": c["id"], "valid_until": "2099-01-01", "discount": 15,
                                        "lines": [{"product": p["id"], "quantity": 10, "unit_price": 100}]}, 201)
    assert q["subtotal"] == 850 and q["tax"] == 110.5 and q["total"] == 960.5
    crm.move("sales", "quote", q["id"], "submit")
    r = crm.move("sales", "quote", q["id"], "approve", 202)
    assert r["status"] == "pending_approval"
    [task] = crm("boss", "GET", "/approvals")["items"]
    crm("boss", "POST", f"/approvals/{task['id']}/approve", {}, 200)
    assert crm("sales", "GET", f"/quote/{q['id']}")["status"] == "approved"
    # a small discount needs nobody: approval completes at once
    q2 = crm("sales", "POST", "/quote", {"customer": c["id"], "valid_until": "2099-01-01", "discount": 5}, 201)
    crm.move("sales", "quote", q2["id"], "submit")
    r = crm.move("sales", "quote", q2["id"], "approve", 202)
    assert r["approval"]["status"] == "approved" and r["record"]["status"] == "pending_approval"
    assert crm("sales", "GET", f"/quote/{q2['id']}")["status"] == "approved"
    crm.move("sales", "quote", q2["id"], "send")
    assert crm.move("sales", "quote", q2["id"], "revise")["record"]["revision"] == 2


def test_c3_contract_two_step_approval_then_lifecycle(crm):
    c = customer(crm)
    k = crm("sales", "POST", "/contract", {"name": "年度供货合同", "customer": c["id"], "amount": 250000,
                                           "start_date": "2026-01-01", "end_date": "2026-12-31"}, 201)
    crm.move("sales", "contract", k["id"], "submit")
    crm.move("sales", "contract", k["id"], "approve", 202)
    assert crm("cfo", "GET", "/approvals")["total"] == 0                        # finance comes second
    [t1] = crm("boss", "GET", "/approvals")["items"]
    crm("boss", "POST", f"/approvals/{t1['id']}/approve", {}, 200)
    [t2] = crm("cfo", "GET", "/approvals")["items"]
    crm("cfo", "POST", f"/approvals/{t2['id']}/reject", {}, 422)                  # reject needs a comment
    crm("cfo", "POST", f"/approvals/{t2['id']}/reject", {"comment": "付款条件不清楚"}, 200)
    assert crm("sales", "GET", f"/contract/{k['id']}")["status"] == "draft"
    crm.move("sales", "contract", k["id"], "submit")
    crm.move("sales", "contract", k["id"], "approve", 202)
    [t1] = crm("boss", "GET", "/approvals")["items"]
    crm("boss", "POST", f"/approvals/{t1['id']}/approve", {}, 200)
    [t2] = crm("cfo", "GET", "/approvals")["items"]
    crm("cfo", "POST", f"/approvals/{t2['id']}/approve", {"comment": "ok"}, 200)
    rec = crm.move("sales", "contract", k["id"], "sign")["record"]
    assert rec["status"] == "signed" and rec["signed_on"]
    crm.move("cfo", "contract", k["id"], "activate")
    crm.move("boss", "contract", k["id"], "archive")
    events = [h["event"] for h in crm("admin", "GET", f"/contract/{k['id']}/history")["items"]]
    assert events.count("approval_rejected") == 1 and events[-1] == "transition"


def test_f4_order_passes_sales_finance_logistics(crm):
    c = customer(crm)
    p = product(crm)
    o = crm("sales", "POST", "/order", {"customer": c["id"], "lines": [{"product": p["id"], "quantity": 3, "unit_price": 200}]}, 201)
    assert o["total"] == 600
    crm.move("sales", "order", o["id"], "confirm")
    crm.move("sales", "order", o["id"], "record_payment", 403)                  # finance only
    crm.move("cfo", "order", o["id"], "record_payment", 422)                    # paid amount required
    cur = crm("cfo", "GET", f"/order/{o['id']}")
    crm("cfo", "PATCH", f"/order/{o['id']}", {"paid_amount": 600, "version": cur["version"]}, 200)
    crm.move("cfo", "order", o["id"], "record_payment")
    cur = crm("ship", "GET", f"/order/{o['id']}")
    crm("ship", "PATCH", f"/order/{o['id']}", {"tracking_no": "SF1234567890", "version": cur["version"]}, 200)
    crm.move("ship", "order", o["id"], "ship")
    crm.move("ship", "order", o["id"], "deliver")
    assert crm.move("cfo", "order", o["id"], "close")["record"]["status"] == "closed"


def test_e1_ticket_lifecycle_with_reopen(crm):
    c = customer(crm)
    agent = crm("agent", "GET", "/me")
    t = crm("agent", "POST", "/ticket", {"subject": "水泵异响", "customer": c["id"], "priority": "p2"}, 201)
    assert t["status"] == "new" and t["code"].startswith("TKT-")
    assert t["assignee"] == agent["id"]            # C8/E1: round robin to the (only) active service agent
    crm("agent", "PATCH", f"/ticket/{t['id']}", {"assignee": None, "version": t["version"]}, 200)
    crm.move("agent", "ticket", t["id"], "assign", 422)                          # assignee required
    cur = crm("agent", "GET", f"/ticket/{t['id']}")
    assert cur["assignee"] is None and cur["status"] == "new"                   # the refused move changed nothing
    crm("agent", "PATCH", f"/ticket/{t['id']}", {"assignee": agent["id"], "version": cur["version"]}, 200)
    crm.move("agent", "ticket", t["id"], "assign")
    rec = crm.move("agent", "ticket", t["id"], "start")["record"]
    assert rec["first_response_at"]
    crm.move("agent", "ticket", t["id"], "wait_customer", comment="需要客户提供照片")
    crm.move("agent", "ticket", t["id"], "customer_replied")
    crm.move("agent", "ticket", t["id"], "resolve", 422)                         # resolution required
    cur = crm("agent", "GET", f"/ticket/{t['id']}")
    crm("agent", "PATCH", f"/ticket/{t['id']}", {"resolution": "更换轴承", "version": cur["version"]}, 200)
    rec = crm.move("agent", "ticket", t["id"], "resolve")["record"]
    assert rec["resolved_at"]
    crm.move("agent", "ticket", t["id"], "close")
    crm.move("sales", "ticket", t["id"], "reopen", 403)
    assert crm.move("agent", "ticket", t["id"], "reopen", comment="又坏了")["record"]["status"] == "in_progress"
