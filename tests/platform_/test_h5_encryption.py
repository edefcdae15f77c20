"""H5 encryption at rest: `encrypted: true` fields (default pack: customer.bank_account) are stored
AES-GCM, read back in plain through the API for those allowed, cannot be filtered or sorted on, are
refused together with searchable/unique/index by the checker, and `flask crm keys rotate` moves
them to a new key — on both databases."""
from __future__ import annotations

import base64
import os

import pytest
import sqlalchemy as sa

from engine import crypto
from tests.conftest import ROOT

BANK = "6222 0212 3456 7890 123"


@pytest.fixture
def pack(make_app):
    app, token, _ = make_app(ROOT / "config")
    client = app.test_client()

    def call(method, path, body=None):
        r = client.open("/api/v1" + path, method=method, json=body, headers={"Authorization": f"Bearer {token}"})
        return r.status_code, r.get_json(silent=True)
    call.app, call.rt = app, app.extensions["crm"]
    return call


def _raw(rt, rid):
    t = rt.store.table("customer")
    with rt.engine.connect() as c:
        return c.execute(sa.select(sa.cast(t.c.bank_account, sa.Text)).where(t.c.id == rid)).scalar()


def test_h5_stored_encrypted_read_in_plain(pack):
    s, c = pack("POST", "/customer", {"name": "Enc Co", "email": "e@example.com", "bank_account": BANK})
    assert s == 201 and c["bank_account"] == BANK
    raw = _raw(pack.rt, c["id"])
    assert raw.startswith("gcm1:") and BANK not in raw and "7890" not in raw
    assert pack("GET", f"/customer/{c['id']}")[1]["bank_account"] == BANK
    s, c2 = pack("POST", "/customer", {"name": "Enc Two", "email": "e2@example.com", "bank_account": BANK})
    assert _raw(pack.rt, c2["id"]) != raw                      # a fresh nonce each time


def test_h5_encrypted_fields_cannot_be_filtered_or_sorted(pack):
    s, body = pack("GET", f"/customer?bank_account={BANK}")
    assert s == 400 and "encrypted" in body["error"]["message"]
    s, body = pack("GET", "/customer?sort=bank_account")
    assert s == 400 and "encrypted" in body["error"]["message"]
    assert pack("GET", "/customer?bank_account__isnull=true")[0] == 200


def test_h5_checker_refuses_encrypted_with_searchable(config_copy):
    from engine.errors import ConfigInvalid
    from engine.loader import load_config
    d = config_copy("mini")
    p = d / "entities" / "account.yaml"
    p.write_text(p.read_text().replace("  email: {type: email, searchable: true}",
                                       "  email: {type: email, searchable: true, encrypted: true}"))
    with pytest.raises(ConfigInvalid) as e:
        load_config(d)
    assert any("encrypted field cannot be searchable" in str(x) for x in e.value.problems)


def test_h5_keys_rotate_moves_values_to_the_new_key(pack, monkeypatch):
    s, c = pack("POST", "/customer", {"name": "Rotate Co", "email": "r@example.com", "bank_account": BANK})
    old_kid = _raw(pack.rt, c["id"]).split(":")[1]
    old = base64.b64encode(next(iter(crypto._keys.values()))).decode()
    new = base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", f"{new},{old}")
    crypto.set_keys(crypto.load_keys(os.environ["CRM_ENCRYPTION_KEY"], None))
    assert pack("GET", f"/customer/{c['id']}")[1]["bank_account"] == BANK        # the old key still reads
    r = pack.app.test_cli_runner().invoke(args=["crm", "keys", "rotate"])
    assert r.exit_code == 0 and "re-encrypted 1" in r.output, r.output
    raw = _raw(pack.rt, c["id"])
    assert raw.split(":")[1] != old_kid and raw.split(":")[1] == crypto.key_id(base64.b64decode(new))
    crypto.set_keys([base64.b64decode(new)])                                     # the old key dropped
    assert pack("GET", f"/customer/{c['id']}")[1]["bank_account"] == BANK
    r = pack.app.test_cli_runner().invoke(args=["crm", "keys", "rotate"])
    assert "re-encrypted 0" in r.output


def test_h5_no_plain_copy_in_the_audit_log_webhooks_or_backups(pack, tmp_path):
    import json as _json
    import zipfile

    from engine import audit
    s, c = pack("POST", "/customer", {"name": "Copy Co", "email": "cc@example.com", "bank_account": BANK})
    entry = audit.entries(pack.rt.engine, entity="customer", record_id=c["id"])["items"][0]
    assert entry["changes"]["bank_account"] == [None, "***"]
    assert pack("POST", "/webhooks", {"url": "http://127.0.0.1:9/x", "events": ["customer.updated"],
                                      "secret": "s3cret-secret"})[0] == 201
    pack("PATCH", f"/customer/{c['id']}", {"name": "Copy Co 2"})
    from engine.automation.tables import outbox
    with pack.rt.engine.connect() as conn:
        payloads = [r.payload for r in conn.execute(sa.select(outbox.c.payload))]
    assert payloads and all(BANK not in _json.dumps(p) for p in payloads)
    r = pack.app.test_cli_runner().invoke(args=["crm", "backup", str(tmp_path / "b.zip")])
    assert r.exit_code == 0, r.output
    with zipfile.ZipFile(tmp_path / "b.zip") as z:
        assert all(BANK not in z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".jsonl"))


def test_h5_the_audit_trail_logs_that_an_encrypted_field_changed_and_only_then(pack):
    """The log holds `***` for an encrypted value: a change of it is still an entry, an update that
    leaves it alone does not mention it (a fresh nonce is not a change)."""
    from engine import audit
    s, c = pack("POST", "/customer", {"name": "Trail Co", "email": "t@example.com", "bank_account": BANK})
    pack("PATCH", f"/customer/{c['id']}", {"name": "Trail Co 2"})
    pack("PATCH", f"/customer/{c['id']}", {"bank_account": "6222 9999 8888 7777 555"})
    got = audit.entries(pack.rt.engine, entity="customer", record_id=c["id"])["items"]
    assert [i["action"] for i in got][:3] == ["update", "update", "create"]
    assert got[0]["changes"] == {"bank_account": ["***", "***"]}
    assert "bank_account" not in got[1]["changes"] and got[1]["changes"]["name"] == ["Trail Co", "Trail Co 2"]
    assert BANK not in str(got) and "8888 7777" not in str(got)
