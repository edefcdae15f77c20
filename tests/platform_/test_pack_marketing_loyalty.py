"""The shipped marketing and loyalty pack (issue 11 part 4, D1-D5): it loads and runs on its own,
installs beside the default pack, and its campaign approval, points ledger, coupon expiry, tier
upgrade and reports work through the REST API as its roles."""
from __future__ import annotations

import datetime as dt
import re
import shutil
from collections import Counter

import pytest
import sqlalchemy as sa

from platform_ import auth
from tests.conftest import ROOT
from tests.platform_ import loopback

frozen_clock = loopback.frozen_clock          # a fixture

PACK = ROOT / "packs" / "marketing_loyalty"
ENTITIES = {"ml_member", "ml_points_entry", "ml_campaign", "ml_response", "ml_coupon"}


@pytest.fixture
def ml(make_app):
    """The pack as the whole config folder, with a marketer, a second marketer and a manager."""
    app, admin, _ = make_app(PACK)
    rt = app.extensions["crm"]
    tokens = {"admin": admin}
    for name, roles in {"mia": ["marketer"], "leo": ["marketer"], "max": ["marketing_manager"]}.items():
        auth.create_user(rt.engine, name, f"{name}-Passw0rd!", roles)
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

    def cli(*args):
        res = app.test_cli_runner().invoke(args=["crm", *map(str, args)])
        assert res.exit_code == 0, res.output
        return res.output

    call.move, call.cli, call.rt, call.app = move, cli, rt, app
    return call


def member(ml, who="mia", **extra):
    body = {"name": "王芳", "phone": "+86 139 1000 0001", "join_channel": "wechat", **extra}
    return ml(who, "POST", "/ml_member", body, 201)


def post(ml, who, rid, expect=200, **txn):
    cur = ml(who, "GET", f"/ml_member/{rid}")
    ml(who, "PATCH", f"/ml_member/{rid}", {"version": cur["version"], **txn}, 200)
    return ml.move(who, "ml_member", rid, "post_points", expect)


# ---- (1) on its own --------------------------------------------------------------------------------
def test_the_pack_loads_on_its_own():
    from engine.loader import load_config
    cfg = load_config(PACK)
    assert set(cfg.entities) == ENTITIES
    assert list(cfg.workflows["ml_campaign_flow"].states) == ["draft", "in_approval", "approved", "running",
                                                              "finished", "cancelled"]
    assert list(cfg.workflows["ml_coupon_flow"].states) == ["issued", "redeemed", "expired", "void"]
    assert dict(cfg.pack.roles)["marketer"] == {"en": "Marketer", "zh": "市场专员"}
    assert dict(cfg.pack.roles)["marketing_manager"] == {"en": "Marketing manager", "zh": "市场经理"}
    tier = cfg.entities["ml_member"].fields["tier"]
    assert [o.label["zh"] for o in tier.options] == ["普通", "银卡", "金卡", "钻石"]


def test_the_pack_installs_beside_the_default_pack(make_app, tmp_path, db_url):
    """Installed into a copy of config/ with `flask crm pack install`; both packs' APIs work after.
    Its access.yaml, home.yaml and segments land beside the default pack's (access/, home/,
    segments/) and join them."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the full default pack is migrated once, on SQLite")
    cfg = tmp_path / "cfg"
    shutil.copytree(ROOT / "config", cfg)
    app, admin, _ = make_app(cfg)
    res = app.test_cli_runner().invoke(args=["crm", "pack", "install", str(PACK)])
    assert res.exit_code == 0, res.output
    assert (cfg / "access" / "marketing_loyalty.yaml").is_file() and (cfg / "home" / "marketing_loyalty.yaml").is_file()
    assert (cfg / "segments" / "ml_member_value.yaml").is_file()          # its grading came along
    app.extensions["crm"]._checked = 0.0
    rt = app.extensions["crm"]
    rt.follow(every=0)
    assert "marketer" in rt.config.access.scopes and "sales" in rt.config.access.scopes
    assert "marketer" in rt.config.home.roles
    assert (cfg / "packs" / "marketing_loyalty.yaml").exists() and (cfg / "entities" / "ml_member.yaml").exists()
    client = app.test_client()
    h = {"Authorization": f"Bearer {admin}"}
    m = client.post("/api/v1/ml_member", json={"name": "Li Lei", "phone": "13800000000"}, headers=h)
    assert m.status_code == 201, m.get_json()
    assert m.get_json()["tier"] == "normal" and m.get_json()["points_balance"] == 0
    assert m.get_json()["status"] == "active" and m.get_json()["code"].startswith("MEM-")
    c = client.post("/api/v1/ml_campaign", json={"name": "双十一", "channel": "wechat", "budget": 5000,
                                                 "start_date": "2026-11-01", "end_date": "2026-11-11"}, headers=h)
    assert c.status_code == 201 and c.get_json()["status"] == "draft"
    assert client.get("/api/v1/customer", headers=h).status_code == 200          # the CRM still answers
    assert client.get("/api/v1/campaign", headers=h).status_code == 200          # its own campaign entity too
    listed = app.test_cli_runner().invoke(args=["crm", "pack", "list"]).output
    assert "crm\t" in listed and "marketing_loyalty\t1.0.0\tinstalled" in listed


# ---- (3) the campaign workflow as the pack's roles -------------------------------------------------
def campaign(ml, who="mia", budget=150000, **extra):
    body = {"name": "双十一会员狂欢节", "channel": "wechat", "target_tiers": ["gold", "diamond"], "budget": budget,
            "start_date": "2026-11-01", "end_date": "2026-11-11", **extra}
    return ml(who, "POST", "/ml_campaign", body, 201)


def test_campaign_from_draft_through_budget_approval_to_finished(ml):
    c = campaign(ml)
    cid = c["id"]
    assert c["status"] == "draft" and c["code"].startswith("MC-")

    # refused: a draft cannot start; nothing changes
    r = ml.move("mia", "ml_campaign", cid, "start", 409)
    assert "start" in r["error"]["message"] and "draft" in r["error"]["message"].lower()
    after = ml("mia", "GET", f"/ml_campaign/{cid}")
    assert after["status"] == "draft" and after["version"] == c["version"]

    # submitting enters "in approval" and opens the budget approval at once
    done = ml.move("mia", "ml_campaign", cid, "submit")
    assert done["record"]["status"] == "in_approval"
    assert ml("mia", "GET", "/approvals")["total"] == 0                  # never one's own approver
    [task] = ml("max", "GET", "/approvals")["items"]
    assert ml("admin", "GET", "/approvals")["total"] == 0                # the director's step comes second
    ml("max", "POST", f"/approvals/{task['id']}/approve", {"comment": "ok"}, 200)
    assert ml("mia", "GET", f"/ml_campaign/{cid}")["status"] == "in_approval"
    [task] = ml("admin", "GET", "/approvals")["items"]                   # budget over 100,000
    ml("admin", "POST", f"/approvals/{task['id']}/approve", {"comment": "go"}, 200)
    assert ml("mia", "GET", f"/ml_campaign/{cid}")["status"] == "approved"

    assert ml.move("mia", "ml_campaign", cid, "start")["record"]["status"] == "running"
    # refused: finishing needs the actual cost and the revenue; the record stays running
    before = ml("mia", "GET", f"/ml_campaign/{cid}")
    r = ml.move("mia", "ml_campaign", cid, "finish", 422)
    assert "actual_cost" in str(r["error"]) and "revenue" in str(r["error"])
    assert ml("mia", "GET", f"/ml_campaign/{cid}") == before
    # the marketer may not set the attributed revenue; the manager does
    r = ml("mia", "PATCH", f"/ml_campaign/{cid}", {"version": before["version"], "revenue": 999999}, 403)
    assert "revenue" in str(r["error"])
    ml("max", "PATCH", f"/ml_campaign/{cid}", {"version": before["version"], "actual_cost": 100000,
                                                 "revenue": 250000}, 200)
    rec = ml.move("mia", "ml_campaign", cid, "finish")["record"]
    assert rec["status"] == "finished" and float(rec["roi"]) == 150.0     # (250000 - 100000) / 100000
    assert ml("mia", "GET", f"/ml_campaign/{cid}/transitions")["items"] == []


def test_a_small_budget_needs_only_the_manager_and_a_rejection_returns_to_draft(ml):
    c = campaign(ml, budget=20000)
    ml.move("mia", "ml_campaign", c["id"], "submit")
    [task] = ml("max", "GET", "/approvals")["items"]
    ml("max", "POST", f"/approvals/{task['id']}/reject", {"comment": "预算不清楚"}, 200)
    assert ml("mia", "GET", f"/ml_campaign/{c['id']}")["status"] == "draft"
    ml.move("mia", "ml_campaign", c["id"], "submit")
    [task] = ml("max", "GET", "/approvals")["items"]
    ml("max", "POST", f"/approvals/{task['id']}/approve", {"comment": "ok"}, 200)
    assert ml("mia", "GET", f"/ml_campaign/{c['id']}")["status"] == "approved"   # no director step
    assert ml("admin", "GET", "/approvals")["total"] == 0


def test_a_manager_never_approves_own_campaign(ml):
    """With no other marketing manager, the manager's own submission is refused and stays a draft."""
    c = campaign(ml, "max", budget=20000)
    r = ml.move("max", "ml_campaign", c["id"], "submit", 422)
    assert "has no one who can approve it" in r["error"]["message"]
    assert ml("max", "GET", f"/ml_campaign/{c['id']}")["status"] == "draft"
    assert ml("max", "GET", "/approvals")["total"] == 0


def test_a_marketer_sees_only_own_campaigns_and_their_responses(ml):
    mine = campaign(ml, "mia")
    other = campaign(ml, "leo", name="618 年中大促")
    ml("leo", "POST", "/ml_response", {"campaign": other["id"], "prospect_name": "赵六"}, 201)
    assert [c["id"] for c in ml("mia", "GET", "/ml_campaign")["items"]] == [mine["id"]]
    assert ml("mia", "GET", f"/ml_campaign/{other['id']}", expect=404)
    assert ml("mia", "GET", "/ml_response")["total"] == 0
    assert ml("max", "GET", "/ml_campaign")["total"] == 2


# ---- points ledger and balance -------------------------------------------------------------------
def test_points_are_posted_through_the_ledger_and_redeeming_beyond_the_balance_is_refused(ml):
    m = member(ml)
    assert m["points_balance"] == 0 and m["tier"] == "normal"
    rec = post(ml, "mia", m["id"], txn_type="earn", txn_points=500, txn_amount=600, txn_reason="门店消费")["record"]
    assert rec["points_balance"] == 500 and float(rec["lifetime_spend"]) == 600
    assert rec["txn_type"] is None and rec["txn_points"] is None and rec["txn_reason"] is None
    [entry] = ml("mia", "GET", f"/ml_points_entry?member={m['id']}")["items"]
    assert (entry["entry_type"], entry["points"], entry["signed_points"], entry["reason"]) == \
        ("earn", 500, 500, "门店消费")

    # refused: 800 points cannot be redeemed from 500; no entry is written, the balance is kept
    cur = ml("mia", "GET", f"/ml_member/{m['id']}")
    ml("mia", "PATCH", f"/ml_member/{m['id']}", {"version": cur["version"], "txn_type": "redeem",
                                                 "txn_points": 800, "txn_reason": "兑换礼品"}, 200)
    r = ml.move("mia", "ml_member", m["id"], "post_points", 422)
    assert "Not enough points" in str(r["error"])
    after = ml("mia", "GET", f"/ml_member/{m['id']}")
    assert after["points_balance"] == 500 and after["txn_points"] == 800
    assert ml("mia", "GET", f"/ml_points_entry?member={m['id']}")["total"] == 1

    ml("mia", "PATCH", f"/ml_member/{m['id']}", {"version": after["version"], "txn_points": 200}, 200)
    assert ml.move("mia", "ml_member", m["id"], "post_points")["record"]["points_balance"] == 300
    assert post(ml, "max", m["id"], txn_type="adjust", txn_points=-50,
                txn_reason="客服冲正")["record"]["points_balance"] == 250
    entries = ml("mia", "GET", f"/ml_points_entry?member={m['id']}")["items"]
    assert sum(e["signed_points"] for e in entries) == 250                   # the balance is the ledger's sum


def test_the_balance_and_the_ledger_cannot_be_written_around_the_transition(ml):
    m = member(ml)
    r = ml("mia", "PATCH", f"/ml_member/{m['id']}", {"version": m["version"], "points_balance": 99999}, 200)
    assert r["points_balance"] == 0 and r["version"] == m["version"]          # read-only: not written
    r = ml("mia", "PATCH", f"/ml_member/{m['id']}", {"version": m["version"], "tier": "diamond"}, 403)
    assert "tier" in str(r["error"])
    r = ml("mia", "POST", "/ml_points_entry", {"member": m["id"], "entry_type": "earn", "points": 99999,
                                              "reason": "x"}, 403)
    assert ml("mia", "GET", f"/ml_member/{m['id']}")["points_balance"] == 0
    assert ml("admin", "GET", "/ml_points_entry")["total"] == 0
    # a posting needs its type, points and reason
    r = ml.move("mia", "ml_member", m["id"], "post_points", 422)
    assert "txn_reason" in str(r["error"])


# ---- (5) automations and reports on fixed data ----------------------------------------------------
def test_tier_upgrade_by_yearly_spend_issues_a_welcome_coupon(ml, frozen_clock):
    big, small = member(ml, name="陈静"), member(ml, name="刘洋", phone="+86 139 1000 0002")
    for rid, amounts in ((big["id"], [15000, 8000]), (small["id"], [3000])):
        for i, amount in enumerate(amounts):
            ml("admin", "POST", "/ml_points_entry", {"member": rid, "entry_type": "earn", "points": int(amount),
                                                     "amount": amount, "reason": "消费",
                                                     "entry_date": f"2026-0{8 + i}-15"}, 201)
    frozen_clock(dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc))
    ml.cli("timers", "run", "--now", "2026-11-20T12:00:00+08:00")             # plans the nightly rules
    out = ml.cli("timers", "run", "--now", "2026-11-21T02:30:00+08:00")
    assert out.strip().splitlines()[-1].startswith("fired")
    got = ml("max", "GET", f"/ml_member/{big['id']}")
    assert got["tier"] == "gold" and got["tier_since"] == "2026-11-21"          # 23,000 in 12 months
    assert ml("max", "GET", f"/ml_member/{small['id']}")["tier"] == "normal"    # 3,000: below silver
    [coupon] = ml("max", "GET", f"/ml_coupon?member={big['id']}")["items"]
    assert coupon["status"] == "issued" and float(coupon["face_value"]) == 100
    assert ml("max", "GET", f"/ml_coupon?member={small['id']}")["total"] == 0


def test_rfm_grading_of_members_from_their_purchases(ml, frozen_clock):
    """Three members: the most recent, most frequent and largest buyer is high value (3+3+3), the
    middle one medium (2+2+2), the last low (1+1+1); a member without purchases is low."""
    frozen_clock(dt.datetime(2026, 11, 20, 4, 0, tzinfo=dt.timezone.utc))
    people = {}
    for i, (name, buys) in enumerate((("甲", [("2026-11-10", 3000), ("2026-10-01", 2000), ("2026-09-01", 1000)]),
                                      ("乙", [("2026-08-01", 800), ("2026-07-01", 700)]),
                                      ("丙", [("2026-03-01", 100)]), ("丁", []))):
        people[name] = member(ml, name=name, phone=f"+86 139 2000 000{i}")["id"]
        for day, amount in buys:
            ml("admin", "POST", "/ml_points_entry", {"member": people[name], "entry_type": "earn", "points": amount,
                                                     "amount": amount, "reason": "消费", "entry_date": day}, 201)
    ml("admin", "POST", "/ml_points_entry", {"member": people["丙"], "entry_type": "redeem", "points": 10,
                                             "amount": 99999, "reason": "not a purchase", "entry_date": "2026-11-19"},
       201)                                                                 # only earn entries count
    out = ml.cli("segments", "grade", "ml_member_value")
    assert "ml_member_value: graded" in out
    grades = {n: ml("max", "GET", f"/ml_member/{rid}")["value_grade"] for n, rid in people.items()}
    assert grades == {"甲": "high", "乙": "medium", "丙": "low", "丁": "low"}
    vip = ml("max", "GET", "/ml_member?segment=ml_high_value_members")
    assert [m["name"] for m in vip["items"]] == ["甲"]


def test_expired_coupons_expire_at_night_and_cannot_be_redeemed(ml, frozen_clock):
    m = member(ml)
    frozen_clock(dt.datetime(2026, 11, 20, 4, 0, tzinfo=dt.timezone.utc))
    old = ml("mia", "POST", "/ml_coupon", {"member": m["id"], "face_value": 50, "issued_on": "2026-11-01",
                                           "expires_on": "2026-11-20"}, 201)
    fresh = ml("mia", "POST", "/ml_coupon", {"member": m["id"], "face_value": 20, "issued_on": "2026-11-01",
                                             "expires_on": "2026-12-31"}, 201)
    assert old["status"] == fresh["status"] == "issued" and old["code"].startswith("CPN-")
    ml.cli("timers", "run", "--now", "2026-11-20T12:00:00+08:00")
    ml.cli("timers", "run", "--now", "2026-11-21T00:30:00+08:00")
    assert ml("mia", "GET", f"/ml_coupon/{old['id']}")["status"] == "expired"
    assert ml("mia", "GET", f"/ml_coupon/{fresh['id']}")["status"] == "issued"
    # refused: redeeming a coupon past its date (before the nightly run) says why and changes nothing
    frozen_clock(dt.datetime(2027, 1, 2, 4, 0, tzinfo=dt.timezone.utc))
    r = ml.move("mia", "ml_coupon", fresh["id"], "redeem", 422)
    assert "The coupon has expired" in r["error"]["message"]
    assert ml("mia", "GET", f"/ml_coupon/{fresh['id']}")["status"] == "issued"
    frozen_clock(dt.datetime(2026, 12, 1, 4, 0, tzinfo=dt.timezone.utc))
    rec = ml.move("mia", "ml_coupon", fresh["id"], "redeem")["record"]
    assert rec["status"] == "redeemed" and rec["redeemed_on"] == "2026-12-01"


def report(ml, rid, who="max", query=""):
    data = ml(who, "GET", f"/reports/{rid}{query}", expect=200)
    cols = [c["id"] for c in data["columns"]]
    return {row[0]: dict(zip(cols, row)) for row in data["rows"]}, data


def test_reports_compute_roi_conversion_points_and_tiers(ml):
    wx = campaign(ml, budget=10000, name="微信裂变")
    sms = campaign(ml, budget=10000, name="短信召回", channel="sms")
    for c, cost, revenue in ((wx, 4000, 10000), (sms, 5000, 4000)):
        ml.move("mia", "ml_campaign", c["id"], "submit")
    for task in ml("max", "GET", "/approvals")["items"]:
        ml("max", "POST", f"/approvals/{task['id']}/approve", {"comment": "ok"}, 200)
    for c, cost, revenue in ((wx, 4000, 10000), (sms, 5000, 4000)):
        ml.move("mia", "ml_campaign", c["id"], "start")
        cur = ml("max", "GET", f"/ml_campaign/{c['id']}")
        ml("max", "PATCH", f"/ml_campaign/{c['id']}", {"version": cur["version"], "actual_cost": cost,
                                                         "revenue": revenue}, 200)
    roi, _ = report(ml, "ml_campaign_roi")
    assert float(roi["微信裂变"]["roi"]) == 150.0 and float(roi["短信召回"]["roi"]) == -20.0

    m = member(ml)
    for camp, converted, revenue in ((wx, True, 300), (wx, False, None), (wx, False, None), (wx, True, 200),
                                     (sms, False, None)):
        body = {"campaign": camp["id"], "member": m["id"], "converted": converted,
                **({"revenue": revenue} if revenue else {})}
        got = ml("mia", "POST", "/ml_response", body, 201)
        assert got["channel"] == camp["channel"]                               # taken from the campaign
    by_channel, _ = report(ml, "ml_responses_by_channel")
    assert by_channel["wechat"]["responses"] == 4 and by_channel["wechat"]["conversions"] == 2
    assert float(by_channel["wechat"]["conversion_rate"]) == 50.0 and float(by_channel["wechat"]["revenue"]) == 500
    assert by_channel["sms"]["responses"] == 1 and float(by_channel["sms"]["conversion_rate"]) == 0.0
    # refused: revenue on a response that did not convert
    r = ml("mia", "POST", "/ml_response", {"campaign": wx["id"], "prospect_name": "钱七", "revenue": 10}, 422)
    assert "Only a converted response brings revenue" in str(r["error"])

    for month, kind, points in (("2026-09", "earn", 1000), ("2026-09", "redeem", 300), ("2026-10", "earn", 500),
                                ("2026-10", "expire", 100)):
        ml("admin", "POST", "/ml_points_entry", {"member": m["id"], "entry_type": kind, "points": points,
                                                 "reason": "fixed", "entry_date": f"{month}-10"}, 201)
    points, _ = report(ml, "ml_points_by_month", query="?since=2026-01-01")
    assert (points["2026-09"]["issued"], points["2026-09"]["redeemed"], points["2026-09"]["net"]) == (1000, 300, 700)
    assert (points["2026-10"]["issued"], points["2026-10"]["expired"], points["2026-10"]["net"]) == (500, 100, 400)

    member(ml, name="周杰", phone="+86 139 1000 0009")
    tiers, _ = report(ml, "ml_members_by_tier")
    assert tiers["normal"]["members"] == 2


# ---- (4) demo data ---------------------------------------------------------------------------------
def test_demo_data_fills_every_entity_with_the_asked_counts(tmp_path):
    from engine import demo
    from engine.db import make_engine
    from engine.loader import load_config
    from engine.migrator import Migrator
    eng = make_engine(f"sqlite:///{tmp_path}/demo.db")
    cfg = load_config(PACK)
    m = Migrator(eng, cfg)
    m.apply()
    try:
        counts = demo.generate(eng, cfg, m.metadata, 100, seed=7)
        assert counts == {"ml_member": 100, "ml_points_entry": 300, "ml_campaign": 5, "ml_response": 200,
                          "ml_coupon": 100}
        with eng.connect() as c:
            tiers = Counter(r[0] for r in c.execute(sa.text("select tier from e_ml_member")))
            assert set(tiers) <= {"normal", "silver", "gold", "diamond"} and tiers["normal"] > tiers["diamond"]
            assert c.execute(sa.text("select count(*) from e_ml_member where txn_points is not null")).scalar() == 0
            states = {r[0] for r in c.execute(sa.text("select status from e_ml_campaign"))}
            assert states <= {"draft", "in_approval", "approved", "running", "finished", "cancelled"}
            bad = c.execute(sa.text("select count(*) from e_ml_points_entry where signed_points is null")).scalar()
            assert bad == 0
    finally:
        eng.dispose()


# ---- the marketer's pages --------------------------------------------------------------------------
def test_the_marketers_pages_show_in_chinese(ml):
    auth.create_user(ml.rt.engine, "xiaoli", "xiaoli-Passw0rd!", ["marketer"], language="zh")
    m = member(ml, "mia")
    c = campaign(ml, "leo", name="春节积分翻倍")
    ml.move("leo", "ml_campaign", c["id"], "submit")
    web = ml.app.test_client()
    r = web.post("/login", data={"username": "xiaoli", "password": "xiaoli-Passw0rd!"})
    assert r.status_code == 302
    pages = {"/": ["会员数", "本周到期的优惠券"], "/dashboards/ml_marketing": ["营销与会员看板", "本月新增会员"],
             "/reports/ml_points_by_month": ["每月积分发放与兑换", "发放积分"],
             "/e/ml_member": ["积分余额", "会员等级", "普通"], f"/e/ml_member/{m['id']}": ["积分记账", "正常"],
             "/e/ml_member/new": ["待记账积分", "入会渠道"], "/e/ml_coupon": ["优惠券"]}
    for path, words in pages.items():
        r = web.get(path)
        html = r.get_data(as_text=True)
        assert r.status_code == 200, (path, r.status_code)
        for w in words:
            assert w in html, (path, w)
        text = re.sub(r"<[^>]+>", " ", re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", html))
        raw = {w for w in ("ml_member", "ml_campaign", "in_approval", "marketing_manager", "post_points",
                           "points_balance", "txn_points", "join_channel") if w in text}
        assert not raw, (path, raw)                                           # no id shown raw
    # a marketer's campaign list holds only their own campaigns: another marketer's is not there
    assert "春节积分翻倍" not in web.get("/e/ml_campaign").get_data(as_text=True)

    boss = ml.app.test_client()
    assert boss.post("/login", data={"username": "max", "password": "max-Passw0rd!"}).status_code == 302
    home = boss.get("/").get_data(as_text=True)
    assert "Campaigns in approval" in home and "春节积分翻倍" in home          # the figure and the approval waiting
    board = boss.get("/e/ml_campaign/board").get_data(as_text=True)
    assert "In approval" in board and "春节积分翻倍" in board
