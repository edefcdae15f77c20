"""Signals the store sends inside its transaction; audit, jobs and webhooks subscribe.

Each receiver gets `conn` (the open transaction), `store` (the sending RecordStore: receivers
serve one store and ignore the others), `record` (after), `before` and `actor`, so what it writes
commits or rolls back with the change itself. The sender is the entity id.

Receivers run by priority (automation 50, the audit trail 90: it records the final state).

`record_creating` is sent before the INSERT with `values` (the column values, mutable): a
receiver may fill fields (assignment, the initial state's `set`). `record_transitioned` is sent
after a state change and its history row, with `transition`, `from_state` and `to_state`.
`record_creating` and `record_created` of one record share `context` (a dict), so a receiver can
hand itself what it decided before the INSERT.

A bulk write sends one event per record with `send_many`; a receiver connected with `batch=` gets
all of them in one call (the audit trail appends a batch under one lock of its chain head).
"""
import threading


class Signal:
    """A named event with receivers called in a fixed order: by `priority`, then by connection.

    (blinker keeps receivers in a set, so two subscribers of one event — automation and the audit
    trail — would run in an order that changes from process to process; the audit must see the
    record after automation has finished with it.)"""

    def __init__(self, name: str):
        self.name = name
        self._receivers: list[tuple[int, int, object]] = []
        self._batch: dict = {}               # receiver → its batch form
        self._seq = 0
        self._lock = threading.Lock()

    def connect(self, fn, priority: int = 50, weak: bool = False, batch=None):
        with self._lock:
            self._seq += 1
            self._receivers.append((priority, self._seq, fn))
            self._receivers.sort(key=lambda r: (r[0], r[1]))
            if batch is not None:
                self._batch[fn] = batch
        return fn

    def disconnect(self, fn) -> None:
        with self._lock:
            self._receivers = [r for r in self._receivers if r[2] is not fn and r[2] != fn]
            self._batch.pop(fn, None)

    @property
    def receivers(self) -> list:
        return [r[2] for r in self._receivers]

    def send(self, sender, **kwargs) -> list:
        return [(fn, fn(sender, **kwargs)) for fn in list(self.receivers)]

    def send_many(self, sender, items: list[dict], **common) -> None:
        """One event per item (its own keyword arguments beside `common`), receiver by receiver in
        priority order; a receiver with a batch form gets `items` at once."""
        for fn in list(self.receivers):
            batch = self._batch.get(fn)
            if batch is not None:
                batch(sender, items=items, **common)
            else:
                for item in items:
                    fn(sender, **common, **item)


record_created = Signal("record-created")
record_updated = Signal("record-updated")
record_deleted = Signal("record-deleted")
record_restored = Signal("record-restored")
record_creating = Signal("record-creating")
record_transitioned = Signal("record-transitioned")
