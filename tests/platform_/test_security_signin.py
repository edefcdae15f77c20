"""Sign-in throttling, user lifecycle and tokens (CLI and API), input hygiene, instance file modes, serving."""
from __future__ import annotations

import datetime as dt
import os
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine import clock, events
from engine.actor import SYSTEM_ACTOR
from engine.wftables import tasks
from platform_ import auth, signin
from tests.conftest import FIXTURES, ROOT

T0 = dt.datetime(2026, 3, 2, 9, 0, 0)


@pytest.fixture
def frozen():
    def at(when):
        clock.set_global(when)
    yield at
    clock.set_global(None)


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """The real app on a fresh SQLite file with the mini pack; run('user', 'disable', ...) -> output."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/sec.db")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(FIXTURES / "mini"))
    monkeypatch.setenv("ATTACHMENTS_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("SECRET_KEY", "sec")
    from app import create_app
    app = create_app({"TESTING": True})
    rt = app.extensions["crm"]
    rt.ensure_schema()
    runner = app.test_cli_runner()

    def run(*args, code=0):
        r = runner.invoke(args=["crm", *args], catch_exceptions=False)
        assert r.exit_code == code, r.output
        return r.output
    run.app, run.rt = app, rt
    yield run
    rt.engine.dispose()


def me(app, token):
    r = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    return r.status_code


# ---- throttling rules (platform_/signin.py) ---------------------------------------------------
def test_lock_starts_at_the_tenth_failure_in_15_minutes_and_lasts_15_minutes(cli, frozen):
    eng = cli.rt.engine
    for n in range(9):                                   # 9 failures spread over 14 minutes
        frozen(T0 + dt.timedelta(minutes=n * 14 / 8))
        signin.record(eng, "ann", "10.1.1.1", "wrong_password")
    assert signin.lock_for(eng, "ann", "10.1.1.1") is None
    frozen(T0 + dt.timedelta(minutes=14, seconds=30))
    signin.record(eng, "ann", "10.1.1.1", "wrong_password")
    lock = signin.lock_for(eng, "ann", "10.1.1.2")        # the name is locked from every address
    assert lock.by == "user" and lock.until == T0 + dt.timedelta(minutes=29, seconds=30)
    assert lock.seconds_left() == 900
    signin.record(eng, "ann", "10.1.1.1", "throttled")   # refused tries do not extend it
    frozen(T0 + dt.timedelta(minutes=29, seconds=29))
    assert signin.lock_for(eng, "ann", None) is not None
    frozen(T0 + dt.timedelta(minutes=29, seconds=30))
    assert signin.lock_for(eng, "ann", None) is None
    signin.record(eng, "ann", "10.1.1.1", "wrong_password")   # one more failure does not lock again
    assert signin.lock_for(eng, "ann", None) is None
    assert signin.lock_for(eng, "bob", "10.1.1.3") is None    # other names are free


def test_ten_failures_spread_over_more_than_15_minutes_do_not_lock(cli, frozen):
    eng = cli.rt.engine
    for n in range(10):
        frozen(T0 + dt.timedelta(minutes=n * 2))            # 18 minutes from first to last
        signin.record(eng, "ann", None, "wrong_password")
    assert signin.lock_for(eng, "ann", None) is None


def test_a_success_clears_the_name_but_not_the_address(cli, frozen):
    eng = cli.rt.engine
    frozen(T0)
    for n in range(9):
        signin.record(eng, "ann", "10.1.1.1", "wrong_password")
    frozen(T0 + dt.timedelta(seconds=1))
    signin.record(eng, "ann", "10.1.1.1", "ok")
    frozen(T0 + dt.timedelta(seconds=2))
    signin.record(eng, "ann", "10.1.1.1", "wrong_password")
    assert signin.lock_for(eng, "ann", None) is None
    for n in range(signin.ADDRESS_LIMIT - 10):
        signin.record(eng, f"x{n}", "10.1.1.1", "wrong_password")
    lock = signin.lock_for(eng, "someone", "10.1.1.1")
    assert lock is not None and lock.by == "address"
    assert [r["outcome"] for r in signin.recent(eng, "ann", limit=3)] == ["wrong_password", "ok", "wrong_password"]


# ---- user lifecycle and tokens ----------------------------------------------------------------
def test_user_disable_stops_tokens_and_sign_in_at_once(cli):
    cli("user", "create", "ann", "--password", "ann-Passw0rd", "--role", "sales")
    token = cli("token", "create", "--user", "ann").strip().splitlines()[-1]
    cli("user", "create", "bob", "--password", "bob-Passw0rd")
    other = cli("token", "create", "--user", "bob").strip().splitlines()[-1]
    assert me(cli.app, token) == 200
    out = cli("user", "disable", "ann")
    assert "User ann disabled" in out and "1 token(s) revoked" in out
    assert me(cli.app, token) == 401
    assert me(cli.app, other) == 200                                  # nobody else is touched
    assert auth.check_password(cli.rt.engine, "ann", "ann-Passw0rd")[0] == "disabled"
    assert "inactive" in [line for line in cli("user", "list").splitlines() if " ann " in line][0]
    assert "no user named 'nobody'" in cli("user", "disable", "nobody", code=1)
    cli("user", "enable", "ann")
    assert auth.check_password(cli.rt.engine, "ann", "ann-Passw0rd")[0] == "ok"
    assert me(cli.app, token) == 401                                  # revoked tokens stay revoked


def test_token_list_revoke_and_last_used(cli, frozen):
    cli("user", "create", "ann", "--password", "ann-Passw0rd")
    cli("user", "create", "bob", "--password", "bob-Passw0rd")
    t1 = cli("token", "create", "--user", "ann", "--name", "laptop").strip().splitlines()[-1]
    t2 = cli("token", "create", "--user", "ann").strip().splitlines()[-1]
    tb = cli("token", "create", "--user", "bob").strip().splitlines()[-1]
    out = cli("token", "list", "--user", "ann")
    assert "laptop" in out and "last used never" in out and "2 token(s), 2 active" in out

    def used(tid):
        return {r["id"]: r["last_used_at"] for r in auth.list_tokens(cli.rt.engine, "ann")}[tid]
    frozen(T0)
    assert me(cli.app, t1) == 200 and used(1) == T0
    frozen(T0 + dt.timedelta(seconds=59))
    assert me(cli.app, t1) == 200 and used(1) == T0                 # at most one write a minute
    frozen(T0 + dt.timedelta(seconds=61))
    assert me(cli.app, t1) == 200 and used(1) == T0 + dt.timedelta(seconds=61)
    assert used(2) is None
    assert "last used 2026-03-02 09:01Z" in cli("token", "list", "--user", "ann")
    assert "Revoked 1 token(s)" in cli("token", "revoke", "--user", "ann", "--id", "2")
    assert me(cli.app, t2) == 401 and me(cli.app, t1) == 200
    assert "Revoked 1 token(s) of ann" in cli("token", "revoke", "--user", "ann")
    assert me(cli.app, t1) == 401 and me(cli.app, tb) == 200
    assert "0 active" in cli("token", "list", "--user", "ann")
    assert "no active token #2" in cli("token", "revoke", "--user", "ann", "--id", "2", code=1)


def _task(conn, assignee, status="open"):
    return conn.execute(tasks.insert().values(entity="account", record_id=1, title="Call back", assignee=assignee,
                                              status=status, created_at=T0)).inserted_primary_key[0]


def test_user_transfer_moves_owned_records_and_open_tasks_through_the_store(cli):
    rt = cli.rt
    for name in ("ann", "bob", "cy"):
        cli("user", "create", name, "--password", f"{name}-Passw0rd", "--role", "sales")
    ann, bob, cy = (auth.get_actor(rt.engine, auth.find_user(rt.engine, n)["id"]) for n in ("ann", "bob", "cy"))
    a1 = rt.store.create("account", {"name": "A1", "email": "a1@x.cn"}, ann)
    a2 = rt.store.create("account", {"name": "A2", "email": "a2@x.cn"}, ann)
    gone = rt.store.create("account", {"name": "Gone", "email": "g@x.cn"}, ann)
    rt.store.delete("account", gone["id"], SYSTEM_ACTOR)
    keep = rt.store.create("account", {"name": "Cy's", "email": "c@x.cn"}, cy)
    d1 = rt.store.create("deal", {"name": "D1", "account": a1["id"]}, ann)
    with rt.engine.begin() as conn:
        open_task, done_task = _task(conn, ann.id), _task(conn, ann.id, "done")
        cys_task = _task(conn, cy.id)
    out = cli("user", "transfer", "ann", "bob", "--dry-run")
    assert "account: 2 record(s) would move" in out and "deal: 1 record(s) would move" in out
    assert "tasks: 1 open task(s) would move" in out and "nothing changed" in out
    assert {rt.store.get("account", a["id"], ann)["owner"] for a in (a1, a2)} == {ann.id}

    seen = []

    def on_update(sender, **kw):
        seen.append((sender, kw["record"]["id"], kw["before"]["owner"], kw["record"]["owner"]))
    events.record_updated.connect(on_update)
    try:
        out = cli("user", "transfer", "ann", "bob")
    finally:
        events.record_updated.disconnect(on_update)
    assert "account: 2 record(s) moved" in out and "deal: 1 record(s) moved" in out
    assert "tasks: 1 open task(s) moved" in out and "Moved 3 record(s) and 1 task(s) from ann to bob." in out
    assert sorted(seen) == sorted([("account", a1["id"], ann.id, bob.id), ("account", a2["id"], ann.id, bob.id),
                                   ("deal", d1["id"], ann.id, bob.id)])          # one store event per record
    assert {rt.store.get("account", a["id"], bob)["owner"] for a in (a1, a2)} == {bob.id}
    assert rt.store.get("deal", d1["id"], bob)["owner"] == bob.id
    assert rt.store.get("account", keep["id"], cy)["owner"] == cy.id             # nothing else moved
    assert rt.store.get("account", a1["id"], bob)["version"] == 2
    with rt.engine.connect() as conn:
        owners = dict(conn.execute(sa.select(tasks.c.id, tasks.c.assignee)).all())
        t = rt.store.table("account")
        assert conn.execute(sa.select(t.c.owner).where(t.c.id == gone["id"])).scalar() == ann.id  # in the bin
    assert owners == {open_task: bob.id, done_task: ann.id, cys_task: cy.id}
    assert "Moved 0 record(s) and 0 task(s)" in cli("user", "transfer", "ann", "bob")
    assert "same user" in cli("user", "transfer", "bob", "bob", code=1)
    cli("user", "disable", "cy")
    assert "cy is disabled" in cli("user", "transfer", "bob", "cy", code=1)


def test_user_transfer_reports_a_record_the_store_refuses(cli):
    rt = cli.rt
    cli("user", "create", "ann", "--password", "ann-Passw0rd")
    cli("user", "create", "bob", "--password", "bob-Passw0rd")
    ann = auth.get_actor(rt.engine, auth.find_user(rt.engine, "ann")["id"])
    ok = rt.store.create("account", {"name": "Fine", "email": "f@x.cn"}, ann)
    t = rt.store.table("account")
    with rt.engine.begin() as conn:                  # a row from before the rule "email or revenue"
        bad = conn.execute(t.insert().values(name="Old", version=1, owner=ann.id)).inserted_primary_key[0]
    out = cli("user", "transfer", "ann", "bob", code=1)
    assert f"failed: account #{bad}: " in out and "account: 1 record(s) moved" in out
    assert rt.store.get("account", ok["id"], SYSTEM_ACTOR)["owner"] != ann.id


# ---- input hygiene through the API ---------------------------------------------------------------
def test_control_characters_are_refused_with_422_naming_the_field(cli):
    cli("user", "create", "boss", "--password", "boss-Passw0rd", "--role", "admin")
    token = cli("token", "create", "--user", "boss").strip().splitlines()[-1]
    c = cli.app.test_client()
    h = {"Authorization": f"Bearer {token}"}

    def post(body):
        r = c.post("/api/v1/account", json=body, headers=h)
        return r.status_code, r.get_json()
    for bad in ("nul\x00", "esc\x1b[31m", "tab\tinside", "bell\x07", "del\x7f"):
        s, body = post({"name": bad, "email": "x@x.cn"})
        assert s == 422 and "control character" in body["error"]["fields"]["name"], (bad, body)
    s, body = post({"name": "ok", "email": "x@x.cn", "tags": ["a\x00"]})
    assert s == 422 and "tags" in body["error"]["fields"]
    assert c.get("/api/v1/account", headers=h).get_json()["total"] == 0          # nothing was written
    s, body = post({"name": "  padded  ", "email": "x@x.cn"})
    assert s == 201 and body["name"] == "padded"


def test_attachment_references_are_checked_for_shape():
    from engine.model import Field
    from engine.values import coerce
    f = Field(id="doc", type="attachment", label={"en": "Doc"})
    good = {"name": "a.pdf", "sha256": "a" * 64, "size": 3, "mime": "application/pdf"}
    assert coerce(f, good) == good
    for bad in ({"sha256": "../../etc/passwd"}, {"sha256": "A" * 64}, {"sha256": "a" * 64, "name": "x\r\ny"},
                {"sha256": "a" * 64, "size": "big"}, {"sha256": "a" * 64, "name": ["x"]}, {"sha256": 5}):
        with pytest.raises(ValueError):
            coerce(f, bad)
    text = Field(id="notes", type="text", label={"en": "Notes"})
    assert coerce(text, "a\tb\r\nc") == "a\tb\r\nc"
    with pytest.raises(ValueError, match="U\\+0000"):
        coerce(text, "a\x00b")


def test_api_body_larger_than_the_limit_is_413_json(cli):
    cli("user", "create", "boss", "--password", "boss-Passw0rd", "--role", "admin")
    token = cli("token", "create", "--user", "boss").strip().splitlines()[-1]
    cli.app.config["MAX_CONTENT_LENGTH"] = 1024
    r = cli.app.test_client().post("/api/v1/account", data=b'{"name": "' + b"x" * 5000 + b'"}',
                                   content_type="application/json", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 413 and r.is_json
    error = r.get_json()["error"]
    assert error["code"] == "too_large" and "larger than the limit" in error["message"]


# ---- instance files ------------------------------------------------------------------------------
def test_instance_folder_secret_key_and_sqlite_file_are_private(tmp_path, monkeypatch):
    from platform_ import settings
    inst = tmp_path / "instance"
    settings._private_dir(inst)
    assert stat.S_IMODE(inst.stat().st_mode) == 0o700
    inst.chmod(0o755)
    settings._private_dir(inst)
    assert stat.S_IMODE(inst.stat().st_mode) == 0o700
    key = settings._secret_key(inst / "secret_key")
    assert len(key) == 64 and stat.S_IMODE((inst / "secret_key").stat().st_mode) == 0o600
    assert settings._secret_key(inst / "secret_key") == key
    db = inst / "crm.db"
    settings._private_sqlite_file(f"sqlite:///{db}", inst)
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    elsewhere = tmp_path / "data.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{elsewhere}")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(FIXTURES / "mini"))
    monkeypatch.setenv("SECRET_KEY", "x")
    from app import create_app
    app = create_app({"TESTING": True})
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o600
    assert stat.S_IMODE(os.stat(app.instance_path).st_mode) == 0o700
    app.extensions["crm"].ensure_schema()                          # the empty file is a database
    auth.create_user(app.extensions["crm"].engine, "ann", "ann-Passw0rd")
    for suffix in ("-wal", "-shm"):
        side = elsewhere.with_name(elsewhere.name + suffix)
        if side.exists():
            assert stat.S_IMODE(side.stat().st_mode) == 0o600
    app.extensions["crm"].engine.dispose()


# ---- serving -------------------------------------------------------------------------------------
def test_make_run_serves_with_gunicorn_on_localhost():
    text = (ROOT / "Makefile").read_text()
    run = text[text.index("\nrun:"):text.index("\n\n", text.index("\nrun:"))]
    assert "gunicorn --bind 127.0.0.1:$${PORT:-5000}" in run and '"app:create_app()"' in run   # localhost; PORT overrides
    assert "flask --app app run" not in run
    for step in ("crm init", "crm user create admin", "crm demo", "crm token create"):
        assert step in run


def test_gunicorn_serves_the_app(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path}/g.db", CRM_CONFIG_DIR=str(FIXTURES / "mini"),
               SECRET_KEY="g", CRM_BACKGROUND="0")
    gunicorn = Path(sys.executable).parent / "gunicorn"              # the venv's, next to its python
    proc = subprocess.Popen([str(gunicorn), "--bind", f"127.0.0.1:{port}", "--workers", "1",
                             "app:create_app()"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        for _ in range(150):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as r:
                    assert r.status == 200 and "script-src 'self'" in r.headers["Content-Security-Policy"]
                    break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("gunicorn exited: " + proc.stderr.read().decode()[-500:])
                time.sleep(0.2)
        else:
            pytest.fail("gunicorn did not answer in 30 s")
    finally:
        proc.terminate()
        proc.wait(10)
