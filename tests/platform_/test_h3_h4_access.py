"""Row scopes (H3) and field permissions (H4) of the default pack's access.yaml, through the API and
the web UI: out of scope is 404 everywhere (get, list, search, lookup, write); a contact follows
its customer; team mates share; a hidden field is absent on read and a write naming it is 403
naming the field, with nothing changed — on both databases."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from engine.systables import users
from platform_ import auth
from tests.conftest import ROOT


@pytest.fixture
def org(make_app):
    app, admin_tok, _ = make_app(ROOT / "config")
    rt = app.extensions["crm"]
    eng = rt.engine
    ids = {}
    for name, roles, team in (("ann", ["sales"], "east"), ("ben", ["sales"], "east"), ("cy", ["sales"], "west"),
                              ("mia", ["sales_manager"], "west"), ("sid", ["service_agent"], None)):
        ids[name] = auth.create_user(eng, name, f"{name}-Passw0rd!", roles)
        with eng.begin() as c:
            c.execute(users.update().where(users.c.id == ids[name]).values(team=team))
    toks = {n: auth.create_token(eng, n) for n in ids}
    toks["admin"] = admin_tok
    client = app.test_client()

    def call(who, method, path, body=None):
        r = client.open("/api/v1" + path, method=method, json=body, headers={"Authorization": f"Bearer {toks[who]}"})
        return r.status_code, r.get_json(silent=True)
    call.app, call.ids = app, ids
    return call


def test_h3_sales_see_their_own_and_their_teams_customers_only(org):
    s, a = org("ann", "POST", "/customer", {"name": "Ann's Co", "email": "a@example.com"})
    assert s == 201
    assert org("ben", "GET", f"/customer/{a['id']}")[0] == 200                   # same team
    assert org("cy", "GET", f"/customer/{a['id']}")[0] == 404                    # other team
    assert org("mia", "GET", f"/customer/{a['id']}")[0] == 404                   # manager of the other team
    assert org("admin", "GET", f"/customer/{a['id']}")[0] == 200
    assert org("sid", "GET", f"/customer/{a['id']}")[0] == 200                   # service is not limited
    assert org("cy", "GET", "/customer?q=Ann")[1]["total"] == 0
    assert org("ben", "GET", "/customer?q=Ann")[1]["total"] == 1
    s, body = org("cy", "PATCH", f"/customer/{a['id']}", {"name": "Taken over"})
    assert s == 404
    assert org("cy", "POST", f"/customer/{a['id']}/transitions/x", {})[0] == 404
    assert org("admin", "GET", f"/customer/{a['id']}")[1]["name"] == "Ann's Co"


def test_h3_a_contact_follows_its_customer(org):
    _, a = org("ann", "POST", "/customer", {"name": "Followed Co", "email": "f@example.com"})
    s, c = org("ann", "POST", "/contact", {"name": "Zhang San", "customer": a["id"]})
    assert s == 201, c
    assert org("ben", "GET", f"/contact/{c['id']}")[0] == 200
    assert org("cy", "GET", f"/contact/{c['id']}")[0] == 404
    assert org("cy", "GET", f"/contact?customer={a['id']}")[1]["total"] == 0
    # moving the customer to the other team's owner moves the contact with it
    assert org("admin", "PATCH", f"/customer/{a['id']}", {"owner": org.ids["cy"]})[0] == 200
    assert org("cy", "GET", f"/contact/{c['id']}")[0] == 200
    assert org("ann", "GET", f"/contact/{c['id']}")[0] == 404


def test_h3_the_web_ui_hides_out_of_scope_records_everywhere(org):
    from tests.ui.conftest import Client
    _, a = org("ann", "POST", "/customer", {"name": "Hidden Webco", "email": "w@example.com"})
    cy = Client(org.app, "cy", "cy-Passw0rd!")
    assert cy.get(f"/e/customer/{a['id']}").status_code == 404
    assert "Hidden Webco" not in cy.get("/e/customer").get_data(as_text=True)
    assert "Hidden Webco" not in cy.get("/search?q=Webco").get_data(as_text=True)
    assert "Hidden Webco" not in cy.get("/e/customer/lookup?q=Webco").get_data(as_text=True)
    ben = Client(org.app, "ben", "ben-Passw0rd!")
    assert "Hidden Webco" in ben.get("/e/customer/lookup?q=Webco").get_data(as_text=True)


def test_h4_contract_amount_is_hidden_from_service_agents(org):
    _, cust = org("admin", "POST", "/customer", {"name": "Amount Co", "email": "m@example.com"})
    s, k = org("admin", "POST", "/contract", {"name": "Secret deal", "customer": cust["id"], "amount": 123456})
    assert s == 201
    s, seen = org("sid", "GET", f"/contract/{k['id']}")
    assert s == 200 and "amount" not in seen and seen["name"] == "Secret deal"
    listed = org("sid", "GET", "/contract")[1]["items"]
    assert listed and all("amount" not in r for r in listed)
    s, body = org("sid", "PATCH", f"/contract/{k['id']}", {"amount": 1})
    assert s == 403 and body["error"]["fields"] == {"amount": "not allowed for your role"}
    s, body = org("sid", "POST", "/contract", {"name": "Sneaky", "customer": cust["id"], "amount": 5})
    assert s == 403 and "amount" in body["error"]["fields"]
    after = org("admin", "GET", f"/contract/{k['id']}")[1]
    assert float(after["amount"]) == 123456 and after["version"] == k["version"]
    assert org("admin", "GET", "/contract?name=Sneaky")[1]["total"] == 0
    # a service agent may still edit what they can see
    s, body = org("sid", "PATCH", f"/contract/{k['id']}", {"notes": "called the customer"})
    assert s == 200 and "amount" not in body


def test_h4_the_web_ui_leaves_hidden_fields_out(org):
    from tests.ui.conftest import Client
    _, cust = org("admin", "POST", "/customer", {"name": "Form Co", "email": "fo@example.com"})
    _, k = org("admin", "POST", "/contract", {"name": "Form deal", "customer": cust["id"], "amount": 98765})
    sid = Client(org.app, "sid", "sid-Passw0rd!")
    page = sid.get(f"/e/contract/{k['id']}").get_data(as_text=True)
    assert "98765" not in page and "98,765" not in page
    form = sid.get(f"/e/contract/{k['id']}/edit").get_data(as_text=True)
    assert not re.search(r'name="amount"', form)
    listing = sid.get("/e/contract").get_data(as_text=True)
    assert "98765" not in listing and "98,765" not in listing


def test_h4_hidden_fields_leak_through_no_side_door(org):
    _, cust = org("admin", "POST", "/customer", {"name": "Door Co", "email": "d@example.com"})
    _, k = org("admin", "POST", "/contract", {"name": "Door deal", "customer": cust["id"], "amount": 4242424})
    s, body = org("sid", "PATCH", f"/contract/{k['id']}", {"notes": "x", "version": k["version"] + 9})
    assert s == 409 and "amount" not in body["error"]["current"]              # the conflict's current record
    s, body = org("sid", "GET", "/contract?amount__gte=1000000")
    assert s == 400 and "amount" in body["error"]["message"]                  # no filtering by what one cannot see
    assert org("sid", "GET", "/contract?sort=-amount")[0] == 400
    assert org("admin", "GET", "/contract?amount__gte=1000000")[1]["total"] == 1


def test_h3_an_approver_reads_while_asked_but_never_writes(org):
    from platform_ import auth
    rt = org.app.extensions["crm"]
    eng = rt.engine
    ann_tok = auth.create_token(eng, "ann")
    client = org.app.test_client()

    def as_ann(method, path, body=None):
        r = client.open("/api/v1" + path, method=method, json=body, headers={"Authorization": f"Bearer {ann_tok}"})
        return r.status_code, r.get_json(silent=True)
    _, cust = as_ann("POST", "/customer", {"name": "Approval Co", "email": "ap@example.com"})
    s, k = as_ann("POST", "/contract", {"name": "Needs a yes", "customer": cust["id"], "amount": 90000,
                                        "start_date": "2027-01-01", "end_date": "2027-12-31"})
    assert s == 201
    assert org("mia", "GET", f"/contract/{k['id']}")[0] == 404                # other team, nothing asked yet
    assert as_ann("POST", f"/contract/{k['id']}/transitions/submit", {})[0] == 200
    assert as_ann("POST", f"/contract/{k['id']}/transitions/approve", {})[0] == 202
    assert org("mia", "GET", f"/contract/{k['id']}")[0] == 200                # asked to approve: may read
    s, body = org("mia", "PATCH", f"/contract/{k['id']}", {"amount": 1})
    assert s == 404                                                           # ... but never write
    assert org("admin", "GET", f"/contract/{k['id']}")[1]["amount"] == 90000
    task = next(t for t in org("mia", "GET", "/approvals")[1]["items"] if t["record_id"] == k["id"])
    assert org("mia", "POST", f"/approvals/{task['id']}/approve", {})[0] == 200
    assert org("mia", "GET", f"/contract/{k['id']}")[0] == 404                # decided: no longer in scope


def test_h3_a_typed_in_link_id_does_not_reveal_a_name(org):
    from tests.ui.conftest import Client
    _, a = org("ann", "POST", "/customer", {"name": "Secret Prospect Ltd", "email": "sp@example.com"})
    cy = Client(org.app, "cy", "cy-Passw0rd!")
    assert "Secret Prospect" not in cy.get(f"/e/contact?customer={a['id']}").get_data(as_text=True)


def test_h3_teams_are_set_from_the_cli(org):
    run = org.app.test_cli_runner()
    r = run.invoke(args=["crm", "user", "create", "dee", "--password", "dee-Passw0rd!", "--role", "sales",
                         "--team", "east"])
    assert r.exit_code == 0, r.output
    _, a = org("ann", "POST", "/customer", {"name": "Shared East Co", "email": "se@example.com"})
    from platform_ import auth
    tok = auth.create_token(org.app.extensions["crm"].engine, "dee")
    client = org.app.test_client()
    get = lambda: client.get(f"/api/v1/customer/{a['id']}", headers={"Authorization": f"Bearer {tok}"}).status_code
    assert get() == 200                                   # same team as ann
    r = run.invoke(args=["crm", "user", "team", "dee", "west"])
    assert r.exit_code == 0 and "west" in r.output
    assert get() == 404
    assert run.invoke(args=["crm", "user", "team", "nobody", "west"]).exit_code != 0
