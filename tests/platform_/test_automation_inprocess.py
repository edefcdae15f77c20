"""The in-process job runner (A10/I3 webhooks without Redis, E3 SLA timers, DESIGN "Operations"):
with CRM_BACKGROUND on and no REDIS_URL, a daemon thread of the web process sends the outbox right
after the request that wrote it and sweeps due timers — never inside the request, and never for a
transaction that rolled back."""
import datetime as dt
import time
import types

import pytest

from engine.automation import webhooks as webhooks_mod
from engine.errors import ValidationFailed
from tests.conftest import FIXTURES, ROOT
from tests.platform_ import loopback
from tests.platform_.loopback import make_crm

receiver, frozen_clock = loopback.receiver, loopback.frozen_clock          # fixtures

SECRET = "inproc-secret-42"


def background_crm(monkeypatch, tmp_path, config_dir, sweep_seconds, users=None):
    crm = make_crm(monkeypatch, tmp_path, f"sqlite:///{tmp_path}/bg.db", config_dir, users=users,
                   overrides={"CRM_BACKGROUND": True, "CRM_SWEEP_SECONDS": sweep_seconds})
    assert type(crm.app.extensions["crm_jobs"]).__name__ == "InProcessJobs"
    return crm


def quiet(crm):
    """The runner thread cannot be stopped: point it at nothing and let it sleep."""
    jobs = crm.app.extensions["crm_jobs"]
    jobs.interval = 3600
    crm.app.extensions["crm"] = types.SimpleNamespace(store=None)


@pytest.fixture
def bg(monkeypatch, tmp_path):
    crm = background_crm(monkeypatch, tmp_path, FIXTURES / "mini", 3600)   # only kicks, no periodic sweep
    yield crm
    quiet(crm)


def wait_until(check, seconds=10.0):
    end = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.05)


def test_a10_the_runner_delivers_right_after_the_request_not_inside_it(bg, receiver):
    bg.ok("admin", "POST", "/webhooks", {"url": receiver.url(), "events": ["account.created"], "secret": SECRET}, 201)
    receiver.hold_seconds = 15
    receiver.hold()                                  # the endpoint stalls on the first delivery
    started = time.monotonic()
    acc = bg.ok("admin", "POST", "/account", {"name": "Stall Co", "email": "a@stall.example"}, 201)
    assert time.monotonic() - started < 3            # the user does not wait for the endpoint
    try:
        assert len(receiver.wait_for(1, 10.0)) == 1  # no dispatch call: the runner sent it
        assert bg.outbox()[0]["status"] == "sending"
        started = time.monotonic()                   # while the delivery stalls, the app answers
        assert bg.ok("admin", "GET", f"/account/{acc['id']}")["name"] == "Stall Co"
        assert time.monotonic() - started < 3
    finally:
        receiver.release()
    assert wait_until(lambda: bg.outbox()[0]["status"] == "sent")
    [hit] = receiver.hits
    assert hit.json() == {"event": "account.created", "entity": "account", "id": acc["id"], "record": acc}
    assert hit.signed_with(SECRET)

    other = bg.ok("admin", "POST", "/account", {"name": "Quick Co", "email": "b@quick.example"}, 201)
    hits = receiver.wait_for(2, 10.0)
    assert [h.json()["id"] for h in hits] == [acc["id"], other["id"]]
    assert wait_until(lambda: [r["status"] for r in bg.outbox()] == ["sent", "sent"])


def test_a10_a_rolled_back_change_leaves_no_row_and_sends_nothing(bg, receiver, monkeypatch):
    bg.ok("admin", "POST", "/webhooks", {"url": receiver.url(), "events": ["account.created"], "secret": SECRET}, 201)
    s, e = bg.call("admin", "POST", "/account", {"name": "No Contact Co"})          # the rule wants email|revenue
    assert s == 422 and e["error"]["code"] == "validation_failed"
    assert bg.outbox() == []

    real = webhooks_mod.fan_out

    def fan_out_then_fail(conn, *a, **kw):           # the row is written, then the transaction fails
        n = real(conn, *a, **kw)
        assert n == 1
        raise ValidationFailed({"name": "refused after the outbox row was written"})
    monkeypatch.setattr(webhooks_mod, "fan_out", fan_out_then_fail)
    s, e = bg.call("admin", "POST", "/account", {"name": "Rolled Back Co", "email": "r@back.example"})
    assert s == 422 and "name" in e["error"]["fields"]
    monkeypatch.setattr(webhooks_mod, "fan_out", real)
    assert bg.outbox() == []
    assert bg.ok("admin", "GET", "/account?q=Rolled")["total"] == 0

    ok = bg.ok("admin", "POST", "/account", {"name": "Committed Co", "email": "c@ok.example"}, 201)
    hits = receiver.wait_for(1, 10.0)                # the runner is alive: it sends the committed one …
    assert [h.json()["id"] for h in hits] == [ok["id"]]
    assert wait_until(lambda: [r["status"] for r in bg.outbox()] == ["sent"])
    time.sleep(0.3)
    assert len(receiver.hits) == 1                   # … and only that one
    assert [r["record_id"] for r in bg.outbox()] == [ok["id"]]


def test_e3_the_runner_sweeps_due_timers_by_itself(monkeypatch, tmp_path, frozen_clock):
    t0 = dt.datetime(2026, 11, 23, 2, 0, 0)         # Monday 10:00 in Shanghai
    frozen_clock(t0)
    crm = background_crm(monkeypatch, tmp_path, ROOT / "config", 1,
                         users={"agent": (["service_agent"], {}), "lead": (["service_manager"], {})})
    try:
        cust = crm.ok("admin", "POST", "/customer", {"name": "宁波海天", "email": "ops@haitian.example.cn"}, 201)
        t = crm.ok("admin", "POST", "/ticket", {"subject": "Line down", "customer": cust["id"], "priority": "p1"}, 201)
        assert crm.ok("lead", "GET", "/notifications")["total"] == 0
        frozen_clock(t0 + dt.timedelta(minutes=65))  # the 1-hour response target passed at 11:00
        crm.ok("admin", "GET", "/me")               # any request starts the runner
        notes = wait_until(lambda: crm.ok("lead", "GET", "/notifications")["items"], 10.0)
        assert [n["text"] for n in notes] == [f"SLA breached: ticket {t['code']} Line down"]
        by = {i["target"]: i["status"] for i in crm.ok("admin", "GET", f"/ticket/{t['id']}/sla")["items"]}
        assert by == {"response": "breached", "resolution": "running"}
        time.sleep(1.5)                              # more sweeps at the same instant fire nothing again
        assert crm.ok("lead", "GET", "/notifications")["total"] == 1
    finally:
        quiet(crm)
