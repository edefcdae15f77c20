"""Outgoing webhooks (A10 REST API + webhooks, I3 integration points): subscriptions managed by
admins, one signed delivery per subscribed record event through the transactional outbox, retries
with backoff, dead rows and the admin's re-run — against a real HTTP receiver on 127.0.0.1."""
import datetime as dt
import json
import time

import pytest

from engine.automation import outbox as outbox_mod
from platform_ import delivery
from tests.conftest import FIXTURES
from tests.platform_ import loopback
from tests.platform_.loopback import closed_port, make_crm

receiver, frozen_clock = loopback.receiver, loopback.frozen_clock          # fixtures

SECRET = "whsec-0123456789"
T0 = dt.datetime(2026, 11, 23, 2, 0, 0)          # Monday 10:00 in Shanghai, naive UTC


@pytest.fixture
def crm(monkeypatch, tmp_path, db_url):
    """The mini config (account; deal with the deal_flow workflow) on SQLite and PostgreSQL."""
    return make_crm(monkeypatch, tmp_path, db_url, FIXTURES / "mini", users={"sam": (["staff"], {})})


@pytest.fixture
def lite(monkeypatch, tmp_path):
    """The same on SQLite only (behaviour that does not depend on the database)."""
    return make_crm(monkeypatch, tmp_path, f"sqlite:///{tmp_path}/hooks.db", FIXTURES / "mini",
                    users={"sam": (["staff"], {})})


def subscribe(crm, url, events, secret=SECRET):
    w = crm.ok("admin", "POST", "/webhooks", {"url": url, "events": events, "secret": secret}, 201)
    assert isinstance(w["id"], int)
    return w


def account(crm, name="宁波海天贸易有限公司", who="admin"):
    return crm.ok(who, "POST", "/account", {"name": name, "email": "buy@haitian.example.cn"}, 201)


# ---- managing subscriptions -----------------------------------------------------------------------
def test_a10_admin_creates_lists_and_deletes_webhooks_staff_cannot(lite, receiver):
    w = subscribe(lite, receiver.url(), ["account.updated", "account.created", "account.created"])
    assert w == {"id": w["id"], "url": receiver.url(), "events": ["account.created", "account.updated"],
                 "active": True}
    items = lite.ok("admin", "GET", "/webhooks")["items"]
    assert [(i["id"], i["url"], i["events"], i["active"]) for i in items] == \
        [(w["id"], receiver.url(), ["account.created", "account.updated"], True)]
    assert all("secret" not in i for i in items) and SECRET not in json.dumps(items)   # never shown again

    s, e = lite.call("sam", "POST", "/webhooks", {"url": receiver.url("/sam"), "events": ["account.created"],
                                                  "secret": SECRET})
    assert s == 403 and e["error"]["code"] == "forbidden"
    assert lite.call("sam", "GET", "/webhooks")[0] == 403
    assert lite.call("sam", "DELETE", f"/webhooks/{w['id']}")[0] == 403
    assert lite.call(None, "GET", "/webhooks")[0] == 401
    assert [i["id"] for i in lite.ok("admin", "GET", "/webhooks")["items"]] == [w["id"]]   # nothing created/removed

    assert lite.call("admin", "DELETE", f"/webhooks/{w['id']}")[0] == 204
    assert lite.ok("admin", "GET", "/webhooks")["items"] == []
    s, e = lite.call("admin", "DELETE", f"/webhooks/{w['id']}")
    assert s == 404 and e["error"]["code"] == "not_found"
    account(lite)
    assert lite.outbox() == []                       # a removed subscription fans out nothing
    assert receiver.hits == []


BAD = [
    ({"url": "ftp://127.0.0.1/hook"}, "url"),
    ({"url": "127.0.0.1:8080/hook"}, "url"),
    ({"url": None}, "url"),
    ({"events": ["nope.created"]}, "events"),                 # unknown entity
    ({"events": ["account.exploded"]}, "events"),             # unknown event
    ({"events": ["account.created", 7]}, "events"),
    ({"events": "account.created"}, "events"),                # not a list
    ({"events": []}, "events"),
    ({"secret": "short"}, "secret"),
    ({"secret": "x" * 256}, "secret"),
    ({"secret": 1234567890}, "secret"),
]


def test_a10_bad_webhook_input_is_422_naming_the_field_and_creates_nothing(lite, receiver):
    good = {"url": receiver.url(), "events": ["account.created"], "secret": SECRET}
    for change, field in BAD:
        s, e = lite.call("admin", "POST", "/webhooks", {**good, **change})
        assert s == 422, (change, s, e)
        assert e["error"]["code"] == "validation_failed"
        assert set(e["error"]["fields"]) == {field}, (change, e)
    s, e = lite.call("admin", "POST", "/webhooks", {"url": "mailto:x@y", "events": {"a": 1}})
    assert s == 422 and set(e["error"]["fields"]) == {"url", "events", "secret"}
    s, e = lite.call("admin", "POST", "/webhooks", data="not json", content_type="application/json")
    assert s == 400
    assert lite.ok("admin", "GET", "/webhooks")["items"] == []
    account(lite)
    assert lite.outbox() == [] and receiver.hits == []


# ---- deliveries -------------------------------------------------------------------------------------
def test_a10_i3_each_subscribed_event_is_delivered_once_signed_and_only_by_the_dispatcher(crm, receiver):
    w = subscribe(crm, receiver.url(), ["account.created", "account.updated", "account.deleted", "deal.transition"])
    other = subscribe(crm, receiver.url("/other"), ["account.deleted"], secret="another-secret-99")

    acc = account(crm)
    # the request wrote the row and returned: nothing left the process yet (TESTING: no runner)
    assert receiver.hits == []
    rows = crm.outbox()
    assert [(r["kind"], r["entity"], r["record_id"], r["status"], r["attempts"]) for r in rows] == \
        [("webhook", "account", acc["id"], "pending", 0)]
    assert crm.dispatch() == {"sent": 1, "retry": 0, "dead": 0}
    [hit] = receiver.at()
    assert hit.method == "POST" and hit.answered == 200
    assert hit.json() == {"event": "account.created", "entity": "account", "id": acc["id"], "record": acc}
    assert hit.signed_with(SECRET) and not hit.signed_with("another-secret-99")
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["x-crm-event"] == "account.created"
    assert hit.headers["x-crm-delivery"] == str(rows[0]["id"])
    assert crm.dispatch() == {"sent": 0, "retry": 0, "dead": 0}       # sent once, not again
    assert len(receiver.at()) == 1

    upd = crm.ok("admin", "PATCH", f"/account/{acc['id']}", {"name": "Haitian Trading", "version": acc["version"]})
    deal = crm.ok("admin", "POST", "/deal", {"name": "水泵改造", "account": acc["id"],
                                             "lines": [{"item": "pump", "quantity": 2, "price": 500}]}, 201)
    won = crm.ok("admin", "POST", f"/deal/{deal['id']}/transitions/win", {})["record"]
    spare = account(crm, "Spare Co")
    assert crm.call("admin", "DELETE", f"/account/{spare['id']}")[0] == 204
    assert len(receiver.at()) == 1 and receiver.at("/other") == []   # still nothing until dispatch

    crm.dispatch()
    got = [h.json() for h in receiver.at()]
    assert [(b["event"], b["entity"], b["id"]) for b in got] == [
        ("account.created", "account", acc["id"]), ("account.updated", "account", acc["id"]),
        ("deal.transition", "deal", deal["id"]), ("account.created", "account", spare["id"]),
        ("account.deleted", "account", spare["id"])]
    assert got[1]["record"] == upd and got[1]["record"]["name"] == "Haitian Trading"
    assert got[2]["record"] == won and got[2]["record"]["stage"] == "won"
    assert got[4]["record"]["id"] == spare["id"] and got[4]["record"]["name"] == "Spare Co"
    for h in receiver.at():
        assert set(h.json()) == {"event", "entity", "id", "record"}
        assert h.signed_with(SECRET)
        assert h.headers["x-crm-event"] == h.json()["event"]
    [o] = receiver.at("/other")
    assert o.json()["event"] == "account.deleted" and o.signed_with("another-secret-99")
    assert not o.signed_with(SECRET)
    # every row went out exactly once, each with its own delivery id
    assert {r["status"] for r in crm.outbox()} == {"sent"}
    ids = [h.headers["x-crm-delivery"] for h in receiver.hits]
    assert len(ids) == len(set(ids)) == len(crm.outbox()) == 6
    assert crm.dispatch() == {"sent": 0, "retry": 0, "dead": 0} and len(receiver.hits) == 6
    assert crm.ok("admin", "GET", "/admin/jobs") == {"items": [], "total": 0}
    assert w["id"] != other["id"]


def test_a10_unsubscribed_events_send_nothing(lite, receiver):
    subscribe(lite, receiver.url(), ["deal.transition"])
    acc = account(lite)
    lite.ok("admin", "PATCH", f"/account/{acc['id']}", {"revenue": 10, "version": acc["version"]})
    deal = lite.ok("admin", "POST", "/deal", {"name": "D", "account": acc["id"]}, 201)
    lite.ok("admin", "PATCH", f"/deal/{deal['id']}", {"probability": 50, "version": deal["version"]})
    assert lite.outbox() == []
    assert lite.dispatch() == {"sent": 0, "retry": 0, "dead": 0}
    assert receiver.hits == []
    s, _ = lite.call("admin", "POST", f"/deal/{deal['id']}/transitions/lose", {})    # a comment is required
    assert s == 422 and lite.outbox() == []                              # a refused transition sends nothing
    lite.call("admin", "POST", f"/deal/{deal['id']}/transitions/lose", {"comment": "no budget"})
    lite.dispatch()
    assert [h.json()["event"] for h in receiver.hits] == ["deal.transition"]
    assert receiver.hits[0].json()["record"]["stage"] == "lost"


def test_a10_i3_failing_receiver_is_retried_with_backoff_listed_and_rerun_by_an_admin(crm, receiver, frozen_clock):
    frozen_clock(T0)
    hook = subscribe(crm, receiver.url(), ["account.created"])
    receiver.status = 500
    acc = account(crm)
    assert crm.dispatch() == {"sent": 0, "retry": 1, "dead": 0}
    [row] = crm.outbox()
    assert row["status"] == "pending" and row["attempts"] == 1
    assert "500" in row["last_error"] and receiver.url() in row["last_error"]
    assert row["next_at"] == T0 + dt.timedelta(seconds=10)
    assert len(receiver.hits) == 1 and receiver.hits[0].answered == 500

    jobs = crm.ok("admin", "GET", "/admin/jobs")
    assert jobs["total"] == 1
    [item] = jobs["items"]
    assert (item["kind"], item["id"], item["status"], item["attempts"], item["entity"], item["record_id"]) == \
        ("webhook", row["id"], "pending", 1, "account", acc["id"])
    assert "HTTP 500" in item["error"]
    assert crm.call("sam", "GET", "/admin/jobs")[0] == 403
    out = crm.cli("jobs", "failed")
    assert f"webhook #{row['id']} pending after 1 attempt(s): " in out and "HTTP 500" in out
    assert out.strip().splitlines()[-1] == "1 failed"

    log = crm.ok("admin", "GET", f"/webhooks/{hook['id']}/deliveries")          # the subscription's own log
    assert log["total"] == 1
    assert {k: log["items"][0][k] for k in ("id", "event", "record_id", "status", "attempts")} == \
        {"id": row["id"], "event": "account.created", "record_id": acc["id"], "status": "pending", "attempts": 1}
    assert "HTTP 500" in log["items"][0]["error"]
    assert crm.call("sam", "GET", f"/webhooks/{hook['id']}/deliveries")[0] == 403
    assert crm.call("admin", "GET", f"/webhooks/{hook['id'] + 1}/deliveries")[0] == 404

    crm.dispatch()                                   # before its backoff: not sent again
    assert len(receiver.hits) == 1
    receiver.status = 200                            # the receiver recovers
    assert crm.call("sam", "POST", f"/admin/jobs/webhook/{row['id']}/retry")[0] == 403
    assert crm.outbox()[0]["attempts"] == 1          # the staff user's retry changed nothing
    assert crm.ok("admin", "POST", f"/admin/jobs/webhook/{row['id']}/retry") == \
        {"retried": True, "kind": "webhook", "id": row["id"]}
    assert receiver.hits[1:] == []                   # the retry only schedules; the dispatcher sends
    assert crm.dispatch() == {"sent": 1, "retry": 0, "dead": 0}
    assert [h.answered for h in receiver.hits] == [500, 200]
    first, second = receiver.hits
    assert first.body == second.body and second.signed_with(SECRET)
    assert first.headers["x-crm-delivery"] == second.headers["x-crm-delivery"] == str(row["id"])
    [row] = crm.outbox()
    assert row["status"] == "sent" and row["last_error"] is None and row["sent_at"] == T0
    assert crm.dispatch()["sent"] == 0 and len(receiver.hits) == 2
    assert crm.ok("admin", "GET", "/admin/jobs")["total"] == 0
    [entry] = crm.ok("admin", "GET", f"/webhooks/{hook['id']}/deliveries")["items"]
    assert (entry["status"], entry["attempts"], entry["error"]) == ("sent", 1, None) and entry["sent_at"]
    assert crm.cli("jobs", "failed").strip().splitlines()[-1] == "0 failed"

    s, e = crm.call("admin", "POST", f"/admin/jobs/webhook/{row['id']}/retry")
    assert s == 409 and e["error"]["code"] == "conflict"          # a sent row is not re-sent
    assert crm.call("admin", "POST", f"/admin/jobs/bogus/{row['id']}/retry")[0] == 404
    assert crm.outbox()[0]["status"] == "sent" and len(receiver.hits) == 2


def test_i3_backoff_doubles_then_the_row_is_dead_after_max_attempts(lite, receiver, frozen_clock):
    frozen_clock(T0)
    subscribe(lite, receiver.url(), ["account.created"])
    receiver.status = 503
    account(lite)
    now, gaps = T0, []
    for attempt in range(1, outbox_mod.MAX_ATTEMPTS + 1):
        counts = lite.dispatch()
        [row] = lite.outbox()
        assert row["attempts"] == attempt and len(receiver.hits) == attempt
        if attempt < outbox_mod.MAX_ATTEMPTS:
            assert counts == {"sent": 0, "retry": 1, "dead": 0} and row["status"] == "pending"
            gaps.append(int((row["next_at"] - now).total_seconds()))
            lite.dispatch()                          # not yet due: nothing sent
            assert len(receiver.hits) == attempt
            now = row["next_at"]
            frozen_clock(now)
        else:
            assert counts == {"sent": 0, "retry": 0, "dead": 1} and row["status"] == "dead"
    assert gaps == [10, 20, 40, 80, 160]
    assert "HTTP 503" in row["last_error"]

    frozen_clock(now + dt.timedelta(days=2))         # a dead row is never sent again by itself
    assert lite.dispatch() == {"sent": 0, "retry": 0, "dead": 0}
    assert len(receiver.hits) == outbox_mod.MAX_ATTEMPTS
    [item] = lite.ok("admin", "GET", "/admin/jobs")["items"]
    assert (item["status"], item["attempts"]) == ("dead", outbox_mod.MAX_ATTEMPTS)
    out = lite.cli("jobs", "failed")
    assert f"webhook #{row['id']} dead after {outbox_mod.MAX_ATTEMPTS} attempt(s)" in out

    receiver.status = 200
    assert f"webhook #{row['id']} will run again" in lite.cli("jobs", "retry", "webhook", str(row["id"]))
    assert len(receiver.hits) == outbox_mod.MAX_ATTEMPTS        # the CLI retry only schedules
    assert lite.dispatch() == {"sent": 1, "retry": 0, "dead": 0}
    assert lite.outbox()[0]["status"] == "sent" and receiver.hits[-1].answered == 200
    assert "is not waiting to be re-run" in lite.cli("jobs", "retry", "webhook", str(row["id"]), code=1)
    assert "is not waiting to be re-run" in lite.cli("jobs", "retry", "webhook", "999999", code=1)


def test_i3_a_receiver_that_is_down_never_fails_the_users_request(crm):
    url = f"http://127.0.0.1:{closed_port()}/hook"
    subscribe(crm, url, ["account.created", "account.updated"])
    started = time.monotonic()
    acc = account(crm)
    upd = crm.ok("admin", "PATCH", f"/account/{acc['id']}", {"revenue": 5, "version": acc["version"]})
    assert time.monotonic() - started < 5
    assert upd["version"] == 2 and crm.ok("admin", "GET", f"/account/{acc['id']}")["revenue"] == 5
    assert [(r["status"], r["attempts"]) for r in crm.outbox()] == [("pending", 0), ("pending", 0)]
    assert crm.dispatch() == {"sent": 0, "retry": 2, "dead": 0}      # dispatch itself does not raise either
    for r in crm.outbox():
        assert r["status"] == "pending" and r["attempts"] == 1 and "could not be reached" in r["last_error"]


def test_i3_timers_run_sends_the_waiting_outbox_without_redis(lite, receiver):
    subscribe(lite, receiver.url(), ["account.created"])
    acc = account(lite)
    out = lite.cli("timers", "run")
    lines = out.strip().splitlines()
    assert "outbox: sent 1, retrying 0, failed 0" in lines and lines[-1].startswith("fired ")
    [hit] = receiver.hits
    assert hit.json()["id"] == acc["id"] and hit.signed_with(SECRET)
    assert lite.cli("timers", "run").strip().splitlines() == [lines[-1]]     # nothing more to send


def test_i3_two_dispatchers_at_once_send_each_row_exactly_once(crm, receiver):
    """Two workers draining the same outbox: every row is claimed by one of them only."""
    import threading
    subscribe(crm, receiver.url(), ["account.created"])
    made = [account(crm, f"Account {i}")["id"] for i in range(24)]
    gate, results, errors = threading.Barrier(2), [], []

    def drain():
        try:
            gate.wait(5)
            results.append(delivery.dispatch(crm.rt, crm.settings(), limit=2))     # small claims: interleaved
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=drain) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sum(r["sent"] for r in results) == 24 and sum(r["retry"] + r["dead"] for r in results) == 0
    assert sorted(h.json()["id"] for h in receiver.hits) == sorted(made)
    assert len({h.headers["x-crm-delivery"] for h in receiver.hits}) == 24
    assert {(r["status"], r["attempts"]) for r in crm.outbox()} == {("sent", 1)}


def test_i3_deleting_a_webhook_stops_its_queued_deliveries(lite, receiver):
    w = subscribe(lite, receiver.url(), ["account.created"])
    account(lite)                                    # a delivery waits in the outbox
    assert lite.call("admin", "DELETE", f"/webhooks/{w['id']}")[0] == 204
    lite.dispatch()
    assert receiver.hits == [], [h.signed_with("") for h in receiver.hits]


def test_a10_private_addresses_can_be_denied(tmp_path):
    """CRM_WEBHOOK_PRIVATE=deny: a delivery to an inside address fails with the reason, sends nothing."""
    from platform_.delivery import private_target, send_webhook
    assert private_target("http://127.0.0.1:9/x") == "127.0.0.1"
    assert private_target("http://10.1.2.3/x") == "10.1.2.3"
    assert private_target("http://169.254.169.254/latest") == "169.254.169.254"
    row = {"id": 1, "payload": {"url": "http://127.0.0.1:9/hook", "secret": "s", "body": {"event": "x.created"}}}
    with pytest.raises(RuntimeError, match="CRM_WEBHOOK_PRIVATE=deny"):
        send_webhook(None, row, {"CRM_WEBHOOK_PRIVATE": "deny"})
