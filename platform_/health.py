"""Operations probes (DESIGN.md "Operations"): /healthz (the process answers) and /readyz (the
database answers, and Redis when REDIS_URL is set); 503 with the reason when not ready."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    checks, ready = {}, True
    rt = current_app.extensions["crm"]
    try:
        with rt.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as e:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"error: {type(e).__name__}"
        ready = False
    checks["config"] = "ok" if rt.store is not None else "error: the configuration does not load"
    ready = ready and rt.store is not None
    url = current_app.config.get("REDIS_URL")
    if url:
        try:
            from redis import Redis
            Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping()
            checks["redis"] = "ok"
        except Exception as e:  # noqa: BLE001
            checks["redis"] = f"error: {type(e).__name__}"
            ready = False
    resp = jsonify({"status": "ready" if ready else "not ready", "checks": checks})
    resp.status_code = 200 if ready else 503
    return resp
