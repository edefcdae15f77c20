"""Time and its API (A10 REST API, E3 service quality: SLA clocks and breaches, C8 round-robin
assignment of tickets): `flask crm timers run`, `flask crm calendar due`, GET …/sla, the
notification inbox, the approval-decided notification, and the operations probes."""
import datetime as dt

import pytest

from engine.wftables import notifications as notes_table
from tests.conftest import FIXTURES, ROOT
from tests.platform_ import loopback
from tests.platform_.loopback import closed_port, make_crm

frozen_clock = loopback.frozen_clock          # a fixture

T0 = dt.datetime(2026, 11, 23, 2, 0, 0)          # Monday 10:00 in Shanghai, naive UTC
STAFF = {"agent": (["service_agent"], {}), "lead": (["service_manager"], {}), "sam": (["staff"], {})}


@pytest.fixture
def desk(monkeypatch, tmp_path):
    """The default pack on SQLite with a service agent, a service lead and a staff user."""
    return make_crm(monkeypatch, tmp_path, f"sqlite:///{tmp_path}/desk.db", ROOT / "config", users=STAFF)


def p1_ticket(crm, subject="生产线停机 Line 3 is down"):
    cust = crm.ok("admin", "POST", "/customer", {"name": "宁波海天贸易有限公司", "email": "ops@haitian.example.cn"}, 201)
    return crm.ok("admin", "POST", "/ticket", {"subject": subject, "customer": cust["id"], "priority": "p1"}, 201)


def sla_by_target(crm, who, tid):
    items = crm.ok(who, "GET", f"/ticket/{tid}/sla")["items"]
    for it in items:
        assert {"name", "target", "due_at", "status"} <= set(it)
    return {it["target"]: it for it in items}


def notes_of(crm, who):
    return crm.ok(who, "GET", "/notifications?per_page=200")


def timers_of(crm):
    return crm.rows("select id, name, status, fired_at from sys_timer order by id")


# ---- timers ---------------------------------------------------------------------------------------
def test_e3_timers_run_fires_the_warning_then_the_breach_once_each(desk, frozen_clock):
    frozen_clock(T0)
    t = p1_ticket(desk)
    assert t["assignee"] == desk.users["agent"]                 # C8: round robin to the only agent
    by = sla_by_target(desk, "admin", t["id"])
    assert by["response"]["status"] == by["resolution"]["status"] == "running"
    assert by["response"]["due_at"] == "2026-11-23T11:00:00+08:00"

    out = desk.cli("timers", "run", "--now", "2026-11-23T10:50:00+08:00")
    assert out.strip().splitlines()[-1] == "fired 1"           # the 25 % warning at 10:45
    [warn] = notes_of(desk, "agent")["items"]
    assert warn["text"] == f"SLA warning: ticket {t['code']} is close to its deadline"
    assert warn["record"] == {"entity": "ticket", "id": t["id"]} and warn["read"] is False
    assert notes_of(desk, "lead")["total"] == 0

    at = "2026-11-23T11:02:00+08:00"
    out = desk.cli("timers", "run", "--now", at)
    assert out.strip().splitlines()[-1] == "fired 1"           # the breach at 11:00
    frozen_clock(T0 + dt.timedelta(minutes=65))
    by = sla_by_target(desk, "admin", t["id"])
    assert by["response"]["status"] == "breached" and by["resolution"]["status"] == "running"
    breach = f"SLA breached: ticket {t['code']} {t['subject']}"
    assert [n["text"] for n in notes_of(desk, "lead")["items"]] == [breach]
    assert [n["text"] for n in notes_of(desk, "agent")["items"]] == [breach, warn["text"]]
    timers = timers_of(desk)

    for _ in range(2):                               # the same instant again: nothing fires twice
        assert desk.cli("timers", "run", "--now", at).strip().splitlines()[-1] == "fired 0"
    assert sla_by_target(desk, "admin", t["id"]) == by
    assert notes_of(desk, "lead")["total"] == 1 and notes_of(desk, "agent")["total"] == 2
    assert notes_of(desk, "sam")["total"] == 0 and notes_of(desk, "admin")["total"] == 0
    assert timers_of(desk) == timers


def test_e3_timers_run_refuses_a_garbage_instant_and_fires_nothing(desk, frozen_clock):
    frozen_clock(T0)
    p1_ticket(desk)
    before = timers_of(desk)
    for bad in ("garbage", "2026-13-45T10:00", "tomorrow 9am", "11:02"):
        r = desk.app.test_cli_runner().invoke(args=["crm", "timers", "run", "--now", bad])
        assert r.exit_code != 0, (bad, r.output)
        assert "is not an ISO 8601 date-time" in r.output and "fired" not in r.output
    assert timers_of(desk) == before
    assert desk.rows("select count(*) as n from sys_notification") == [{"n": 0}]


def test_e3_timers_run_refuses_an_empty_instant(desk, frozen_clock):
    """`--now ""` (an unset shell variable) is refused, not taken as "now"."""
    frozen_clock(T0)
    p1_ticket(desk)
    frozen_clock(T0 + dt.timedelta(days=3))          # the real clock would find the breach due
    before = timers_of(desk)
    r = desk.app.test_cli_runner().invoke(args=["crm", "timers", "run", "--now", ""])
    assert timers_of(desk) == before, r.output
    assert r.exit_code != 0 and "ISO 8601" in r.output


def test_e3_a_deleted_ticket_has_no_sla_and_its_timers_never_fire(desk, frozen_clock):
    frozen_clock(T0)
    t = p1_ticket(desk)
    assert desk.call("admin", "DELETE", f"/ticket/{t['id']}")[0] == 204
    s, e = desk.call("admin", "GET", f"/ticket/{t['id']}/sla")
    assert s == 404 and e["error"]["code"] == "not_found"
    assert desk.cli("timers", "run", "--now", "2026-11-30T10:00:00+08:00").strip().splitlines()[-1] == "fired 0"
    assert desk.rows("select count(*) as n from sys_notification") == [{"n": 0}]


# ---- calendars --------------------------------------------------------------------------------------
def test_a10_calendar_due_prints_the_instant_and_refuses_bad_input(desk):
    out = desk.cli("calendar", "due", "standard", "--from", "2026-11-20T17:30", "--hours", "1")
    last = out.strip().splitlines()[-1]
    assert last == "2026-11-23T09:30:00+08:00"                  # Friday 17:30 + 1 h → Monday 09:30
    assert desk.cli("calendar", "due", "standard", "--from", "2026-11-20T09:30Z", "--hours", "1").strip() == \
        "2026-11-23T09:30:00+08:00"                             # the same instant given in UTC
    assert desk.cli("calendar", "due", "standard", "--from", "2026-11-23T11:00", "--hours", "2").strip() == \
        "2026-11-23T14:00:00+08:00"                             # over lunch
    bad = [
        (["nope", "--from", "2026-11-20T17:30", "--hours", "1"], "no calendar 'nope'"),
        (["standard", "--from", "2026-11-20T17:30", "--hours", "1", "--days", "1"],
         "exactly one of --hours and --days"),
        (["standard", "--from", "2026-11-20T17:30"], "exactly one of --hours and --days"),
        (["standard", "--from", "Friday evening", "--hours", "1"], "is not an ISO 8601 date-time"),
        (["standard", "--from", "2026-11-20T17:30", "--hours", "-2"], "must be positive"),
        (["standard", "--from", "2026-11-20T17:30", "--hours", "lots"], "lots"),
    ]
    runner = desk.app.test_cli_runner()
    for args, message in bad:
        r = runner.invoke(args=["crm", "calendar", "due", *args])
        assert r.exit_code != 0, (args, r.output)
        assert message in r.output, (args, r.output)
        assert "+08:00" not in r.output


# ---- GET …/sla ----------------------------------------------------------------------------------
def test_e3_sla_endpoint_for_admin_and_staff_404_when_missing(desk, frozen_clock):
    frozen_clock(T0)
    t = p1_ticket(desk)
    admin = sla_by_target(desk, "admin", t["id"])
    assert sla_by_target(desk, "sam", t["id"]) == admin        # a staff user reads the same clocks
    assert set(admin) == {"response", "resolution"}
    assert {it["name"] for it in admin.values()} == {"ticket_service"}
    assert admin["resolution"]["due_at"] == "2026-11-24T10:00:00+08:00"      # 8 working hours
    assert desk.call("sam", "GET", "/ticket/999999/sla")[0] == 404
    assert desk.call("admin", "GET", "/nothing/1/sla")[0] == 404
    assert desk.call(None, "GET", f"/ticket/{t['id']}/sla")[0] == 401
    cust = desk.ok("admin", "GET", f"/ticket/{t['id']}")["customer"]
    assert desk.ok("admin", "GET", f"/customer/{cust}/sla") == {"items": []}

    # waiting on the customer pauses the resolution clock (no due_at); the response was met
    desk.ok("agent", "POST", f"/ticket/{t['id']}/transitions/start", {})
    desk.ok("agent", "POST", f"/ticket/{t['id']}/transitions/wait_customer", {"comment": "logs, please"})
    by = sla_by_target(desk, "sam", t["id"])
    assert by["response"]["status"] == "met"
    assert by["resolution"]["status"] == "paused" and by["resolution"]["due_at"] is None


# ---- notifications ------------------------------------------------------------------------------
@pytest.fixture
def inbox(monkeypatch, tmp_path, db_url):
    crm = make_crm(monkeypatch, tmp_path, db_url, FIXTURES / "mini",
                   users={"amy": (["staff"], {}), "bob": (["staff"], {})})
    ids = {"amy": [], "bob": []}
    with crm.rt.engine.begin() as conn:
        for who, n in (("amy", 3), ("bob", 2)):
            for i in range(n):
                ids[who].append(conn.execute(notes_table.insert().values(
                    user_id=crm.users[who], entity="account", record_id=i + 1, message=f"{who} note {i}",
                    created_at=T0 + dt.timedelta(minutes=i))).inserted_primary_key[0])
    crm.note_ids = ids
    return crm


def test_a10_notifications_list_only_the_acting_users_own_paged(inbox):
    amy = inbox.ok("amy", "GET", "/notifications")
    assert amy["total"] == 3 and amy["unread"] == 3
    assert [n["text"] for n in amy["items"]] == ["amy note 2", "amy note 1", "amy note 0"]      # newest first
    assert [n["id"] for n in amy["items"]] == inbox.note_ids["amy"][::-1]
    assert all(n["read"] is False and n["record"]["entity"] == "account" for n in amy["items"])
    assert {n["text"] for n in inbox.ok("bob", "GET", "/notifications")["items"]} == {"bob note 0", "bob note 1"}
    assert inbox.ok("admin", "GET", "/notifications") == {"items": [], "total": 0, "page": 1, "per_page": 50,
                                                          "unread": 0}
    p1 = inbox.ok("amy", "GET", "/notifications?per_page=2")
    p2 = inbox.ok("amy", "GET", "/notifications?per_page=2&page=2")
    assert [len(p1["items"]), len(p2["items"]), p1["total"], p2["total"]] == [2, 1, 3, 3]
    assert {n["id"] for n in p1["items"] + p2["items"]} == set(inbox.note_ids["amy"])
    assert inbox.ok("amy", "GET", "/notifications?per_page=2&page=9")["items"] == []
    assert inbox.ok("amy", "GET", "/notifications?per_page=200")["total"] == 3
    for q in ("per_page=0", "per_page=500", "per_page=-1", "page=abc", "page=0", "per_page=1.5", "page=100001"):
        s, e = inbox.call("amy", "GET", f"/notifications?{q}")
        assert s == 422 and e["error"]["code"] == "validation_failed", (q, s, e)
    assert inbox.call(None, "GET", "/notifications")[0] == 401


def test_a10_marking_read_touches_only_the_given_ids_of_the_acting_user(inbox):
    amy, bob = inbox.note_ids["amy"], inbox.note_ids["bob"]
    r = inbox.ok("amy", "POST", "/notifications/read", {"ids": [amy[0], bob[0]]})
    assert r == {"marked": 1, "unread": 2}
    assert inbox.ok("bob", "GET", "/notifications")["unread"] == 2        # bob's note is untouched
    listing = inbox.ok("amy", "GET", "/notifications")
    assert {n["id"]: n["read"] for n in listing["items"]} == {amy[0]: True, amy[1]: False, amy[2]: False}
    unread = inbox.ok("amy", "GET", "/notifications?unread=1")
    assert unread["total"] == 2 and {n["id"] for n in unread["items"]} == {amy[1], amy[2]}
    assert inbox.ok("amy", "POST", "/notifications/read", {"ids": [amy[0]]}) == {"marked": 0, "unread": 2}
    assert inbox.ok("amy", "POST", "/notifications/read", {"ids": []}) == {"marked": 0, "unread": 2}

    for bad in (["1"], [True], [2 ** 63], [0], [-5], [1.0], [None], "1", 7, {"id": 1}, [amy[1], "x"]):
        s, e = inbox.call("amy", "POST", "/notifications/read", {"ids": bad})
        assert s == 422 and set(e["error"]["fields"]) == {"ids"}, (bad, s, e)
    assert inbox.ok("amy", "GET", "/notifications")["unread"] == 2                     # nothing changed
    assert inbox.call("amy", "POST", "/notifications/read", data="[1, 2]", content_type="application/json")[0] == 400
    assert inbox.ok("amy", "GET", "/notifications")["unread"] == 2

    assert inbox.ok("amy", "POST", "/notifications/read") == {"marked": 2, "unread": 0}   # no ids: all of mine
    assert inbox.ok("bob", "GET", "/notifications")["unread"] == 2
    rows = inbox.rows("select user_id, read_at from sys_notification order by id")
    assert [(r["user_id"], r["read_at"] is not None) for r in rows] == \
        [(inbox.users["amy"], True)] * 3 + [(inbox.users["bob"], False)] * 2


def test_a10_ids_beyond_the_column_range_are_refused_not_a_server_error(inbox, request):
    """Ids the API accepts as whole numbers (the route's int, the read body's < 2**63) but no row can have."""
    huge = 2 ** 62
    s, body = inbox.call("amy", "POST", "/notifications/read", {"ids": [huge]})
    assert s in (200, 422) and (s == 422 or body == {"marked": 0, "unread": 3}), (s, body)
    assert inbox.call("amy", "GET", f"/account/{huge}/sla")[0] == 404
    assert inbox.call("admin", "DELETE", f"/webhooks/{huge}")[0] == 404
    for kind in ("webhook", "timer"):
        assert inbox.call("admin", "POST", f"/admin/jobs/{kind}/{huge}/retry")[0] in (404, 409)
    assert inbox.ok("amy", "GET", "/notifications")["unread"] == 3


# ---- approval decided ----------------------------------------------------------------------------
@pytest.fixture
def sales(monkeypatch, tmp_path):
    return make_crm(monkeypatch, tmp_path, f"sqlite:///{tmp_path}/sales.db", ROOT / "config",
                    users={"boss": (["sales_manager"], {}), "rep": (["sales"], {}),
                           "rep_zh": (["sales"], {"language": "zh"})})


def contract_in_approval(crm, who, amount=50000):
    cust = crm.ok(who, "POST", "/customer", {"name": "杭州尚祈科技", "email": "buy@shangqi.example.cn"}, 201)
    k = crm.ok(who, "POST", "/contract", {"name": "年度维保合同", "customer": cust["id"], "amount": amount,
                                          "start_date": "2026-12-01", "end_date": "2027-11-30"}, 201)
    crm.ok(who, "POST", f"/contract/{k['id']}/transitions/submit", {})
    r = crm.ok(who, "POST", f"/contract/{k['id']}/transitions/approve", {}, 202)
    assert r["status"] == "pending_approval"
    [task] = [a for a in crm.ok("boss", "GET", "/approvals")["items"] if a["record_id"] == k["id"]]
    return k, task


def test_a10_the_requester_hears_when_a_sales_manager_decides(sales):
    k, task = contract_in_approval(sales, "rep")
    assert sales.ok("rep", "GET", "/notifications")["total"] == 0              # nothing before the decision
    assert sales.ok("boss", "POST", f"/approvals/{task['id']}/approve", {"comment": "ok"})["status"] == "approved"
    assert sales.ok("rep", "GET", f"/contract/{k['id']}")["status"] == "approved"
    [n] = sales.ok("rep", "GET", "/notifications")["items"]
    assert n["text"] == f"Your request “Approve” for Contract #{k['id']} was approved."
    assert n["record"] == {"entity": "contract", "id": k["id"]} and n["read"] is False
    for other in ("boss", "rep_zh", "admin"):
        assert sales.ok(other, "GET", "/notifications")["total"] == 0

    k2, task2 = contract_in_approval(sales, "rep_zh")
    s, e = sales.call("boss", "POST", f"/approvals/{task2['id']}/reject", {})
    assert s == 422 and "comment" in e["error"]["fields"]
    assert sales.ok("rep_zh", "GET", "/notifications")["total"] == 0          # a refused decision tells no one
    sales.ok("boss", "POST", f"/approvals/{task2['id']}/reject", {"comment": "金额需复核"})
    assert sales.ok("rep_zh", "GET", f"/contract/{k2['id']}")["status"] == "draft"
    [n2] = sales.ok("rep_zh", "GET", "/notifications")["items"]
    assert n2["text"] == f"您提交的“审批”申请（合同 #{k2['id']}）已被驳回。"
    assert sales.ok("rep", "GET", "/notifications")["total"] == 1


# ---- operations probes ----------------------------------------------------------------------------
def test_ops_healthz_and_readyz(monkeypatch, tmp_path, config_copy):
    ok = make_crm(monkeypatch, tmp_path, f"sqlite:///{tmp_path}/ok.db", FIXTURES / "mini")
    c = ok.app.test_client()
    r = c.get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"status": "ok"}
    r = c.get("/readyz")
    assert r.status_code == 200
    assert r.get_json() == {"status": "ready", "checks": {"database": "ok", "config": "ok"}}

    down = make_crm(monkeypatch, tmp_path, f"sqlite:///{tmp_path}/down.db", FIXTURES / "mini",
                    overrides={"REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"})
    c = down.app.test_client()
    assert c.get("/healthz").status_code == 200                     # the process is up …
    r = c.get("/readyz")                                            # … but not ready without its Redis
    assert r.status_code == 503
    body = r.get_json()
    assert body["status"] == "not ready" and body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error: ")


def test_ops_readyz_503_when_the_config_does_not_load(monkeypatch, tmp_path, config_copy):
    cfg = config_copy("mini")
    acc = cfg / "entities" / "account.yaml"
    acc.write_text(acc.read_text().replace("type: email", "type: emial"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/bad.db")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("SECRET_KEY", "x")
    monkeypatch.delenv("REDIS_URL", raising=False)
    from app import create_app
    c = create_app({"TESTING": True}).test_client()
    r = c.get("/healthz")
    assert (r.status_code, r.get_json(silent=True)) == (200, {"status": "ok"})       # the process is up
    r = c.get("/readyz")
    assert r.status_code == 503
    body = r.get_json(silent=True)
    assert body["status"] == "not ready" and body["checks"]["config"].startswith("error")
