"""Background work behind one small interface: `kick()` after a commit that wrote outbox rows,
and a periodic sweep (due timers, scheduled rules, escalations, retries of the outbox).

Without REDIS_URL a daemon thread of the web process does both, so `make run` needs no Redis.
With REDIS_URL the web process only enqueues; rq workers (`flask crm worker`, any number) run the
jobs, and each worker keeps the periodic sweep going (one sweep per interval across all workers,
by a Redis key taken with SET NX). Every job is idempotent: timers fire by conditional update and
outbox rows are claimed, so a re-run after a crash sends nothing twice that it had finished.
"""
from __future__ import annotations

import logging
import threading

from engine.automation import outbox

from . import delivery

log = logging.getLogger(__name__)
QUEUE = "crm"
SWEEP_KEY = "crm:sweep-lock"


def settings_of(app) -> dict:
    keys = ("SMTP_HOST", "SMTP_PORT", "SMTP_FROM", "SMTP_FROM_NAME", "SMTP_USER", "SMTP_PASSWORD", "SMTP_TLS",
            "CRM_WEBHOOK_PRIVATE")
    return {k: app.config.get(k) for k in keys}


def run_once(rt, settings, now=None) -> dict:
    """One sweep: fire what is due, then send the outbox. Returns what it did."""
    result = rt.automation.sweep(now)
    sent = delivery.dispatch(rt, settings)
    return {"fired": result.fired, "late": result.late_count, "failed": result.failed_count, **sent}


class InProcessJobs:
    """A daemon thread: sends the outbox right after a kick, sweeps every `interval` seconds."""

    def __init__(self, app, interval: float):
        self.app, self.interval = app, interval
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="crm-jobs", daemon=True)
                self._thread.start()

    def kick(self) -> None:
        self.start()
        self._wake.set()

    def _loop(self) -> None:
        settings = settings_of(self.app)
        import time
        last_sweep = 0.0
        while True:
            woke = self._wake.wait(timeout=self.interval)
            self._wake.clear()
            rt = self.app.extensions["crm"]
            try:
                rt.follow()
                if rt.store is None:
                    continue
                rt.ensure_schema()
                if time.monotonic() - last_sweep >= self.interval or not woke:
                    rt.automation.sweep()
                    last_sweep = time.monotonic()
                delivery.dispatch(rt, settings)
            except Exception:  # noqa: BLE001 - the loop must survive; the next round retries
                log.exception("background jobs round failed")


class RqJobs:
    """Jobs go to the rq queue `crm` on REDIS_URL; only workers run them."""

    def __init__(self, url: str, interval: float):
        self.url, self.interval = url, interval
        self._queue = None

    def queue(self):
        if self._queue is None:
            from redis import Redis
            from rq import Queue
            self._queue = Queue(QUEUE, connection=Redis.from_url(self.url))
        return self._queue

    def start(self) -> None:
        return None

    def kick(self) -> None:
        try:
            self.queue().enqueue("platform_.jobs.dispatch_job", job_timeout=300, result_ttl=60, failure_ttl=7 * 86400)
        except Exception:  # noqa: BLE001 - Redis down: the rows wait in the outbox for the next sweep
            log.exception("could not enqueue the outbox dispatch (the next sweep sends it)")

    def sweep_now(self) -> None:
        self.queue().enqueue("platform_.jobs.sweep_job", job_timeout=1800, result_ttl=60, failure_ttl=7 * 86400)

    def sweep_if_due(self) -> bool:
        """Enqueue a sweep unless another worker did within the interval."""
        conn = self.queue().connection
        if conn.set(SWEEP_KEY, "1", nx=True, ex=max(1, int(self.interval))):
            self.sweep_now()
            return True
        return False


def make_jobs(app):
    interval = float(app.config.get("CRM_SWEEP_SECONDS") or 30)
    if app.config.get("REDIS_URL"):
        return RqJobs(app.config["REDIS_URL"], interval)
    return InProcessJobs(app, interval)


def after_request_kick(app) -> None:
    """Kick the dispatcher when this request's transactions wrote outbox rows."""
    if outbox.take_dirty():
        jobs = app.extensions.get("crm_jobs")
        if jobs is not None and app.config.get("CRM_BACKGROUND", True):
            jobs.kick()


# ---- rq job functions (run in `flask crm worker` processes) -------------------------------------
_worker_app = None


def bind_worker_app(app) -> None:
    global _worker_app
    _worker_app = app


def job_app():
    global _worker_app
    if _worker_app is None:
        from app import create_app
        _worker_app = create_app()
    return _worker_app


def dispatch_job() -> dict:
    app = job_app()
    with app.app_context():
        rt = app.extensions["crm"]
        rt.follow()
        rt.ensure_schema()
        return delivery.dispatch(rt, settings_of(app))


def sweep_job() -> dict:
    app = job_app()
    with app.app_context():
        rt = app.extensions["crm"]
        rt.follow()
        rt.ensure_schema()
        return run_once(rt, settings_of(app))


def rq_worker(queues, connection):
    """An rq Worker whose command listener polls every second instead of every 60: redis-py 8.2's
    `PubSubWorkerThread.stop()` waits for the poll to end, so rq's teardown (and `--burst`) could
    hang for up to a minute after the work was done."""
    from rq import Worker

    class CrmWorker(Worker):
        def subscribe(self):
            self.pubsub = self.connection.pubsub()
            self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
            self.pubsub_thread = self.pubsub.run_in_thread(sleep_time=1, daemon=True,
                                                           exception_handler=self._pubsub_exception_handler)

    return CrmWorker(queues, connection=connection)
