"""Small per-process caches of rows that rarely change (API tokens, webhook subscriptions), read on
every request or write.

An entry lives `ttl` seconds. Any INSERT, UPDATE or DELETE this process sends to one of the cache's
tables empties it at once (the revoking or subscribing process sees its change immediately);
other processes see it within `ttl`.
"""
from __future__ import annotations

import threading
import time

import sqlalchemy as sa

_caches: list["TableCache"] = []
_lock = threading.Lock()


class TableCache:
    def __init__(self, tables, ttl: float, size: int = 10_000):
        self.tables = frozenset(t.name if hasattr(t, "name") else str(t) for t in tables)
        self.ttl, self.size = ttl, size
        self._data: dict = {}
        with _lock:
            _caches.append(self)

    def get(self, key, load):
        """The cached value of `key`, or `load()` (cached when not None)."""
        now = time.monotonic()
        hit = self._data.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load()
        if value is None:
            self._data.pop(key, None)
            return None
        if len(self._data) >= self.size:
            self._data.clear()
        self._data[key] = (now + self.ttl, value)
        return value

    def clear(self) -> None:
        self._data.clear()


@sa.event.listens_for(sa.Engine, "after_execute")
def _written(conn, clauseelement, multiparams, params, execution_options, result):
    if not getattr(clauseelement, "is_dml", False):
        return
    name = getattr(getattr(clauseelement, "table", None), "name", None)
    if name is None:
        return
    for cache in _caches:
        if name in cache.tables:
            cache.clear()
