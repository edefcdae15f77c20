"""Form pickers that know their context: choices narrowed by the link's filter with the form's
values, fetched values for a picked record, distinguishing fields beside titles, and the server
refusing (and filling) what the browser would have."""
import json
import re

import pytest
import sqlalchemy as sa

from platform_.auth import create_user, find_user, get_actor
from tests.conftest import FIXTURES
from tests.ui.conftest import Client

PACK = FIXTURES / "links"


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/pickers.db")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(PACK))
    monkeypatch.setenv("ATTACHMENTS_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("SECRET_KEY", "pickers-secret")
    from app import create_app
    app = create_app({"TESTING": True})
    rt = app.extensions["crm"]
    rt.ensure_schema()
    create_user(rt.engine, "admin", "admin-Passw0rd", roles=("admin",), full_name="Ada Admin")
    yield app
    rt.engine.dispose()


@pytest.fixture
def rt(app):
    return app.extensions["crm"]


@pytest.fixture
def admin(app):
    return Client(app, "admin", "admin-Passw0rd")


@pytest.fixture
def data(rt):
    a = get_actor(rt.engine, find_user(rt.engine, "admin")["id"])
    s = rt.store
    org_a = s.create("org", {"name": "Acme"}, a)
    org_b = s.create("org", {"name": "Beta"}, a)
    return {
        "a": org_a, "b": org_b,
        "pa": s.create("person", {"name": "Alice", "org": org_a["id"]}, a),
        "pb": s.create("person", {"name": "Bob", "org": org_b["id"]}, a),
        "i1": s.create("item", {"name": "Pump", "code": "P-1", "spec": "DN50", "price": "120.50"}, a),
        "i2": s.create("item", {"name": "Pump", "code": "P-2", "spec": "DN80", "price": "180"}, a),
        "old": s.create("item", {"name": "Old pump", "code": "P-0", "price": "90", "active": False}, a),
        "actor": a,
    }


def options(html: str) -> list[str]:
    return re.findall(r'data-pick-title="([^"]*)"', html)


def count(rt, entity):
    t = rt.store.table(entity)
    with rt.engine.connect() as c:
        return c.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()


# ---- choices ----------------------------------------------------------------------------------
def test_the_picker_offers_only_the_contacts_of_the_chosen_org(admin, data):
    r = admin.get(f"/e/deal/pick/person?_lk_person=&target=person&prefix=&org={data['a']['id']}", hx=True)
    assert r.status_code == 200
    assert options(r.get_data(as_text=True)) == ["Alice"]
    r = admin.get(f"/e/deal/pick/person?_lk_person=&target=person&prefix=&org={data['b']['id']}", hx=True)
    assert options(r.get_data(as_text=True)) == ["Bob"]


def test_without_an_org_every_contact_is_offered(admin, data):
    r = admin.get("/e/deal/pick/person?_lk_person=&target=person&prefix=&org=", hx=True)
    assert sorted(options(r.get_data(as_text=True))) == ["Alice", "Bob"]


def test_row_picker_hides_withdrawn_items_and_tells_same_names_apart(admin, data):
    r = admin.get("/e/deal_line/pick/item?_lk_lines-n1-item=pump&target=lines-n1-item&prefix=lines-n1-", hx=True)
    page = r.get_data(as_text=True)
    assert sorted(options(page)) == ["Pump · P-1 · DN50", "Pump · P-2 · DN80"]
    assert "Old pump" not in page and "#" + str(data["i1"]["id"]) not in page
    assert '<small class="pick-extra">P-1 · DN50</small>' in page


def test_the_form_sends_the_filter_sources_with_the_search(admin, data):
    page = admin.get("/e/deal/new").get_data(as_text=True)
    assert 'hx-params="_lk_person,target,prefix,org"' in page
    assert "/e/deal/fetch/person" in page


def test_bad_requests_are_4xx(admin, data):
    assert admin.get("/e/deal/pick/name?target=x", hx=True).status_code == 404
    assert admin.get("/e/nothing/pick/org?target=x", hx=True).status_code == 404
    assert admin.get("/e/deal/pick/person?prefix=%22%3E%3Cx", hx=True).status_code == 400


# ---- fetch ------------------------------------------------------------------------------------
def test_picking_an_item_answers_its_price_for_the_same_row(admin, data):
    r = admin.get(f"/e/deal_line/fetch/item?prefix=lines-n1-&lines-n1-item={data['i1']['id']}", hx=True)
    assert r.status_code == 204
    got = json.loads(r.headers["HX-Trigger"])["linkFetched"]["values"]
    assert got == {"lines-n1-unit_price": {"value": "120.50"}}


def test_picking_a_person_answers_the_org_with_its_title(admin, data):
    r = admin.get(f"/e/deal/fetch/person?prefix=&person={data['pb']['id']}", hx=True)
    got = json.loads(r.headers["HX-Trigger"])["linkFetched"]["values"]
    assert got == {"org": {"value": str(data["b"]["id"]), "title": "Beta"}}


def test_nothing_to_fetch_for_an_unknown_record(admin, data):
    r = admin.get("/e/deal/fetch/person?prefix=&person=99999", hx=True)
    assert r.status_code == 204 and "HX-Trigger" not in r.headers


def test_a_form_opened_from_a_record_carries_what_the_link_fetches(admin, data):
    page = admin.get(f"/e/deal/new?person={data['pb']['id']}").get_data(as_text=True)
    assert f'name="org" value="{data["b"]["id"]}"' in page
    assert 'name="_lk_org" value="Beta"' in page


# ---- saving -----------------------------------------------------------------------------------
def test_saving_a_contact_of_another_org_is_refused_naming_the_field(admin, rt, data):
    r = admin.post("/e/deal/new", {"name": "D", "org": str(data["a"]["id"]), "_lk_org": "Acme",
                                   "person": str(data["pb"]["id"]), "_lk_person": "Bob"})
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    assert "Bob cannot be chosen here: its Organisation must be the same as this record&#39;s Organisation" in page
    assert count(rt, "deal") == 0


def test_a_line_saved_without_a_price_gets_the_items_price(admin, rt, data):
    r = admin.post("/e/deal/new", [("name", "With lines"), ("lines-k1-item", str(data["i2"]["id"])),
                                   ("_lk_lines-k1-item", "Pump"), ("lines-k1-quantity", "2"),
                                   ("lines-k1-unit_price", "")])
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    rid = int(r.headers["Location"].rsplit("/", 1)[1])
    rec = rt.store.get("deal", rid, data["actor"])
    assert str(rec["lines"][0]["unit_price"]) == "180.00" and str(rec["total"]) == "360.00"


def test_the_record_page_and_edit_form_show_the_distinguishing_fields(admin, rt, data):
    rec = rt.store.create("deal", {"name": "Shown", "lines": [{"item": data["i1"]["id"], "unit_price": "1"}]},
                          data["actor"])
    page = admin.get(f"/e/deal/{rec['id']}").get_data(as_text=True)
    assert "Pump · P-1 · DN50" in page
    form = admin.get(f"/e/deal/{rec['id']}/edit").get_data(as_text=True)
    assert 'value="Pump · P-1 · DN50"' in form


# ---- the default pack ---------------------------------------------------------------------------
@pytest.fixture
def pack_app(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/pack.db")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(FIXTURES.parent.parent.parent / "config"))
    monkeypatch.setenv("ATTACHMENTS_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("SECRET_KEY", "pickers-secret")
    from app import create_app
    app = create_app({"TESTING": True})
    rt = app.extensions["crm"]
    rt.ensure_schema()
    create_user(rt.engine, "admin", "admin-Passw0rd", roles=("admin",), full_name="Ada Admin")
    yield app
    rt.engine.dispose()


def test_a_quote_created_from_an_opportunity_carries_its_customer_and_contact(pack_app):
    rt = pack_app.extensions["crm"]
    a = get_actor(rt.engine, find_user(rt.engine, "admin")["id"])
    cust = rt.store.create("customer", {"name": "杭州带入客户", "email": "c@example.cn"}, a)
    person = rt.store.create("contact", {"name": "王带入", "customer": cust["id"]}, a)
    opp = rt.store.create("opportunity", {"name": "带入商机", "customer": cust["id"], "contact": person["id"]}, a)
    admin = Client(pack_app, "admin", "admin-Passw0rd")
    record = admin.get(f"/e/opportunity/{opp['id']}").get_data(as_text=True)
    assert f"/e/quote/new?opportunity={opp['id']}" in record           # the related list's "New"
    page = admin.get(f"/e/quote/new?opportunity={opp['id']}").get_data(as_text=True)
    assert f'name="customer" value="{cust["id"]}"' in page and 'value="杭州带入客户"' in page
    assert f'name="contact" value="{person["id"]}"' in page and 'value="王带入"' in page
