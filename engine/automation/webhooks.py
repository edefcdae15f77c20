"""Outgoing webhooks: subscriptions per entity event, fanned out into the outbox in the same
transaction as the change, and signed when sent (HMAC-SHA256 of the raw body)."""
from __future__ import annotations

import hashlib
import hmac
import json
import re

import sqlalchemy as sa

from ..tablecache import TableCache

from .. import clock
from ..db import reading, writing
from ..errors import ValidationFailed
from . import outbox
from .tables import webhooks

EVENT = re.compile(r"^([a-z][a-z0-9_]{0,47})\.(created|updated|deleted|transition)$")


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_bytes(body: dict) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def create(engine, config, data: dict, actor_id) -> dict:
    errors = {}
    url = data.get("url")
    if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url) or len(url) > 2000:
        errors["url"] = "an http:// or https:// address"
    events = data.get("events")
    if not isinstance(events, list) or not events:
        errors["events"] = "a list such as [\"customer.created\"]"
    else:
        bad = [e for e in events if not isinstance(e, str) or not EVENT.match(e)
               or EVENT.match(e).group(1) not in config.entities]
        if bad:
            errors["events"] = (f"unknown event(s) {', '.join(map(str, bad))}: use <entity>.created, .updated, "
                                f".deleted or .transition with an entity of the config")
    secret = data.get("secret")
    if not isinstance(secret, str) or not 8 <= len(secret) <= 255:
        errors["secret"] = "a shared secret of 8 to 255 characters"
    if errors:
        raise ValidationFailed(errors)
    with writing(engine) as conn:
        wid = conn.execute(webhooks.insert().values(url=url, events=sorted(set(events)), secret=secret, active=True,
                                                    created_by=actor_id, created_at=clock.now())
                           ).inserted_primary_key[0]
    return {"id": wid, "url": url, "events": sorted(set(events)), "active": True}


def listing(engine) -> list[dict]:
    with reading(engine) as conn:
        return [{"id": r.id, "url": r.url, "events": r.events, "active": r.active, "created_at": r.created_at}
                for r in conn.execute(sa.select(webhooks).order_by(webhooks.c.id))]


def remove(engine, wid: int) -> bool:
    """Delete a subscription and cancel its deliveries still waiting in the outbox."""
    with writing(engine) as conn:
        if conn.execute(webhooks.delete().where(webhooks.c.id == wid)).rowcount != 1:
            return False
        outbox.cancel_for_webhook(conn, wid)
        return True


_ACTIVE = sa.select(webhooks.c.id, webhooks.c.url, webhooks.c.events).where(webhooks.c.active.is_(True))
_active = TableCache([webhooks], 2.0)     # read on every write; a subscription made elsewhere counts within 2 s


def subscribers(conn, name: str) -> list:
    """The active subscriptions to the event `name` (`<entity>.<event>`)."""
    rows = _active.get(id(conn.engine), lambda: tuple(conn.execute(_ACTIVE)))
    return [w for w in rows if name in (w.events or ())]


def fan_out(conn, event: str, entity: str, record_id: int, record_json, subscriptions=None) -> int:
    """One outbox row per active subscription to `<entity>.<event>`. `record_json` may be a
    function (called only when someone subscribes); `subscriptions` as read once for a batch."""
    name = f"{entity}.{event}"
    subs = subscribers(conn, name) if subscriptions is None else subscriptions
    if subs and callable(record_json):
        record_json = record_json()
    for w in subs:
        outbox.enqueue(conn, "webhook", {"webhook": w.id, "url": w.url,
                                         "body": {"event": name, "entity": entity, "id": record_id,
                                                  "record": record_json}}, entity, record_id, webhook_id=w.id)
    return len(subs)


def secret_of(conn, payload: dict) -> str:
    """The signing secret: the subscription's current one, or the one an automation action carried."""
    if payload.get("webhook") is not None:
        secret = conn.execute(sa.select(webhooks.c.secret).where(webhooks.c.id == payload["webhook"])).scalar()
        if secret is None:
            raise LookupError(f"webhook #{payload['webhook']} was removed; the delivery is dropped")
        return secret
    return payload.get("secret", "")
