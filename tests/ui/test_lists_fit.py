"""Lists that fit the window: the title's field is a column under its own label, default columns
within the window's budget, a column chooser kept in saved views, money totals of the whole
filtered set (within the reader's row scope), past deadlines highlighted."""
from __future__ import annotations

import re
from decimal import Decimal

from engine.query import ListRequest
from platform_.auth import create_user, get_actor
from tests.ui.conftest import Client
from tests.ui.test_zh_everywhere import visible_text
from tests.ui.zh_pack import crm  # noqa: F401  (the default pack, one Chinese record of each entity)
from ui import columns

HEADERS = re.compile(r'<th scope="col"[^>]*>(.*?)</th>', re.S)


def headers(html: str) -> list[str]:
    return [t for t in (re.sub(r"<[^>]+>|[▲▼]", "", h).strip() for h in HEADERS.findall(html)) if t]


def test_the_name_column_is_headed_by_its_label_and_the_code_is_not_repeated(crm):
    cfg = crm.rt.config
    e = cfg.entities["contract"]                       # title "{code} {name}": two columns, one link
    rec = crm.rt.store.get("contract", crm.records["contract"]["id"], get_actor(crm.rt.engine, 1))
    page = crm.get("/e/contract?lang=en").get_data(as_text=True)
    heads = headers(page)
    assert e.fields["name"].label_text("en") in heads and e.fields["code"].label_text("en") in heads
    assert heads.count("Title") <= 1                      # the name field is labelled "Title" in this pack
    link = re.search(rf'<a href="/e/contract/{rec["id"]}">([^<]*)</a>', page).group(1)
    assert link == rec["name"] and rec["code"] not in link
    for ent in cfg.top_entities:                        # every list: no generic "Title"/"标题" header
        heads = headers(crm.get(f"/e/{ent.id}?lang=zh").get_data(as_text=True))
        link_field = columns.link_field(ent)
        assert link_field is None or link_field.label_text("zh") in heads, ent.id
        assert "标题" not in heads or any(f.label_text("zh") == "标题" for f in ent.fields.values()), ent.id


def test_default_columns_fit_the_budget_and_the_rest_are_offered(crm):
    for e in crm.rt.config.top_entities:
        cols = columns.default_columns(e)
        link = columns.link_field(e)
        assert sum(columns.estimate(f, link) for f in cols) <= columns.BUDGET_REM, e.id
        assert link is None or link in cols


def test_money_totals_cover_the_filtered_set_within_the_row_scope(crm):
    rt = crm.rt
    admin = get_actor(rt.engine, 1)
    uid = create_user(rt.engine, "zhrep", "zh-Rep-Passw0rd!", roles=("sales",), full_name="赵代表", language="zh")
    rep = get_actor(rt.engine, uid)
    customer = crm.records["customer"]["id"]
    mine = rt.store.create("contract", {"name": "代表的合同", "customer": customer, "amount": "100"}, rep)
    other = rt.store.create("contract", {"name": "别人的合同", "customer": customer, "amount": "1000"}, admin)
    everyone = sum(Decimal(str(r["amount"])) for r in
                   rt.store.list("contract", ListRequest(filters=[], per_page=500), admin)["items"])
    page = crm.get("/e/contract?lang=zh&per_page=1").get_data(as_text=True)   # one row shown, all summed
    assert f"{everyone:,.2f}" in visible_text(page)
    assert "合计" in visible_text(page)
    rep_page = Client(crm.app, "zhrep", "zh-Rep-Passw0rd!").get("/e/contract?lang=zh").get_data(as_text=True)
    text = visible_text(rep_page)
    assert "代表的合同" in text and "别人的合同" not in text
    assert "100.00" in text and f"{everyone:,.2f}" not in text
    page = crm.get("/e/contract?lang=zh&name__contains=别人").get_data(as_text=True)
    assert "1,000.00" in visible_text(page)
    rt.store.delete("contract", mine["id"], admin)
    rt.store.delete("contract", other["id"], admin)


def test_chosen_columns_are_kept_in_a_saved_view(orgs, admin):
    p = admin.get("/e/org?_cols=phone&_cols=staff").get_data(as_text=True)
    assert headers(p)[:3] == ["Name", "Phone", "Staff"]       # the link column stays, first
    assert "Revenue" not in headers(p)
    r = admin.post("/e/org/views", {"name": "Phones", "query": "_cols=name&_cols=phone&_cols=staff"})
    assert r.status_code == 302
    page = admin.get("/e/org").get_data(as_text=True)
    view = re.search(r'<a href="(/e/org\?[^"]*)">Phones</a>', page).group(1).replace("&amp;", "&")
    assert headers(admin.get(view).get_data(as_text=True))[:3] == ["Name", "Phone", "Staff"]
    assert "Revenue" in headers(admin.get("/e/org").get_data(as_text=True))   # the default list is unchanged


def test_totals_on_the_ui_pack_follow_the_filter(orgs, admin):
    # revenue of org i is i * 1000; level high for i in 0, 5, 10, 15, 20 → 50,000
    text = visible_text(admin.get("/e/org?level=high&per_page=2").get_data(as_text=True))
    assert "50,000.00" in text and "Total of 5 records" in text


def test_a_list_without_money_columns_has_no_totals_row(orgs, admin):
    page = admin.get("/e/org?_cols=name&_cols=phone").get_data(as_text=True)
    assert "<tfoot>" not in page


def test_join_of_words_follows_the_language():
    from ui.i18n import words
    assert words("新建", "客户") == "新建客户"
    assert words("New", "Customer") == "New Customer"
    assert words("新建", "CRM") == "新建 CRM"
    assert words("需要", None, "", "审批") == "需要审批"


def test_filter_panel_keeps_labels_with_inputs_and_dates_as_text(orgs, admin):
    page = admin.get("/e/org?level=high").get_data(as_text=True)
    assert re.search(r'<div class="filter"><label for="flt-name">Name</label>\s*<input type="text" id="flt-name"', page)
    assert 'placeholder="from YYYY-MM-DD"' in page and 'pattern="[0-9]{4}-[0-9]{2}-[0-9]{2}"' in page
    assert '<fieldset class="filter range dates">' in page


# the fixtures of tests/ui/test_lists.py: 25 organisations
from tests.ui.test_lists import orgs  # noqa: E402,F401
