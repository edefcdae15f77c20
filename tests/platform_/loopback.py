"""Loopback stand-ins for the outside systems of the automation tests (A10/I3 webhooks, I2 e-mail):
an HTTP receiver on 127.0.0.1, a real SMTP server (aiosmtpd), closed ports, a CRM app factory and
the Redis db 11 guard of the rq tests. Nothing here talks to anything but 127.0.0.1.
"""
from __future__ import annotations

import atexit
import contextlib
import email
import email.policy
import fcntl
import hashlib
import hmac
import http.server
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa

from tests.conftest import IN_CI

REDIS_DB11 = "redis://127.0.0.1:6379/11"


# ---- ports -----------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A port nobody listens on (bound once, then released): connecting is refused at once."""
    return free_port()


# ---- the webhook receiver --------------------------------------------------------------------------
@dataclass
class Hit:
    method: str
    path: str
    headers: dict
    body: bytes
    answered: int

    def json(self):
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        want = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("x-crm-signature", ""), want)


@dataclass
class Receiver:
    """A threaded HTTP server on 127.0.0.1:0 that records every request (raw body included).

    `status` is what it answers; `hold()` makes the next request wait (up to `hold_seconds`) until
    `release()`, to stand for an endpoint that stalls."""
    status: int = 200
    hits: list = field(default_factory=list)

    def __post_init__(self):
        self.lock = threading.Lock()
        self._gate: threading.Event | None = None
        self.hold_seconds = 30.0
        rx = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with rx.lock:
                    gate, rx._gate = rx._gate, None
                    status = rx.status
                    rx.hits.append(Hit(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                       body, status))
                if gate is not None:
                    gate.wait(rx.hold_seconds)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass            # the caller went away while we stalled

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str = "/hook") -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path]

    def hold(self) -> threading.Event:
        gate = threading.Event()
        with self.lock:
            self._gate = gate
        self._held = gate
        return gate

    def release(self) -> None:
        if getattr(self, "_held", None) is not None:
            self._held.set()

    def wait_for(self, n: int, seconds: float, path: str = "/hook") -> list[Hit]:
        """Bounded polling: the hits at `path` once there are `n` (or whatever came within `seconds`)."""
        end = time.monotonic() + seconds
        while len(self.at(path)) < n and time.monotonic() < end:
            time.sleep(0.05)
        return self.at(path)

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    rx = Receiver()
    yield rx
    rx.close()


# ---- the SMTP server -------------------------------------------------------------------------------
class Mailbox:
    """aiosmtpd on 127.0.0.1:<port>; `messages` are parsed e-mails (email.message.EmailMessage)."""

    def __init__(self, port: int | None = None):
        from aiosmtpd.controller import Controller
        self.port = port or free_port()
        self.envelopes: list[tuple[str, list[str], bytes]] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or
                               envelope.content))
        return "250 Message accepted for delivery"

    @property
    def messages(self):
        return [email.message_from_bytes(raw, policy=email.policy.default) for _, _, raw in self.envelopes]

    def to(self, address: str):
        return [email.message_from_bytes(raw, policy=email.policy.default)
                for _, rcpt, raw in self.envelopes if address in rcpt]

    def close(self):
        self.controller.stop()


# ---- one CRM app on one database ----------------------------------------------------------------
class Crm:
    """An app on `db_url` with users; `call(who, method, path, body)` → (status, json)."""

    def __init__(self, app, tokens: dict, users: dict):
        self.app, self.tokens, self.users = app, tokens, users
        self.rt = app.extensions["crm"]
        self.client = app.test_client()

    def call(self, who, method, path, body=None, headers=None, **kw):
        h = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        h.update(headers or {})
        r = self.client.open("/api/v1" + path, method=method, json=body, headers=h, **kw)
        return r.status_code, r.get_json(silent=True)

    def ok(self, who, method, path, body=None, expect=200, **kw):
        s, data = self.call(who, method, path, body, **kw)
        assert s == expect, (method, path, s, data)
        return data

    def settings(self) -> dict:
        from platform_ import jobs
        return jobs.settings_of(self.app)

    def dispatch(self) -> dict:
        from platform_ import delivery
        return delivery.dispatch(self.rt, self.settings())

    def cli(self, *args, code=0):
        r = self.app.test_cli_runner().invoke(args=["crm", *args])
        assert r.exit_code == code, (args, r.exit_code, r.output)
        return r.output

    def rows(self, sql: str, **params) -> list:
        with self.rt.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]

    def outbox(self) -> list[dict]:
        from engine.automation.tables import outbox
        with self.rt.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(outbox).order_by(outbox.c.id)).mappings()]


_TEMPLATES: dict[str, str] = {}


def _sqlite_file(db_url: str) -> str | None:
    return db_url[len("sqlite:///"):] if db_url.startswith("sqlite:///") else None


def _copy_sqlite(src: str, dst: str) -> None:
    import sqlite3
    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    try:
        a.backup(b)
    finally:
        a.close()
        b.close()


def make_crm(monkeypatch, tmp_path, db_url, config_dir, overrides=None, users=None) -> Crm:
    """users: {name: (roles, extra kwargs of auth.create_user)}; `admin` always exists.

    A new SQLite database starts as a copy of one migrated for the same config earlier in this
    process (the same tables a fresh migration makes, without paying for it in every test)."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("CRM_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("ATTACHMENTS_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("SECRET_KEY", "automation-tests")
    for key in ("REDIS_URL", "SMTP_HOST", "SMTP_PORT", "SMTP_FROM", "CRM_BACKGROUND", "CRM_SWEEP_SECONDS"):
        monkeypatch.delenv(key, raising=False)
    from argon2 import PasswordHasher

    from app import create_app
    from platform_ import auth
    # cheap password hashes: these tests sign in with tokens; hashes of any cost verify alike
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    path = _sqlite_file(db_url)
    key = str(config_dir)
    if path and key in _TEMPLATES and not os.path.exists(path):
        _copy_sqlite(_TEMPLATES[key], path)
    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False, **(overrides or {})})
    rt = app.extensions["crm"]
    rt.ensure_schema()
    if path and key not in _TEMPLATES and rt.store is not None:
        folder = tempfile.mkdtemp(prefix="crm-template-")
        atexit.register(shutil.rmtree, folder, True)
        template = os.path.join(folder, "template.db")
        _copy_sqlite(path, template)
        _TEMPLATES[key] = template
    people = {"admin": (["admin"], {})}
    people.update(users or {})
    ids, tokens = {}, {}
    for name, (roles, extra) in people.items():
        ids[name] = auth.create_user(rt.engine, name, f"{name}-Passw0rd!", roles, **extra)
        tokens[name] = auth.create_token(rt.engine, name)
    return Crm(app, tokens, ids)


@pytest.fixture
def frozen_clock():
    """Set the engine's clock for every thread; released afterwards."""
    from engine import clock

    def set_to(at):
        clock.set_global(at)
    yield set_to
    clock.set_global(None)


# ---- Redis db 11 ------------------------------------------------------------------------------------
def _redis_problem() -> str | None:
    try:
        from redis import Redis
        Redis.from_url(REDIS_DB11, socket_timeout=2, socket_connect_timeout=2).ping()
        return None
    except Exception as e:  # noqa: BLE001 - any failure means "no server"
        return f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"


@pytest.fixture
def redis_db11():
    """Redis db 11, flushed for this test alone (a file lock keeps parallel test processes apart).
    Skipped when Redis is unreachable outside CI; in CI that is a failure."""
    problem = _redis_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"Redis is required in CI but unreachable at {REDIS_DB11}: {problem}")
        pytest.skip(f"Redis not reachable at {REDIS_DB11} ({problem})")
    from redis import Redis
    lock_path = os.path.join(tempfile.gettempdir(), "crm-tests-redis-db11.lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        conn = Redis.from_url(REDIS_DB11)
        conn.flushdb()                         # db 11 only: the URL names it
        try:
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.flushdb()
            conn.close()
            fcntl.flock(lock, fcntl.LOCK_UN)
