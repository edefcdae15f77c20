"""Background jobs on rq (A10/I3 webhooks sent by workers; DESIGN "Operations"): with REDIS_URL the
web process only enqueues, real `flask crm worker` processes deliver, and a worker killed in the
middle of a delivery loses nothing — the claim expires and the next worker sends the same outbox
row (same delivery id, no second row). Redis db 11 only, flushed per test; the app and the
workers share one SQLite file."""
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.automation import outbox as outbox_mod
from tests.conftest import ROOT
from tests.platform_ import loopback
from tests.platform_.loopback import REDIS_DB11, make_crm

receiver, redis_db11 = loopback.receiver, loopback.redis_db11          # fixtures

SECRET = "rq-whsec-123456"
FLASK = str(Path(sys.executable).with_name("flask"))      # the venv's flask, as /work/main/.venv/bin/flask


@pytest.fixture
def shop(monkeypatch, tmp_path, redis_db11):
    db = tmp_path / "rq.db"
    crm = make_crm(monkeypatch, tmp_path, f"sqlite:///{db}", ROOT / "config",
                   overrides={"REDIS_URL": REDIS_DB11, "CRM_BACKGROUND": True})
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SMTP_", "CRM_", "DATABASE_URL", "REDIS_URL", "FLASK_"))}
    env.update(DATABASE_URL=f"sqlite:///{db}", FLASK_APP="app", CRM_CONFIG_DIR=str(ROOT / "config"),
               REDIS_URL=REDIS_DB11, SECRET_KEY="automation-tests", ATTACHMENTS_DIR=str(tmp_path / "files"))
    crm.env = env
    crm.redis = redis_db11
    crm.logs = tmp_path
    return crm


def worker(shop, *args, timeout=60):
    """`flask crm worker ARGS` to completion; returns the CompletedProcess."""
    r = subprocess.run([FLASK, "crm", "worker", *args], cwd=ROOT, env=shop.env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (rq's work horse calls setsid(), so it leaves the worker's group)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill_hard(proc) -> None:
    """SIGKILL the worker we started and every process it forked, all at once."""
    for pid in [proc.pid, *descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(10)


def queued(shop) -> list[str]:
    from rq import Queue
    q = Queue("crm", connection=shop.redis)
    return [j.func_name for j in q.jobs]


def subscribe(shop, receiver):
    hook = {"url": receiver.url(), "events": ["customer.created"], "secret": SECRET}
    return shop.ok("admin", "POST", "/webhooks", hook, 201)


def customer(shop, name="宁波海天贸易有限公司"):
    return shop.ok("admin", "POST", "/customer", {"name": name, "email": "buy@haitian.example.cn"}, 201)


def test_a10_with_redis_only_a_worker_delivers_the_webhook_once(shop, receiver):
    subscribe(shop, receiver)
    c = customer(shop)
    assert queued(shop) == ["platform_.jobs.dispatch_job"]          # the request only enqueued
    assert receiver.wait_for(1, 2.0) == []                         # and nothing left the web process
    [row] = shop.outbox()
    assert (row["status"], row["attempts"]) == ("pending", 0)

    worker(shop, "--burst")
    [hit] = receiver.wait_for(1, 5.0)
    assert hit.json() == {"event": "customer.created", "entity": "customer", "id": c["id"], "record": c}
    assert hit.signed_with(SECRET) and hit.headers["x-crm-delivery"] == str(row["id"])
    [row] = shop.outbox()
    assert row["status"] == "sent" and row["attempts"] == 1
    assert queued(shop) == []

    worker(shop, "--burst")                                        # a second drain sends nothing again
    assert len(receiver.hits) == 1
    r = shop.app.test_client().get("/readyz")
    assert r.status_code == 200 and r.get_json()["checks"]["redis"] == "ok"
    assert shop.cli("jobs", "failed").strip().splitlines()[-1] == "0 failed"


def test_a10_a_worker_killed_mid_delivery_loses_nothing_and_duplicates_no_row(shop, receiver):
    receiver.hold_seconds = 20
    receiver.hold()                                  # the endpoint stalls on the first call
    subscribe(shop, receiver)
    c = customer(shop)
    log = open(shop.logs / "worker.log", "w")
    proc = subprocess.Popen([FLASK, "crm", "worker"], cwd=ROOT, env=shop.env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        first = receiver.wait_for(1, 25.0)
        assert len(first) == 1, (open(shop.logs / "worker.log").read()[-2000:])
        [row] = shop.outbox()
        assert (row["status"], row["attempts"]) == ("sending", 1)     # claimed, mid-delivery
    finally:
        kill_hard(proc)                              # the worker and its work horse die mid-delivery
        log.close()
        receiver.release()
    time.sleep(0.2)
    [row] = shop.outbox()
    assert (row["status"], row["attempts"]) == ("sending", 1)         # nobody finished it

    # the claim lease runs out (> outbox.LEASE): move the claim back instead of waiting
    with shop.rt.engine.begin() as conn:
        conn.execute(sa.text("update sys_outbox set claimed_at = :at where id = :id"),
                     {"at": row["claimed_at"] - outbox_mod.LEASE - dt.timedelta(minutes=1), "id": row["id"]})
    worker(shop, "--burst")
    hits = receiver.wait_for(2, 5.0)
    assert len(hits) == 2                            # at least once: the stalled call, then the resend
    assert hits[1].answered == 200 and hits[1].signed_with(SECRET)
    assert hits[0].body == hits[1].body and hits[1].json()["id"] == c["id"]
    assert hits[0].headers["x-crm-delivery"] == hits[1].headers["x-crm-delivery"] == str(row["id"])
    rows = shop.outbox()
    assert len(rows) == 1                            # the same row, not a second one
    assert rows[0]["id"] == row["id"] and rows[0]["status"] == "sent" and rows[0]["attempts"] == 2
    worker(shop, "--burst")
    assert len(receiver.hits) == 2
