"""H6 audit trail: every change of a record is logged field by field in its transaction, chained by
hash; verify() names the entry that was altered, removed or inserted — on both databases."""
from __future__ import annotations

import sqlalchemy as sa
import pytest

from engine import audit
from engine.actor import Actor
from engine.audit import AuditTrail, audit_log
from engine.errors import ValidationFailed

ALICE = Actor(id=None, username="alice", roles=("admin",))


@pytest.fixture
def logged(mini_store):
    trail = AuditTrail(mini_store)
    yield mini_store
    trail.close()


def _entity_with_required(store):
    return store.config.entities["account"]       # the mini fixture: name required, an e-mail or a revenue


def _text_field(e):
    return "name"


def test_create_update_delete_restore_are_logged_with_before_and_after(logged):
    store = logged
    e = _entity_with_required(store)
    field = _text_field(e)
    rec = store.create(e.id, {field: "Before", "email": "b@example.com"}, ALICE)
    store.update(e.id, rec["id"], {field: "After"}, ALICE)
    store.delete(e.id, rec["id"], ALICE)
    store.restore(e.id, rec["id"], ALICE)
    got = audit.entries(store.engine, entity=e.id, record_id=rec["id"])["items"]
    assert [i["action"] for i in got] == ["restore", "delete", "update", "create"]
    assert got[2]["changes"] == {field: ["Before", "After"]} and got[2]["user"] == "alice"
    assert got[3]["changes"][field] == [None, "Before"]
    ok, message, n = audit.verify(store.engine)
    assert ok and n == 4, message


def test_a_refused_change_leaves_no_entry(logged):
    store = logged
    e = _entity_with_required(store)
    with pytest.raises(ValidationFailed):
        store.create(e.id, {}, ALICE)
    assert audit.entries(store.engine)["total"] == 0
    assert audit.verify(store.engine)[0]


@pytest.mark.parametrize("tamper", ["alter", "remove_newest", "remove_middle"])
def test_verify_names_the_damage(logged, tamper):
    store = logged
    e = _entity_with_required(store)
    field = _text_field(e)
    for i in range(3):
        store.create(e.id, {field: f"R{i}", "email": f"r{i}@example.com"}, ALICE)
    with store.engine.begin() as conn:
        ids = [r.id for r in conn.execute(sa.select(audit_log.c.id).order_by(audit_log.c.id))]
        if tamper == "alter":
            conn.execute(audit_log.update().where(audit_log.c.id == ids[1]).values(username="mallory"))
        elif tamper == "remove_newest":
            conn.execute(audit_log.delete().where(audit_log.c.id == ids[-1]))
        else:
            conn.execute(audit_log.delete().where(audit_log.c.id == ids[1]))
    ok, message, _n = audit.verify(store.engine)
    assert not ok
    if tamper == "alter":
        assert f"entry #{ids[1]}" in message and "altered" in message
    elif tamper == "remove_newest":
        assert "removed" in message
    else:
        assert f"entry #{ids[2]}" in message and "removed" in message
