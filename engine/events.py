"""Signals the store sends inside its transaction; audit, jobs and webhooks subscribe.

Each receiver gets `conn` (the open transaction), `store` (the sending RecordStore: receivers
serve one store and ignore the others), `record` (after), `before` and `actor`, so what it writes
commits or rolls back with the change itself. The sender is the entity id.

`record_creating` is sent before the INSERT with `values` (the column values, mutable): a
receiver may fill fields (assignment, the initial state's `set`). `record_transitioned` is sent
after a state change and its history row, with `transition`, `from_state` and `to_state`.
"""
from blinker import Namespace

_signals = Namespace()
record_created = _signals.signal("record-created")
record_updated = _signals.signal("record-updated")
record_deleted = _signals.signal("record-deleted")
record_restored = _signals.signal("record-restored")
record_creating = _signals.signal("record-creating")
record_transitioned = _signals.signal("record-transitioned")
