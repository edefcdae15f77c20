"""Config keys that used to be accepted and ignored, as a user meets them in the generated UI
(issue 11 part 6): an entity's `description` under its list heading, a money field's `currency`
with its amounts and beside its input, a form's `label` heading the new-record page, a field's
form `placeholder`, and a `collapsed` section that starts folded but opens on an error."""
from __future__ import annotations

import re

import pytest

from tests.engine.test_a7_config import edit

FORM = """form: account
entity: account
label: {en: Register a customer, zh: 登记客户}
sections:
  - title: {en: Basics, zh: 基本信息}
    columns: 2
    fields: [name, email, level]
  - title: {en: Money, zh: 资金}
    collapsed: true
    fields: [revenue]
fields:
  email: {placeholder: {en: name@company.com, zh: 例如 name@company.com}}
"""


@pytest.fixture
def web(make_app, config_copy):
    cfg = config_copy()
    edit(cfg / "entities" / "account.yaml", "module: customers",
         "module: customers\ndescription: {en: Companies we sell to, zh: 我们销售的对象公司}")
    edit(cfg / "entities" / "account.yaml", "revenue: {type: money, min: 0}", "revenue: {type: money, min: 0, currency: CNY}")
    (cfg / "forms" / "account.yaml").write_text(FORM, encoding="utf-8")
    app, token, _ = make_app(cfg)
    c = app.test_client()
    r = c.post("/login", data={"username": "admin", "password": "admin-Passw0rd"})
    assert r.status_code == 302
    c.token = token
    return c


def test_description_and_currency_on_the_list_and_record(web):
    h = {"Authorization": f"Bearer {web.token}"}
    rec = web.post("/api/v1/account", json={"name": "Acme 杭州", "revenue": "-1234.5", "email": "a@acme.example"},
                   headers=h)
    assert rec.status_code == 422                                  # min: 0 still holds
    rec = web.post("/api/v1/account", json={"name": "Acme 杭州", "revenue": "1234567.5"}, headers=h).get_json()
    page = web.get("/e/account?lang=zh").get_data(as_text=True)
    assert '<p class="muted entity-description">我们销售的对象公司</p>' in page
    shown = web.get(f"/e/account/{rec['id']}?lang=en").get_data(as_text=True)
    assert "¥1,234,567.50" in shown
    assert web.get("/api/v1/account/%d" % rec["id"], headers=h).get_json()["revenue"] in ("1234567.50", 1234567.5)


def test_form_label_placeholder_currency_unit_and_a_folded_section(web):
    page = web.get("/e/account/new?lang=en").get_data(as_text=True)
    assert re.search(r"<h1>\s*Register a customer\s*</h1>", page)
    assert re.search(r'name="email"[^>]*placeholder="name@company.com"', page)
    assert re.search(r'name="revenue"[^>]*>\s*<span class="unit">CNY</span>', page)
    money = page[page.index('data-section="s1"'):]
    assert money.index('<details class="form-fold"><summary>') < money.index('name="revenue"')   # folded: no `open`
    zh = web.get("/e/account/new?lang=zh").get_data(as_text=True)
    assert re.search(r"<h1>\s*登记客户\s*</h1>", zh) and 'placeholder="例如 name@company.com"' in zh
    # saved with a bad amount: the folded section opens on its error, what was typed is kept
    r = web.post("/e/account/new", data={"name": "Fold Co", "level": "low", "revenue": "-5"})
    body = r.get_data(as_text=True)
    assert r.status_code == 422
    assert '<details class="form-fold" open>' in body and 'value="-5"' in body
    listed = web.get("/api/v1/account?q=Fold", headers={"Authorization": f"Bearer {web.token}"}).get_json()
    assert listed["items"] == []                                   # nothing saved
