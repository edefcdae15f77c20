"""The shipped dealer network pack (packs/dealer_network, seed 002): it loads on its own, installs
beside the default pack, runs its onboarding / order / rebate workflows through the REST API as
its roles with regional row scopes, generates demo data, and its reports and scheduled target
figures compute the expected amounts on fixed data."""
from __future__ import annotations

import datetime as dt
import shutil
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa

from platform_ import auth
from tests.conftest import ROOT

PACK = ROOT / "packs" / "dealer_network"
ENTITIES = {"dn_region", "dn_dealer", "dn_product", "dn_order", "dn_order_line", "dn_target", "dn_rebate"}


def D(x) -> Decimal:
    return Decimal(str(x))


# ---- (1) on its own ---------------------------------------------------------------------------
def test_loads_on_its_own_and_no_id_collides_with_the_default_pack():
    from engine.loader import load_config
    cfg = load_config(PACK)
    assert set(cfg.entities) == ENTITIES
    assert list(cfg.workflows["dn_dealer_onboarding"].states) == ["applied", "reviewed", "approved", "rejected",
                                                                  "active", "suspended"]
    assert set(cfg.workflows) == {"dn_dealer_onboarding", "dn_order_flow", "dn_rebate_flow"}
    assert {r for r, _ in cfg.pack.roles} == {"admin", "dealer_manager", "regional_manager", "finance"}
    assert cfg.entities["dn_dealer"].label["zh"] == "经销商" and cfg.entities["dn_rebate"].label["zh"] == "返利"
    crm = load_config(ROOT / "config")
    assert not set(cfg.entities) & set(crm.entities)
    assert not set(cfg.workflows) & set(crm.workflows)
    assert not set(cfg.reports) & set(crm.reports) and not set(cfg.dashboards) & set(crm.dashboards)
    crm_roles = dict(crm.pack.roles)
    for role, label in cfg.pack.roles:          # a shared role id means the same role
        if role in crm_roles:
            assert label == crm_roles[role], role


def test_crm_check_passes_on_the_pack_folder(make_app):
    app, _admin, _ = make_app(PACK)
    res = app.test_cli_runner().invoke(args=["crm", "check", str(PACK)])
    assert res.exit_code == 0 and "OK (7 entities" in res.output, res.output


# ---- (2) beside the default pack ---------------------------------------------------------------
def test_installs_beside_the_default_pack(make_app, tmp_path, db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("the full default pack is migrated once, on SQLite")
    cfg = tmp_path / "cfg"
    shutil.copytree(ROOT / "config", cfg)
    app, admin, _ = make_app(cfg)
    runner = app.test_cli_runner()
    res = runner.invoke(args=["crm", "pack", "install", str(PACK)])
    assert res.exit_code == 0, res.output
    # its access.yaml and home.yaml join the default pack's: a regional manager's scope on dealers
    assert (cfg / "access" / "dealer_network.yaml").is_file() and (cfg / "home" / "dealer_network.yaml").is_file()
    assert "create_table e_dn_dealer" in res.output and "Installed dealer_network 1.0.0" in res.output
    app.extensions["crm"]._checked = 0.0
    client = app.test_client()
    h = {"Authorization": f"Bearer {admin}"}

    def call(method, path, body=None):
        r = client.open("/api/v1" + path, method=method, json=body, headers=h)
        return r.status_code, r.get_json(silent=True)
    s, area = call("POST", "/dn_region", {"name": "华东大区", "code": "east", "level": "area"})
    assert s == 201 and area["area_code"] == "east", area
    s, dealer = call("POST", "/dn_dealer", {"name": "杭州恒达商贸", "level": "a", "region": area["id"],
                                            "credit_limit": "500000"})
    assert s == 201 and dealer["status"] == "applied" and dealer["area_code"] == "east", dealer
    s, p = call("POST", "/dn_product", {"code": "P-1", "name": "净水器", "price": "1200"})
    s, order = call("POST", "/dn_order", {"dealer": dealer["id"], "lines": [{"product": p["id"], "quantity": 3}]})
    assert s == 201 and D(order["amount"]) == D("3600.00") and order["status"] == "draft", order
    assert call("GET", "/customer")[0] == 200 and call("GET", "/dealer")[0] == 200   # the CRM is untouched
    listed = runner.invoke(args=["crm", "pack", "list"]).output
    assert "crm\t" in listed and "dealer_network\t1.0.0\tinstalled" in listed


# ---- (3) the main workflows as the pack's roles ------------------------------------------------
@pytest.fixture
def net(make_app):
    app, admin, _ = make_app(PACK)
    rt = app.extensions["crm"]
    people = {"cm": (["dealer_manager"], None), "cm2": (["dealer_manager"], None),
              "rm_east": (["regional_manager"], "east"), "rm_south": (["regional_manager"], "south"),
              "fin": (["finance"], None)}
    ids = {}
    for name, (roles, region) in people.items():
        ids[name] = auth.create_user(rt.engine, name, f"{name}-Passw0rd!", roles, region=region)
    tokens = {"admin": admin, **{n: auth.create_token(rt.engine, n) for n in people}}
    client = app.test_client()

    def call(who, method, path, body=None):
        r = client.open("/api/v1" + path, method=method, json=body, headers={"Authorization": f"Bearer {tokens[who]}"})
        return r.status_code, r.get_json(silent=True)
    call.ids, call.app = ids, app
    return call


def rows_of(report):
    cols = [c["id"] for c in report["columns"]]
    return [dict(zip(cols, row)) for row in report["rows"]]


def _approve_all(api, who, entity, rid):
    """Approve every pending task of the record waiting for `who`; the number approved."""
    s, inbox = api(who, "GET", "/approvals")
    assert s == 200, inbox
    tasks = [t for t in inbox["items"] if t["record_id"] == rid and t.get("entity", entity) == entity]
    for t in tasks:
        s, d = api(who, "POST", f"/approvals/{t['id']}/approve", {"comment": "ok"})
        assert s == 200, d
    return len(tasks)


def _network(api):
    """East area → Zhejiang → Hangzhou (managed by rm_east), the South area, a product, two dealers."""
    ids = api.ids
    _, east = api("cm", "POST", "/dn_region", {"name": "华东大区", "code": "east", "level": "area",
                                                "manager": ids["rm_east"]})
    _, zj = api("cm", "POST", "/dn_region", {"name": "浙江省", "code": "zj", "level": "province", "parent": east["id"],
                                              "manager": ids["rm_east"]})
    s, hz = api("cm", "POST", "/dn_region", {"name": "杭州市", "code": "hz", "level": "city", "parent": zj["id"],
                                              "manager": ids["rm_east"]})
    assert s == 201 and hz["area_code"] == "east", hz
    _, south = api("cm", "POST", "/dn_region", {"name": "华南大区", "code": "south", "level": "area",
                                                 "manager": ids["rm_south"]})
    s, prod = api("cm", "POST", "/dn_product", {"code": "P-0001", "name": "净水器", "spec": "RO-400", "price": "1000"})
    assert s == 201, prod
    s, a = api("cm", "POST", "/dn_dealer", {"name": "杭州恒达商贸", "level": "a", "region": hz["id"],
                                             "contact_person": "王经理", "phone": "0571-8888 6666",
                                             "credit_limit": "20000", "account_manager": ids["cm"]})
    assert s == 201 and a["status"] == "applied" and a["area_code"] == "east", a
    assert a["regional_manager"] == ids["rm_east"]                 # fetched from the region
    s, b = api("cm", "POST", "/dn_dealer", {"name": "广州粤丰贸易", "level": "b", "region": south["id"],
                                             "contact_person": "陈经理", "phone": "020-6666 8888",
                                             "credit_limit": "50000"})
    assert s == 201 and b["area_code"] == "south", b
    return {"east": east, "hz": hz, "south": south, "prod": prod, "a": a, "b": b}


def test_onboarding_orders_and_rebate_end_to_end_with_regional_scopes(net):
    api, ids = net, net.ids
    n = _network(api)
    a, b = n["a"], n["b"]

    # row scopes: the east regional manager sees the east dealer only
    s, lst = api("rm_east", "GET", "/dn_dealer")
    assert s == 200 and [d["name"] for d in lst["items"]] == ["杭州恒达商贸"]
    assert api("rm_east", "GET", f"/dn_dealer/{b['id']}")[0] == 404
    assert [d["name"] for d in api("rm_south", "GET", "/dn_dealer")[1]["items"]] == ["广州粤丰贸易"]

    # refused: the regional manager may not raise a dealer's credit limit
    s, e = api("rm_east", "PATCH", f"/dn_dealer/{a['id']}", {"credit_limit": "900000"})
    assert s == 403 and "credit_limit" in str(e), e
    assert D(api("cm", "GET", f"/dn_dealer/{a['id']}")[1]["credit_limit"]) == D("20000")

    # onboarding: reviewed by the regional manager, approved by another channel manager, activated
    s, r = api("rm_east", "POST", f"/dn_dealer/{a['id']}/transitions/review", {})
    assert s == 200 and r["record"]["status"] == "reviewed", r
    s, r = api("rm_east", "POST", f"/dn_dealer/{a['id']}/transitions/approve", {"comment": "资质齐全"})
    assert s == 202 and r["status"] == "pending_approval", r
    assert _approve_all(api, "cm", "dn_dealer", a["id"]) == 1
    assert api("admin", "GET", f"/dn_dealer/{a['id']}")[1]["status"] == "approved"
    # refused: the regional manager may not activate (channel managers sign)
    before = api("admin", "GET", f"/dn_dealer/{a['id']}")[1]
    s, e = api("rm_east", "POST", f"/dn_dealer/{a['id']}/transitions/activate", {})
    assert s == 403 and "Channel manager" in e["error"]["message"], e
    after = api("admin", "GET", f"/dn_dealer/{a['id']}")[1]
    assert after["status"] == "approved" and D(after["credit_limit"]) == D("20000") \
        and after["version"] == before["version"]
    s, e = api("cm", "POST", f"/dn_dealer/{a['id']}/transitions/activate", {})
    assert s == 422 and "contract_start" in e["error"]["fields"], e           # the contract period first
    s, _ = api("cm", "PATCH", f"/dn_dealer/{a['id']}", {"contract_start": "2026-01-01", "contract_end": "2027-12-31"})
    assert s == 200
    s, r = api("cm", "POST", f"/dn_dealer/{a['id']}/transitions/activate", {})
    assert s == 200 and r["record"]["status"] == "active", r

    # a dealer still onboarding cannot order: refused with the reason, the order unchanged
    s, ob = api("cm", "POST", "/dn_order", {"dealer": b["id"], "lines": [{"product": n["prod"]["id"], "quantity": 2}]})
    assert s == 201 and D(ob["amount"]) == D("2000.00"), ob
    s, e = api("cm", "POST", f"/dn_order/{ob['id']}/transitions/submit", {})
    assert s == 422 and "Only an active dealer may order" in e["error"]["message"], e
    again = api("cm", "GET", f"/dn_order/{ob['id']}")[1]
    assert again["status"] == "draft" and again["version"] == ob["version"]

    # an order with a 15 % discount over the dealer's credit limit: regional manager, then finance
    s, o = api("cm", "POST", "/dn_order", {"dealer": a["id"], "order_date": "2026-11-10", "discount": 15,
                                            "discount_reason": "年末冲量", "delivery_address": "杭州市西湖区文三路1号",
                                            "lines": [{"product": n["prod"]["id"], "quantity": 30}]})
    assert s == 201, o
    assert D(o["lines"][0]["unit_price"]) == D("1000") and D(o["gross_amount"]) == D("30000")
    assert D(o["amount"]) == D("25500.00") and o["over_credit"] is True and D(o["sales_amount"]) == 0
    texts = [x["text"] for x in api("cm", "GET", "/notifications")[1]["items"]]     # automation dn_order_over_credit
    assert f"Order {o['code']} is over its dealer's credit limit" in texts, texts
    assert "Dealer 杭州恒达商贸 is now active" in [x["text"] for x in api("rm_east", "GET", "/notifications")[1]["items"]]
    assert api("rm_south", "GET", f"/dn_order/{o['id']}")[0] == 404              # another region's order
    assert [x["id"] for x in api("rm_east", "GET", "/dn_order")[1]["items"]] == [o["id"]]
    s, r = api("cm", "POST", f"/dn_order/{o['id']}/transitions/submit", {})
    assert s == 202 and r["status"] == "pending_approval", r
    assert _approve_all(api, "rm_south", "dn_order", o["id"]) == 0             # not theirs to approve
    assert _approve_all(api, "fin", "dn_order", o["id"]) == 0                   # the discount step comes first
    assert _approve_all(api, "rm_east", "dn_order", o["id"]) == 1
    assert api("cm", "GET", f"/dn_order/{o['id']}")[1]["status"] == "draft"
    assert _approve_all(api, "fin", "dn_order", o["id"]) == 1
    o = api("cm", "GET", f"/dn_order/{o['id']}")[1]
    assert o["status"] == "confirmed" and D(o["sales_amount"]) == D("25500.00"), o
    s, r = api("cm", "POST", f"/dn_order/{o['id']}/transitions/ship", {})
    assert s == 200 and r["record"]["status"] == "shipped" and r["record"]["shipped_on"], r

    # a small order without discount within the credit limit is confirmed at once
    s, small = api("rm_east", "POST", "/dn_order", {"dealer": a["id"], "order_date": "2026-11-20",
                                                    "lines": [{"product": n["prod"]["id"], "quantity": 2}]})
    assert s == 201 and small["over_credit"] is False, small
    s, r = api("rm_east", "POST", f"/dn_order/{small['id']}/transitions/submit", {})
    assert r["approval"]["status"] == "approved", r                          # no step applies: done at once
    assert api("rm_east", "GET", f"/dn_order/{small['id']}")[1]["status"] == "confirmed"

    # reports on these figures, within each reader's scope
    s, rep = api("cm", "GET", "/reports/dn_sales_by_region?since=2026-01-01")
    assert s == 200, rep
    rows = rows_of(rep)
    assert [(x["month"], x["area"], D(x["amount"]), x["orders"]) for x in rows] == [("2026-11", "east", D("27500"), 2)]
    s, rep = api("rm_south", "GET", "/reports/dn_sales_by_region?since=2026-01-01")
    assert s == 200 and rep["rows"] == [], rep

    # a target attained at 137.5 % earns a 5 % rebate, paid after finance approves
    s, t = api("cm", "POST", "/dn_target", {"name": "2026年11月目标", "dealer": a["id"], "period_type": "monthly",
                                             "period_start": "2026-11-01", "period_end": "2026-11-30",
                                             "target_amount": "20000"})
    assert s == 201 and t["region"] == n["hz"]["id"], t                       # the region comes with the dealer
    s, e = api("rm_east", "PATCH", f"/dn_target/{t['id']}", {"actual_amount": "27500"})
    assert s == 403, e                                                        # achieved figures are not theirs
    s, t = api("fin", "PATCH", f"/dn_target/{t['id']}", {"actual_amount": "27500"})
    assert s == 200 and D(t["attainment"]) == D("137.50"), t
    s, rb = api("cm", "POST", "/dn_rebate", {"target": t["id"]})
    assert s == 201 and rb["dealer"] == a["id"], rb
    assert (D(rb["attainment"]), D(rb["rate"]), D(rb["amount"])) == (D("137.50"), D("5"), D("1375.00"))
    s, r = api("cm", "POST", f"/dn_rebate/{rb['id']}/transitions/approve", {})
    assert s == 202, r
    assert _approve_all(api, "fin", "dn_rebate", rb["id"]) == 1
    s, r = api("fin", "POST", f"/dn_rebate/{rb['id']}/transitions/pay", {})
    assert s == 200 and r["record"]["status"] == "paid" and r["record"]["paid_on"], r
    s, rep = api("fin", "GET", "/reports/dn_rebates")
    assert s == 200 and [(x["dealer"], x["status"], D(x["amount"])) for x in rows_of(rep)] == [(a["id"], "paid", D("1375"))]

    # a target missed (80 %) has no rebate to pay: refused, the rebate stays calculated
    _, t2 = api("cm", "POST", "/dn_target", {"name": "2026年10月目标", "dealer": a["id"], "period_type": "monthly",
                                              "period_start": "2026-10-01", "period_end": "2026-10-31",
                                              "target_amount": "10000"})
    api("fin", "PATCH", f"/dn_target/{t2['id']}", {"actual_amount": "8000"})
    s, rb2 = api("cm", "POST", "/dn_rebate", {"target": t2["id"]})
    assert s == 201 and D(rb2["rate"]) == 0 and D(rb2["amount"]) == 0, rb2
    s, e = api("cm", "POST", f"/dn_rebate/{rb2['id']}/transitions/approve", {})
    assert s == 422 and "no rebate to pay" in e["error"]["message"], e
    assert api("cm", "GET", f"/dn_rebate/{rb2['id']}")[1]["status"] == "calculated"


def _activate(api, dealer_id):
    """Onboard a dealer: reviewed, approved by a channel manager, contract signed, active."""
    api("admin", "POST", f"/dn_dealer/{dealer_id}/transitions/review", {})
    s, r = api("admin", "POST", f"/dn_dealer/{dealer_id}/transitions/approve", {})
    assert s == 202, r
    assert _approve_all(api, "cm", "dn_dealer", dealer_id) == 1
    api("cm", "PATCH", f"/dn_dealer/{dealer_id}", {"contract_start": "2026-01-01", "contract_end": "2027-12-31"})
    s, r = api("cm", "POST", f"/dn_dealer/{dealer_id}/transitions/activate", {})
    assert s == 200 and r["record"]["status"] == "active", r


def _order(api, dealer, product, quantity, day, then=("submit",)):
    s, o = api("cm", "POST", "/dn_order", {"dealer": dealer, "order_date": day, "delivery_address": "仓库",
                                            "lines": [{"product": product, "quantity": quantity}]})
    assert s == 201, o
    for step in then:
        s, r = api("cm", "POST", f"/dn_order/{o['id']}/transitions/{step}", {"comment": "客户取消"})
        assert s in (200, 202), r
    return api("cm", "GET", f"/dn_order/{o['id']}")[1]


# ---- (5) the scheduled target figures and the attainment report --------------------------------
def test_targets_get_their_achieved_amount_on_the_first_of_the_month(net):
    api = net
    n = _network(api)
    a, p = n["a"]["id"], n["prod"]["id"]
    _activate(api, a)
    assert _order(api, a, p, 15, "2026-11-10")["status"] == "confirmed"
    assert _order(api, a, p, 5, "2026-11-25", ("submit", "ship"))["status"] == "shipped"
    assert _order(api, a, p, 3, "2026-11-26", ())["status"] == "draft"                 # not counted
    assert _order(api, a, p, 2, "2026-11-27", ("cancel",))["status"] == "cancelled"    # not counted
    assert _order(api, a, p, 4, "2026-10-15")["status"] == "confirmed"                 # October
    targets = {}
    for name, kind, start, end, amount in [("11月", "monthly", "2026-11-01", "2026-11-30", "16000"),
                                           ("秋季", "quarterly", "2026-09-01", "2026-11-30", "30000"),
                                           ("10月", "monthly", "2026-10-01", "2026-10-31", "5000")]:
        s, t = api("cm", "POST", "/dn_target", {"name": name, "dealer": a, "period_type": kind, "period_start": start,
                                                 "period_end": end, "target_amount": amount})
        assert s == 201, t
        targets[name] = t["id"]
    runner = api.app.test_cli_runner()
    for at in ("2026-11-30T12:00:00+08:00", "2026-12-01T02:05:00+08:00"):   # plan, then the 1st at 02:00
        res = runner.invoke(args=["crm", "timers", "run", "--now", at])
        assert res.exit_code == 0, res.output
    got = {k: api("fin", "GET", f"/dn_target/{v}")[1] for k, v in targets.items()}
    assert D(got["11月"]["actual_amount"]) == D("20000") and D(got["11月"]["attainment"]) == D("125")
    assert D(got["秋季"]["actual_amount"]) == D("24000") and D(got["秋季"]["attainment"]) == D("80")
    assert got["10月"]["actual_amount"] is None                       # its period did not just end
    s, rep = api("rm_east", "GET", "/reports/dn_target_attainment?since=2026-01-01")
    assert s == 200, rep
    assert [(x["month"], x["area"], D(x["target"]), D(x["actual"] or 0), x["targets"]) for x in rows_of(rep)] == [
        ("2026-09", "east", D("30000"), D("24000"), 1), ("2026-10", "east", D("5000"), D("0"), 1),
        ("2026-11", "east", D("16000"), D("20000"), 1)]
    assert api("rm_south", "GET", "/reports/dn_target_attainment?since=2026-01-01")[1]["rows"] == []
    s, rep = api("cm", "GET", "/reports/dn_sales_by_dealer_month?since=2026-01-01")
    assert [(x["month"], x["dealer"], D(x["amount"])) for x in rows_of(rep)] == [
        ("2026-10", a, D("4000")), ("2026-11", a, D("20000"))]


def test_dashboard_and_home_pages_show_for_a_channel_manager(net):
    api = net
    n = _network(api)
    _activate(api, n["a"]["id"])
    s, boards = api("cm", "GET", "/dashboards")
    assert s == 200 and [d["id"] for d in boards["items"]] == ["dn_dealers"]
    c = api.app.test_client()
    r = c.post("/login", data={"username": "cm", "password": "cm-Passw0rd!"})
    assert r.status_code in (302, 303), r.get_data(as_text=True)[:300]
    page = c.get("/dashboards/dn_dealers").get_data(as_text=True)
    assert "Dealer sales this month" in page and "Dealers behind their target this month" in page
    home = c.get("/").get_data(as_text=True)
    assert "Active dealers" in home and "Dealer applications to review" in home


# ---- (4) demo data -----------------------------------------------------------------------------
def test_demo_data_generates_the_counts_asked(tmp_path):
    from engine import demo
    from engine.db import make_engine
    from engine.loader import load_config
    from engine.migrator import Migrator
    eng = make_engine(f"sqlite:///{tmp_path}/demo.db")
    cfg = load_config(PACK)
    m = Migrator(eng, cfg)
    m.apply()
    try:
        counts = demo.generate(eng, cfg, m.metadata, 40, seed=7)
        assert counts == {"dn_region": 3, "dn_dealer": 12, "dn_product": 4, "dn_order": 40, "dn_target": 20,
                          "dn_rebate": 12}
        with eng.connect() as conn:
            t = {e: m.metadata.tables[f"e_{e}"] for e in ENTITIES}
            regions = {r.id: r for r in conn.execute(sa.select(t["dn_region"]))}
            assert all(r.level == "area" and r.area_code == r.code and r.name.endswith("大区") for r in regions.values())
            dealers = {r.id: r for r in conn.execute(sa.select(t["dn_dealer"]))}
            assert all(d.region in regions and d.contract_end > d.contract_start for d in dealers.values())
            for o in conn.execute(sa.select(t["dn_order"])):
                lines = conn.execute(sa.select(t["dn_order_line"]).where(t["dn_order_line"].c.parent_id == o.id)).all()
                assert 1 <= len(lines) <= 4 and o.gross_amount == sum(x.amount for x in lines)
                assert o.amount == (o.gross_amount * (100 - o.discount) / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
                assert o.sales_amount == (o.amount if o.status in ("confirmed", "shipped", "completed") else 0)
            assert {d.status for d in dealers.values()} <= {"applied", "reviewed", "approved", "rejected", "active",
                                                            "suspended"}
            for tg in conn.execute(sa.select(t["dn_target"])):
                assert tg.period_end > tg.period_start and tg.target_amount > 0
                assert tg.attainment == ((tg.actual_amount or 0) * 100 / tg.target_amount).quantize(Decimal("0.01"), ROUND_HALF_UP)
    finally:
        eng.dispose()
