"""H1/H4 through the API and the pages on the default pack: actions a role lacks are refused with a
message and nothing is written, pages do not offer them, read-only fields are shown but not
editable, and the administrator's "view as" page and API explain which role allows what."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from engine.systables import users
from platform_ import auth
from tests.conftest import ROOT

PW = "Perm-test-9-passw0rd"


@pytest.fixture
def org(make_app):
    app, admin_tok, _ = make_app(ROOT / "config")
    eng = app.extensions["crm"].engine
    ids = {}
    for name, roles in (("aud", ["auditor"]), ("sal", ["sales"]), ("agt", ["service_agent"]),
                        ("fin", ["finance"])):
        ids[name] = auth.create_user(eng, name, PW, roles)
        with eng.begin() as c:
            c.execute(users.update().where(users.c.id == ids[name]).values(team="east"))
    toks = {n: auth.create_token(eng, n) for n in ids}
    toks["admin"] = admin_tok
    client = app.test_client()

    def call(who, method, path, body=None):
        r = client.open("/api/v1" + path, method=method, json=body, headers={"Authorization": f"Bearer {toks[who]}"})
        return r.status_code, r.get_json(silent=True)
    call.app, call.ids = app, ids
    return call


def count(call, entity):
    return call("admin", "GET", f"/{entity}?per_page=1")[1]["total"]


def test_h1_an_auditor_reads_but_creating_is_refused_with_a_message_and_nothing_written(org):
    before = count(org, "customer")
    s, body = org("aud", "POST", "/customer", {"name": "Not allowed", "email": "n@example.com"})
    assert s == 403
    assert "may not create" in body["error"]["message"] and "Auditor" in body["error"]["message"]
    assert count(org, "customer") == before
    assert org("aud", "GET", "/customer")[0] == 200


def test_h1_an_auditor_may_not_update_and_the_record_is_unchanged(org):
    _, c = org("admin", "POST", "/customer", {"name": "Keep Co", "email": "k@example.com"})
    s, body = org("aud", "PATCH", f"/customer/{c['id']}", {"name": "Changed"})
    assert s == 403 and "may not update" in body["error"]["message"]
    assert org("admin", "GET", f"/customer/{c['id']}")[1]["name"] == "Keep Co"


def test_h1_a_service_agent_reads_contracts_but_may_not_create_them(org):
    before = count(org, "contract")
    s, body = org("agt", "POST", "/contract", {"name": "Agent contract"})
    assert s == 403 and "may not create" in body["error"]["message"]
    assert count(org, "contract") == before
    assert org("agt", "GET", "/contract")[0] == 200


def test_h4_read_only_field_refused_by_name_and_unchanged_but_other_fields_save(org):
    from tests.ui.conftest import Client
    _, o = org("admin", "POST", "/order", {"customer": org("admin", "POST", "/customer",
                                                              {"name": "RO Co", "email": "r@example.com"})[1]["id"]})
    assert org("admin", "PATCH", f"/order/{o['id']}", {"owner": org.ids["sal"]})[0] == 200
    s, body = org("sal", "PATCH", f"/order/{o['id']}", {"paid_amount": 999})
    assert s == 403 and "paid_amount" in body["error"]["message"]
    after = org("admin", "GET", f"/order/{o['id']}")[1]
    assert after["paid_amount"] in (None, 0, "0", "0.00")
    assert org("sal", "PATCH", f"/order/{o['id']}", {"tracking_no": "SF123"})[0] == 200
    # the edit form shows the amount as text, with no input the user could type into
    sal = Client(org.app, "sal", PW)
    html = sal.get(f"/e/order/{o['id']}/edit").get_data(as_text=True)
    assert 'name="tracking_no"' in html
    assert 'name="paid_amount"' not in html


def test_h1_pages_offer_only_what_the_role_may_do(org):
    from tests.ui.conftest import Client
    _, c = org("admin", "POST", "/customer", {"name": "Page Co", "email": "p@example.com"})
    aud = Client(org.app, "aud", PW)
    page = aud.get("/e/customer").get_data(as_text=True)
    assert "/e/customer/new" not in page                      # no "New" button
    assert 'value="export"' in page                           # auditors export
    assert 'value="delete"' not in page and 'value="assign"' not in page
    rec = aud.get(f"/e/customer/{c['id']}").get_data(as_text=True)
    assert f"/e/customer/{c['id']}/edit" not in rec
    assert aud.get("/e/customer/new").status_code == 403
    agt = Client(org.app, "agt", PW)
    page = agt.get("/e/ticket").get_data(as_text=True)
    assert 'value="export"' in page
    assert 'value="export"' not in agt.get("/e/contact").get_data(as_text=True)   # contact: no export for agents
    r = agt.post("/e/contact/bulk", data={"csrf_token": agt.token, "action": "export", "ids": []})
    assert r.status_code == 403 and "may not export" in r.get_data(as_text=True)


def test_h1_view_as_explains_which_role_allows_what(org):
    s, body = org("admin", "GET", "/admin/access/agt")
    assert s == 200
    rows = {r["entity"]: r for r in body["entities"]}
    assert rows["ticket"]["actions"]["create"] == ["service_agent"]
    assert rows["contract"]["actions"]["create"] == []
    assert rows["contract"]["hidden"] == {"amount": ["service_agent"]}
    assert org("sal", "GET", "/admin/access/agt")[0] == 403
    assert org("admin", "GET", "/admin/access/nobody")[0] == 404
    from tests.ui.conftest import Client
    page = _admin_client(org).get("/admin/access?user=agt&lang=zh").get_data(as_text=True)
    text = re.sub(r"<[^>]+>", " ", page)
    assert "客服" in text and "合同金额" in text                  # role and field labels, not ids
    assert "service_agent" not in text.replace('value="agt"', "")
    sal = Client(org.app, "sal", PW)
    assert sal.get("/admin/access?user=agt").status_code == 403


def _admin_client(org):
    from tests.ui.conftest import Client
    eng = org.app.extensions["crm"].engine
    with eng.connect() as c:
        exists = c.execute(sa.select(users.c.id).where(users.c.username == "viewer-admin")).first()
    if not exists:
        auth.create_user(eng, "viewer-admin", PW, ["admin"])
    return Client(org.app, "viewer-admin", PW)


def test_h6_a_role_change_reads_with_role_labels_in_the_audit_page(org):
    s, body = org("admin", "PATCH", "/admin/users/fin", {"roles": ["finance", "auditor"]})
    assert s == 200, body
    page = _admin_client(org).get("/audit?action=user.roles&lang=zh").get_data(as_text=True)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "财务 → 财务、审计员" in text
    assert "finance" not in text.split("</thead>")[-1]
