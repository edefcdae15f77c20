"""Business calendars: working-time arithmetic for SLA deadlines and reminders.

A calendar is a set of working windows per weekday in an IANA time zone plus per-date overrides
(holidays off, Chinese 调休 make-up working days on weekends). ``add_seconds``/``add_hours``/
``add_days`` answer "when have N working hours/days elapsed" (a P1 ticket opened Friday 17:30 with
a one-working-hour SLA is due Monday 09:30) and ``seconds_between`` measures working time spent.
All arithmetic is done on real UTC instants, window by window (never second by second), so DST
days count the time that really elapses; results are aware datetimes in the calendar's zone.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Iterator, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Window = tuple[dt.time, dt.time]
Interval = tuple[dt.datetime, dt.datetime]  # [start, end) as UTC instants

UTC = dt.timezone.utc
ONE_DAY = dt.timedelta(days=1)
ONE_SECOND = dt.timedelta(seconds=1)
HORIZON_DAYS = 1100  # ~3 years without any working window means "no working time"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–—]\s*(\d{1,2}):(\d{2})\s*$")


def _offset(t: dt.time) -> dt.timedelta:
    """Time of day as an offset from midnight; ``dt.time.max`` is the "24:00" end of day."""
    if t == dt.time.max:
        return ONE_DAY
    return dt.timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


@dataclass(frozen=True)
class BusinessCalendar:
    id: str
    timezone: str
    weekly: Mapping[int, tuple[Window, ...]]
    makeup: tuple[Window, ...] = ()
    days: Mapping[dt.date, bool] = field(default_factory=dict)

    def with_days(self, days: Mapping[dt.date, bool]) -> BusinessCalendar:
        """A copy with ``days`` merged over the existing overrides (the new ones win)."""
        return replace(self, days={**self.days, **days})

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def windows_on(self, day: dt.date) -> tuple[Window, ...]:
        override = self.days.get(day)
        if override is None:
            return tuple(self.weekly.get(day.weekday(), ()))
        if override:
            return tuple(self.makeup or self.weekly.get(0, ()))
        return ()

    def local(self, instant: dt.datetime) -> dt.datetime:
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=self.tz)
        return instant.astimezone(UTC).astimezone(self.tz)

    def is_working(self, instant: dt.datetime) -> bool:
        u = self._utc(instant)
        day = self.local(instant).date()
        return any(s <= u < e for d in (day - ONE_DAY, day) for s, e in self._intervals(d))

    def add_seconds(self, start: dt.datetime, seconds: int) -> dt.datetime:
        if seconds < 0:
            raise ValueError(f"cannot add a negative working time ({seconds} s)")
        cur, remaining = self._utc(start), dt.timedelta(seconds=seconds)
        for _, intervals in self._working_days(self.local(start).date() - ONE_DAY):
            for s, e in intervals:
                if e < cur:
                    continue
                cur = max(cur, s)
                if cur + remaining <= e:
                    return (cur + remaining).astimezone(self.tz)
                remaining -= e - cur
                cur = e
        raise AssertionError("unreachable")  # pragma: no cover - _working_days never ends

    def add_hours(self, start: dt.datetime, hours: int | float | Decimal) -> dt.datetime:
        return self.add_seconds(start, round(hours * 3600))

    def add_days(self, start: dt.datetime, days: int) -> dt.datetime:
        if days < 0:
            raise ValueError(f"cannot add a negative number of working days ({days})")
        if days == 0:
            return self.add_seconds(start, 0)
        loc = self.local(start)
        wall = _offset(loc.time())
        found = self._working_days(loc.date() + ONE_DAY)
        for _ in range(days):
            day, intervals = next(found)
        target = self._instant(day, wall)
        result = intervals[0][0]  # before the first window -> its start
        for s, e in intervals:
            if s <= target:
                result = min(target, e)  # inside -> itself; in a gap or after -> end of the window before
        return result.astimezone(self.tz)

    def seconds_between(self, a: dt.datetime, b: dt.datetime) -> int:
        """Whole working seconds in [a, b) (rounded down); 0 if b <= a."""
        ua, ub = self._utc(a), self._utc(b)
        if ub <= ua:
            return 0
        total = dt.timedelta(0)
        day, last = self.local(a).date() - ONE_DAY, self.local(b).date()
        while day <= last:
            for s, e in self._intervals(day):
                total += max(min(e, ub) - max(s, ua), dt.timedelta(0))
            day += ONE_DAY
        return total // ONE_SECOND

    # -- internals ---------------------------------------------------------------------------
    def _utc(self, instant: dt.datetime) -> dt.datetime:
        return self.local(instant).astimezone(UTC)

    def _instant(self, day: dt.date, offset: dt.timedelta) -> dt.datetime:
        """The UTC instant of local wall time ``day`` + ``offset`` (fold=0 for ambiguous/missing)."""
        wall = dt.datetime.combine(day, dt.time()) + offset
        return wall.replace(tzinfo=self.tz).astimezone(UTC)

    def _intervals(self, day: dt.date) -> list[Interval]:
        """The day's windows as sorted, disjoint, non-empty UTC intervals inside that local day.

        Wall times in a DST gap map forward, which can make a window inverted; clamping each
        start to the previous end (and the day's bounds) keeps the intervals ordered and drops
        windows that do not really exist that day.
        """
        windows = self.windows_on(day)
        if not windows:
            return []
        floor, ceiling = self._instant(day, dt.timedelta(0)), self._instant(day, ONE_DAY)
        out: list[Interval] = []
        for ws, we in windows:
            s = max(self._instant(day, _offset(ws)), out[-1][1] if out else floor)
            e = min(self._instant(day, _offset(we)), ceiling)
            if e > s:
                out.append((s, e))
        return out

    def _working_days(self, first: dt.date) -> Iterator[tuple[dt.date, list[Interval]]]:
        """Days from ``first`` on that have working time, with their intervals; never ends."""
        if not any(self.weekly.values()) and not (self.makeup and any(self.days.values())):
            raise ValueError(f"calendar {self.id} has no working time")
        day, idle = first, 0
        while True:
            intervals = self._intervals(day)
            if intervals:
                idle = 0
                yield day, intervals
            else:
                idle += 1
                if idle > HORIZON_DAYS:
                    raise ValueError(f"calendar {self.id} has no working time in the "
                                     f"{HORIZON_DAYS} days before {day.isoformat()}")
            day += ONE_DAY


def parse_window(text: str) -> Window:
    """``"09:00-12:00"`` (also ``"9:00-12:00"``, en dash) -> (start, end); ``"24:00"`` ends the day."""
    m = _WINDOW_RE.match(text) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"bad working window {text!r}: expected HH:MM-HH:MM")
    sh, sm, eh, em = (int(g) for g in m.groups())
    if sh > 23 or sm > 59 or em > 59 or eh > 24 or (eh == 24 and em):
        raise ValueError(f"bad working window {text!r}: no such time of day")
    start = dt.time(sh, sm)
    end = dt.time.max if eh == 24 else dt.time(eh, em)
    if end <= start:
        raise ValueError(f"bad working window {text!r}: end must be after start")
    return start, end


def _parse_windows(cid: str, what: str, raw: object) -> tuple[Window, ...]:
    items = [raw] if isinstance(raw, str) else list(raw or ())
    parsed = sorted(((parse_window(t), t) for t in items), key=lambda p: p[0])
    for (prev, prev_text), (cur, cur_text) in zip(parsed, parsed[1:]):
        if cur[0] < prev[1]:
            raise ValueError(f"calendar {cid}: {what} windows {prev_text!r} and {cur_text!r} overlap")
    return tuple(w for w, _ in parsed)


def calendar_from_config(cid: str, raw: dict) -> BusinessCalendar:
    """Build a calendar from its YAML form: ``timezone``, ``week`` (mon..sun -> windows), ``makeup_day``."""
    tzname = raw.get("timezone")
    try:
        ZoneInfo(tzname)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"calendar {cid}: unknown time zone {tzname!r}") from None
    week = raw.get("week") or {}
    if not isinstance(week, Mapping):
        raise ValueError(f"calendar {cid}: week must be a mapping of mon..sun to windows, got {week!r}")
    weekly: dict[int, tuple[Window, ...]] = {}
    for key, windows in week.items():
        if key not in WEEKDAYS:
            raise ValueError(f"calendar {cid}: unknown weekday {key!r} (expected one of {', '.join(WEEKDAYS)})")
        weekly[WEEKDAYS.index(key)] = _parse_windows(cid, key, windows)
    makeup = _parse_windows(cid, "makeup_day", raw.get("makeup_day"))
    return BusinessCalendar(id=cid, timezone=tzname, weekly=weekly, makeup=makeup)
