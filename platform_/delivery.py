"""Sending what the outbox holds: signed webhook calls over HTTP and e-mails over SMTP.

`dispatch(rt, settings)` claims due rows and sends each; a failure (endpoint down, SMTP refused)
is recorded on the row and retried later with backoff, never raised to the caller, so nothing a
user does waits on or fails because of an outside system.
"""
from __future__ import annotations

import logging
import smtplib
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.utils import formataddr

from engine import clock
from engine.automation import outbox, webhooks
from engine.db import reading, writing
from engine.wftables import history

log = logging.getLogger(__name__)


def dispatch(rt, settings, limit: int = 50) -> dict:
    """Send due outbox rows until none is left (or `limit` per round). Returns counts by status."""
    counts = {"sent": 0, "retry": 0, "dead": 0}
    for _ in range(limit * 20):
        rows = outbox.claim(rt.engine, 1)       # one at a time: a claim never outlives its lease unsent
        if not rows:
            return counts
        for row in rows:
            try:
                if row["kind"] == "webhook":
                    send_webhook(rt, row, settings)
                elif row["kind"] == "email":
                    send_email(rt, settings, row)
                else:
                    raise ValueError(f"unknown outbox kind {row['kind']!r}")
            except Exception as e:  # noqa: BLE001 - recorded on the row, retried with backoff
                status = outbox.failed(rt.engine, row, f"{type(e).__name__}: {e}")
                counts["dead" if status == "dead" else "retry"] += 1
                log.warning("outbox #%s (%s) failed, attempt %s: %s", row["id"], row["kind"], row["attempts"], e)
            else:
                outbox.sent(rt.engine, row)
                counts["sent"] += 1
    return counts


class _Refuse(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise urllib.error.HTTPError(req.full_url, code, f"redirect to {newurl} refused", headers, fp)


_NO_REDIRECTS = urllib.request.build_opener(_Refuse)


def private_target(url: str) -> str | None:
    """The address a webhook URL resolves to when it is loopback, private, link-local or reserved
    (None when public). Used when CRM_WEBHOOK_PRIVATE=deny keeps deliveries off the inside network."""
    import ipaddress
    import socket
    import urllib.parse
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return None                          # unresolvable: the delivery fails on its own
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast:
            return str(ip)
    return None


def send_webhook(rt, row, settings=None) -> None:
    payload = row["payload"]
    if str((settings or {}).get("CRM_WEBHOOK_PRIVATE") or "").lower() == "deny":
        inside = private_target(payload["url"])
        if inside:
            raise RuntimeError(f"{payload['url']} resolves to the inside address {inside}; "
                               f"CRM_WEBHOOK_PRIVATE=deny refuses it")
    body = webhooks.body_bytes(payload["body"])
    with reading(rt.engine) as conn:
        secret = webhooks.secret_of(conn, payload)
    req = urllib.request.Request(payload["url"], data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "lowcode-crm-webhooks/1",
        "X-CRM-Event": str(payload["body"].get("event")), "X-CRM-Delivery": str(row["id"]),
        "X-CRM-Signature": webhooks.signature(secret, body)})
    try:
        with _NO_REDIRECTS.open(req, timeout=10) as resp:      # a redirect is a failure, never followed
            resp.read(1024)
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{payload['url']} answered HTTP {e.code}") from None
    except (urllib.error.URLError, OSError) as e:
        raise RuntimeError(f"{payload['url']} could not be reached: {getattr(e, 'reason', e)}") from None


def send_email(rt, settings, row) -> None:
    host = settings.get("SMTP_HOST")
    if not host:
        raise RuntimeError("SMTP_HOST is not set: e-mail cannot be sent (set SMTP_HOST, SMTP_PORT, SMTP_FROM)")
    p = row["payload"]
    msg = EmailMessage()
    sender = settings.get("SMTP_FROM") or "crm@localhost"
    msg["From"] = formataddr((settings.get("SMTP_FROM_NAME") or "CRM", sender))
    msg["To"] = p["to"]
    msg["Subject"] = p["subject"]
    # a stable id: a resend after a crash carries the same Message-ID, so mail systems can drop the repeat
    msg["Message-ID"] = f"<outbox-{row['id']}.{row['created_at']:%Y%m%d%H%M%S}@{sender.split('@')[-1] or 'localhost'}>"
    msg.set_content(p["body"])
    port = int(settings.get("SMTP_PORT") or 25)
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        if str(settings.get("SMTP_TLS") or "").lower() in ("1", "true", "yes"):
            smtp.starttls()
        if settings.get("SMTP_USER"):
            smtp.login(settings["SMTP_USER"], settings.get("SMTP_PASSWORD") or "")
        smtp.send_message(msg)
    if row.get("entity") and row.get("record_id"):
        with writing(rt.engine) as conn:        # the record's timeline shows the e-mail (I2)
            conn.execute(history.insert().values(
                entity=row["entity"], record_id=row["record_id"], workflow="-", transition=None, from_state=None,
                to_state=None, event="email", user_id=None, at=clock.now(), comment=f"{p['to']}: {p['subject']}"[:2000]))
