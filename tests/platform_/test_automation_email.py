"""E-mail from automation rules (I2 e-mail from templates, logged on the timeline; E3 service
quality: the satisfaction request of a resolved ticket), sent through the outbox to a real SMTP
server (aiosmtpd on 127.0.0.1), with the default pack's `ticket_satisfaction_request` rule."""
import datetime as dt

import pytest

from engine.automation import outbox as outbox_mod
from platform_ import delivery
from tests.conftest import ROOT
from tests.platform_ import loopback
from tests.platform_.loopback import Mailbox, closed_port, make_crm

frozen_clock = loopback.frozen_clock          # a fixture

T0 = dt.datetime(2026, 11, 23, 2, 0, 0)          # Monday 10:00 in Shanghai, naive UTC
SENDER = "service@haitian.example.cn"


@pytest.fixture
def mailbox():
    box = Mailbox()
    yield box
    box.close()


def crm_with_smtp(monkeypatch, tmp_path, port):
    return make_crm(monkeypatch, tmp_path, f"sqlite:///{tmp_path}/mail.db", ROOT / "config",
                    overrides={"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "SMTP_FROM": SENDER,
                               "SMTP_FROM_NAME": "Haitian Service"},
                    users={"agent_en": (["service_agent"], {"language": "en"}),
                           "agent_zh": (["service_agent"], {"language": "zh"})})


def resolved_ticket(crm, who, contact_email="li.lei@customer.example.cn", subject="Pump P-200 leaks"):
    """A ticket with a contact, taken from new to resolved by `who`; returns (ticket, contact)."""
    cust = crm.ok("admin", "POST", "/customer", {"name": "杭州尚祈科技", "email": "info@customer.example.cn"}, 201)
    body = {"name": "李雷", "customer": cust["id"]}
    if contact_email:
        body["email"] = contact_email
    contact = crm.ok("admin", "POST", "/contact", body, 201)
    t = crm.ok(who, "POST", "/ticket", {"subject": subject, "customer": cust["id"], "contact": contact["id"],
                                        "priority": "p2"}, 201)
    crm.ok(who, "POST", f"/ticket/{t['id']}/transitions/start", {})
    cur = crm.ok(who, "GET", f"/ticket/{t['id']}")
    crm.ok(who, "PATCH", f"/ticket/{t['id']}", {"resolution": "Replaced the seal.", "version": cur["version"]})
    done = crm.ok(who, "POST", f"/ticket/{t['id']}/transitions/resolve", {})
    assert done["record"]["status"] == "resolved"
    return done["record"], contact


def email_history(crm, tid):
    return [h for h in crm.ok("admin", "GET", f"/ticket/{tid}/history")["items"] if h["event"] == "email"]


def test_i2_resolved_ticket_mails_its_contact_once_in_english_and_logs_it(monkeypatch, tmp_path, mailbox,
                                                                          frozen_clock):
    frozen_clock(T0)
    crm = crm_with_smtp(monkeypatch, tmp_path, mailbox.port)
    t, contact = resolved_ticket(crm, "agent_en")
    assert mailbox.envelopes == []                   # nothing is sent inside the request
    [row] = crm.outbox()
    assert (row["kind"], row["entity"], row["record_id"], row["status"]) == ("email", "ticket", t["id"], "pending")

    assert crm.dispatch() == {"sent": 1, "retry": 0, "dead": 0}
    assert crm.dispatch() == {"sent": 0, "retry": 0, "dead": 0}     # a second run sends no second mail
    [(mail_from, rcpt, _)] = mailbox.envelopes
    assert mail_from == SENDER and rcpt == [contact["email"]]
    [msg] = mailbox.messages
    assert msg["To"] == contact["email"]
    assert msg["From"] == f"Haitian Service <{SENDER}>"
    assert msg["Subject"] == f"How did we do? Ticket {t['code']}"
    text = msg.get_content()
    assert f"Your ticket {t['code']} (Pump P-200 leaks) has been resolved." in text and "1 to 5" in text
    assert msg["Message-ID"]

    [row] = crm.outbox()
    assert row["status"] == "sent" and row["attempts"] == 1 and row["sent_at"] == T0 and row["last_error"] is None
    [h] = email_history(crm, t["id"])                 # the record's timeline shows the e-mail
    assert h["comment"] == f"{contact['email']}: How did we do? Ticket {t['code']}"
    assert h["user_id"] is None and h["at"].startswith("2026-11-23T02:00")
    assert crm.ok("admin", "GET", "/admin/jobs")["total"] == 0


def test_i2_the_mail_is_in_the_language_of_the_agent_who_resolved_it(monkeypatch, tmp_path, mailbox):
    crm = crm_with_smtp(monkeypatch, tmp_path, mailbox.port)
    t, contact = resolved_ticket(crm, "agent_zh", subject="水泵漏水")
    crm.dispatch()
    [msg] = mailbox.to(contact["email"])
    assert msg["Subject"] == f"请评价我们的服务：工单 {t['code']}"
    text = msg.get_content()
    assert f"您的工单 {t['code']}（水泵漏水）已解决" in text and "How did we do" not in text
    [h] = email_history(crm, t["id"])
    assert h["comment"] == f"{contact['email']}: 请评价我们的服务：工单 {t['code']}"


def test_i2_a_contact_without_email_gets_nothing(monkeypatch, tmp_path, mailbox):
    crm = crm_with_smtp(monkeypatch, tmp_path, mailbox.port)
    t, _ = resolved_ticket(crm, "agent_en", contact_email=None)
    assert crm.outbox() == []
    assert crm.dispatch() == {"sent": 0, "retry": 0, "dead": 0}
    assert mailbox.envelopes == [] and email_history(crm, t["id"]) == []


def test_i2_smtp_down_the_mail_waits_with_its_error_and_goes_out_once_smtp_is_back(monkeypatch, tmp_path,
                                                                                    frozen_clock):
    frozen_clock(T0)
    port = closed_port()
    crm = crm_with_smtp(monkeypatch, tmp_path, port)
    t, contact = resolved_ticket(crm, "agent_en")    # the user's transition succeeded
    assert crm.ok("agent_en", "GET", f"/ticket/{t['id']}")["status"] == "resolved"

    assert delivery.dispatch(crm.rt, {}) == {"sent": 0, "retry": 1, "dead": 0}     # no SMTP_HOST configured
    [row] = crm.outbox()
    assert row["status"] == "pending" and "SMTP_HOST is not set" in row["last_error"]
    frozen_clock(row["next_at"])
    assert crm.dispatch() == {"sent": 0, "retry": 1, "dead": 0}                     # the server is down
    [row] = crm.outbox()
    assert row["status"] == "pending" and row["attempts"] == 2 and "Connection refused" in row["last_error"]
    [item] = crm.ok("admin", "GET", "/admin/jobs")["items"]
    assert (item["kind"], item["id"], item["record_id"], item["status"]) == ("email", row["id"], t["id"], "pending")
    assert f"email #{row['id']} pending after 2 attempt(s)" in crm.cli("jobs", "failed")
    assert email_history(crm, t["id"]) == []          # not logged as sent

    box = Mailbox(port)
    try:
        assert crm.dispatch()["sent"] == 0            # still waiting for its backoff
        assert box.envelopes == []
        frozen_clock(row["next_at"])
        assert crm.dispatch() == {"sent": 1, "retry": 0, "dead": 0}
        assert crm.dispatch()["sent"] == 0
        [msg] = box.to(contact["email"])
        assert msg["Subject"] == f"How did we do? Ticket {t['code']}"
        assert len(box.envelopes) == 1
    finally:
        box.close()
    assert crm.outbox()[0]["status"] == "sent" and len(email_history(crm, t["id"])) == 1
    assert crm.ok("admin", "GET", "/admin/jobs")["total"] == 0


def test_i2_a_mail_resent_after_a_crash_keeps_its_message_id(monkeypatch, tmp_path, mailbox, frozen_clock):
    frozen_clock(T0)
    crm = crm_with_smtp(monkeypatch, tmp_path, mailbox.port)
    resolved_ticket(crm, "agent_en")
    real_sent = outbox_mod.sent

    class Killed(BaseException):
        pass

    def crash(*a, **kw):                             # the process dies after SMTP accepted the mail
        raise Killed("dispatcher killed")
    monkeypatch.setattr(outbox_mod, "sent", crash)
    with pytest.raises(Killed):
        crm.dispatch()
    monkeypatch.setattr(outbox_mod, "sent", real_sent)
    assert crm.outbox()[0]["status"] == "sending"
    frozen_clock(T0 + outbox_mod.LEASE + dt.timedelta(minutes=1))       # the claim expired
    assert crm.dispatch()["sent"] == 1
    first, second = mailbox.messages
    assert first["Subject"] == second["Subject"]
    assert first["Message-ID"] == second["Message-ID"]
