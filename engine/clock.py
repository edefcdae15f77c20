"""The one clock the engine reads: naive UTC, to the second.

Tests and `flask crm timers run --now …` set it (`frozen(at)`) instead of sleeping, so SLA and
timer behaviour is checked at any instant without waiting for it.
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime as dt

_override: contextvars.ContextVar[dt.datetime | None] = contextvars.ContextVar("crm_clock", default=None)
_global: list[dt.datetime | None] = [None]


def now() -> dt.datetime:
    """The current instant as naive UTC (the form every timestamp column stores)."""
    at = _override.get() or _global[0]
    if at is not None:
        return at
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


_zone: list[dt.tzinfo | None] = [None]


def set_timezone(name: str | None) -> None:
    """The zone whose calendar date `today()` gives (CRM_TIMEZONE); None: the server's own."""
    from zoneinfo import ZoneInfo
    _zone[0] = ZoneInfo(name) if name else None


_zone_here: contextvars.ContextVar = contextvars.ContextVar("crm_zone", default=None)


@contextlib.contextmanager
def in_zone(name: str | None):
    """Within the block, `today()` is the date in zone `name` (a scheduled rule's own time zone)."""
    if not name:
        yield
        return
    from zoneinfo import ZoneInfo
    token = _zone_here.set(ZoneInfo(name))
    try:
        yield
    finally:
        _zone_here.reset(token)


def today() -> dt.date:
    """Today's date where the company works: `now()` seen in CRM_TIMEZONE (or the server's zone)."""
    aware = now().replace(tzinfo=dt.timezone.utc)
    zone = _zone_here.get() or _zone[0]
    return aware.astimezone(zone).date() if zone else aware.astimezone().date()


def to_utc_naive(value: dt.datetime) -> dt.datetime:
    """An aware instant as naive UTC; a naive one is taken as UTC already."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value.replace(microsecond=0)


@contextlib.contextmanager
def frozen(at: dt.datetime):
    """Within the block (this thread or task), `now()` is `at`."""
    token = _override.set(to_utc_naive(at))
    try:
        yield
    finally:
        _override.reset(token)


def set_global(at: dt.datetime | None) -> None:
    """Freeze the clock for every thread (tests that drive a server thread); None releases it."""
    _global[0] = to_utc_naive(at) if at is not None else None
