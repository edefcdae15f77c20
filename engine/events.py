"""Signals the store sends inside its transaction; audit, jobs and webhooks subscribe.

Each receiver gets `conn` (the open transaction), `entity`, `record` (after), `before` and
`actor`, so what it writes commits or rolls back with the change itself.
"""
from blinker import Namespace

_signals = Namespace()
record_created = _signals.signal("record-created")
record_updated = _signals.signal("record-updated")
record_deleted = _signals.signal("record-deleted")
record_restored = _signals.signal("record-restored")
