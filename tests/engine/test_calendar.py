"""Business-hours arithmetic: E3 SLA calendars, C8/E1 automation (issue 7).

Acceptance examples on the standard calendar (Mon-Fri 09-12 and 13-18, Asia/Shanghai), add_days
clamping, DST in Europe/Berlin, the YAML parser's errors, the no-working-time guard, and
hypothesis properties over random calendars (random windows, holidays and make-up days).
"""
from __future__ import annotations

import datetime as dt
import re
import time
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.automation.calendar import BusinessCalendar, calendar_from_config, parse_window

UTC = dt.timezone.utc
SH = dt.timezone(dt.timedelta(hours=8))
T = dt.time
WORKDAY = ((T(9), T(12)), (T(13), T(18)))
STD = BusinessCalendar(id="std", timezone="Asia/Shanghai", weekly={d: WORKDAY for d in range(5)})


def at(text: str) -> dt.datetime:
    """Naive local wall time, e.g. at("2026-11-20T17:00")."""
    return dt.datetime.fromisoformat(text)


def sh(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SH)


def u(x: dt.datetime) -> dt.datetime:
    """Compare instants in UTC: same-tzinfo comparisons in Python ignore the offset (and fold)."""
    return x.astimezone(UTC)


# -- acceptance examples --------------------------------------------------------------------------

@pytest.mark.parametrize("cal, start, hours, expected", [
    (STD, "2026-11-20T17:00", 4, "2026-11-23T12:00"),                              # Friday -> Monday
    (STD, "2026-11-23T11:00", 2, "2026-11-23T14:00"),                              # over lunch
    (STD.with_days({dt.date(2026, 11, 24): False}), "2026-11-23T17:00", 2, "2026-11-25T10:00"),
    (STD.with_days({dt.date(2026, 11, 28): True}), "2026-11-27T17:30", 1, "2026-11-28T09:30"),
    (STD, "2026-11-20T17:30", 1, "2026-11-23T09:30"),                              # the P1 example
    (STD, "2026-11-23T17:00", 1, "2026-11-23T18:00"),                              # ends on a window end
    (STD, "2026-11-23T11:00", 1, "2026-11-23T12:00"),
    (STD, "2026-11-21T10:00", 1, "2026-11-23T10:00"),                              # from the weekend
    (STD, "2026-11-23T12:30", Decimal("0.5"), "2026-11-23T13:30"),                 # from lunch
])
def test_add_hours_acceptance(cal, start, hours, expected):
    result = cal.add_hours(at(start), hours)
    assert result.tzinfo is not None and result.utcoffset() == dt.timedelta(hours=8)
    assert result == sh(expected)


def test_eighty_hours_is_ten_working_days():
    # 80 h = 10 days of 8 h: Mon 09:00 + 80 h ends at the end of the 10th day (Fri 18:00 a week later).
    assert STD.add_hours(at("2026-11-23T09:00"), 80) == sh("2026-12-04T18:00")


def test_aware_utc_input():
    start = dt.datetime(2026, 11, 20, 9, 30, tzinfo=UTC)  # = 17:30 Friday in Shanghai
    assert STD.add_hours(start, 1) == sh("2026-11-23T09:30")
    assert str(STD.add_hours(start, 1).tzinfo) == "Asia/Shanghai"


def test_add_zero_and_negative():
    assert STD.add_seconds(at("2026-11-23T10:00"), 0) == sh("2026-11-23T10:00")
    assert STD.add_seconds(at("2026-11-23T18:00"), 0) == sh("2026-11-23T18:00")  # at a window end
    assert STD.add_seconds(at("2026-11-23T12:30"), 0) == sh("2026-11-23T13:00")  # lunch -> next window
    assert STD.add_seconds(at("2026-11-20T19:00"), 0) == sh("2026-11-23T09:00")
    with pytest.raises(ValueError):
        STD.add_seconds(at("2026-11-23T10:00"), -1)
    with pytest.raises(ValueError):
        STD.add_hours(at("2026-11-23T10:00"), -0.5)
    with pytest.raises(ValueError):
        STD.add_days(at("2026-11-23T10:00"), -1)


def test_windows_and_is_working():
    cal = STD.with_days({dt.date(2026, 11, 24): False, dt.date(2026, 11, 28): True})
    assert cal.windows_on(dt.date(2026, 11, 23)) == WORKDAY
    assert cal.windows_on(dt.date(2026, 11, 24)) == ()
    assert cal.windows_on(dt.date(2026, 11, 28)) == WORKDAY  # empty makeup = Monday's windows
    assert cal.windows_on(dt.date(2026, 11, 29)) == ()
    assert STD.windows_on(dt.date(2026, 11, 24)) == WORKDAY  # with_days made a copy
    assert cal.is_working(at("2026-11-23T09:00"))
    assert not cal.is_working(at("2026-11-23T12:00"))  # end exclusive
    assert not cal.is_working(at("2026-11-23T08:59:59"))
    assert cal.is_working(dt.datetime(2026, 11, 23, 1, 0, tzinfo=UTC))  # 09:00 local
    assert not cal.is_working(at("2026-11-24T10:00"))
    short = BusinessCalendar("s", "Asia/Shanghai", {0: WORKDAY}, makeup=((T(10), T(11)),),
                             days={dt.date(2026, 11, 28): True})
    assert short.windows_on(dt.date(2026, 11, 28)) == ((T(10), T(11)),)


def test_local():
    assert STD.local(at("2026-11-23T10:00")) == sh("2026-11-23T10:00")
    assert str(STD.local(at("2026-11-23T10:00")).tzinfo) == "Asia/Shanghai"
    assert STD.local(dt.datetime(2026, 11, 23, 2, tzinfo=UTC)) == sh("2026-11-23T10:00")


# -- add_days ---------------------------------------------------------------------------------

@pytest.mark.parametrize("start, days, expected", [
    ("2026-11-20T10:00", 1, "2026-11-23T10:00"),   # Friday -> Monday, same time
    ("2026-11-20T19:00", 1, "2026-11-23T18:00"),   # after hours -> clamped to the last window's end
    ("2026-11-20T07:00", 1, "2026-11-23T09:00"),   # before hours -> the first window's start
    ("2026-11-20T12:30", 1, "2026-11-23T12:00"),   # lunch -> end of the morning window
    ("2026-11-21T10:00", 1, "2026-11-23T10:00"),   # from a Saturday
    ("2026-11-23T10:00", 5, "2026-11-30T10:00"),
    ("2026-11-23T12:30", 0, "2026-11-23T13:00"),   # 0 days = add_seconds(start, 0)
])
def test_add_days(start, days, expected):
    assert STD.add_days(at(start), days) == sh(expected)


def test_add_days_over_holiday_and_makeup():
    cal = STD.with_days({dt.date(2026, 11, 24): False, dt.date(2026, 11, 25): False})
    assert cal.add_days(at("2026-11-23T15:00"), 1) == sh("2026-11-26T15:00")
    cal = STD.with_days({dt.date(2026, 11, 28): True})
    assert cal.add_days(at("2026-11-27T15:00"), 1) == sh("2026-11-28T15:00")


# -- DST: real elapsed seconds ------------------------------------------------------------------

ALL_DAY = ((T(0), T.max),)
BERLIN = BusinessCalendar("de", "Europe/Berlin", {d: ALL_DAY for d in range(7)})


def test_dst_spring_forward_counts_real_seconds():
    # 2026-03-29: Berlin clocks jump 02:00 CET -> 03:00 CEST; that Sunday has 23 real hours.
    day, nxt = at("2026-03-29T00:00"), at("2026-03-30T00:00")
    assert BERLIN.seconds_between(day, nxt) == 23 * 3600
    r = BERLIN.add_hours(at("2026-03-29T01:00"), 2)
    assert r.isoformat() == "2026-03-29T04:00:00+02:00"
    night = BusinessCalendar("n", "Europe/Berlin", {6: ((T(1), T(4)),)})
    assert night.seconds_between(at("2026-03-29T00:00"), at("2026-03-30T00:00")) == 2 * 3600
    assert night.add_hours(at("2026-03-29T01:00"), 2).isoformat() == "2026-03-29T04:00:00+02:00"
    # Missing wall times resolve with fold=0 (PEP 495): 02:10 means 03:10 CEST, so a window inside the
    # missing hour is shifted by it, and one that would end before it starts is dropped that day.
    ghost = BusinessCalendar("g", "Europe/Berlin", {6: ((T(2, 10), T(2, 50)),)})
    assert ghost.add_seconds(at("2026-03-29T00:00"), 0).isoformat() == "2026-03-29T03:10:00+02:00"
    assert ghost.seconds_between(at("2026-03-29T00:00"), at("2026-03-30T00:00")) == 40 * 60
    inverted = BusinessCalendar("i", "Europe/Berlin", {6: ((T(2, 30), T(3, 15)),)})
    assert inverted.seconds_between(at("2026-03-29T00:00"), at("2026-03-30T00:00")) == 0
    assert inverted.seconds_between(at("2026-03-22T00:00"), at("2026-03-23T00:00")) == 45 * 60
    assert inverted.add_seconds(at("2026-03-29T00:00"), 0).isoformat() == "2026-04-05T02:30:00+02:00"
    office = BusinessCalendar("o", "Europe/Berlin", {d: WORKDAY for d in range(5)})
    assert office.add_hours(at("2026-03-27T17:00"), 2) == dt.datetime(2026, 3, 30, 8, tzinfo=UTC)
    assert office.add_hours(at("2026-03-27T17:00"), 2).isoformat() == "2026-03-30T10:00:00+02:00"


def test_dst_fall_back_counts_real_seconds():
    # 2026-10-25: 03:00 CEST -> 02:00 CET; that Sunday has 25 real hours.
    assert BERLIN.seconds_between(at("2026-10-25T00:00"), at("2026-10-26T00:00")) == 25 * 3600
    assert BERLIN.add_hours(at("2026-10-25T01:00"), 3).isoformat() == "2026-10-25T03:00:00+01:00"
    office = BusinessCalendar("o", "Europe/Berlin", {d: WORKDAY for d in range(5)})
    assert office.add_hours(at("2026-10-23T17:00"), 2).isoformat() == "2026-10-26T10:00:00+01:00"


# -- performance: per window, not per minute -----------------------------------------------------

def test_seconds_between_over_years_is_fast():
    t0 = time.perf_counter()
    total = STD.seconds_between(at("2026-01-01T00:00"), at("2027-01-01T00:00"))
    weekdays = sum(1 for i in range(365) if (dt.date(2026, 1, 1) + dt.timedelta(days=i)).weekday() < 5)
    assert total == weekdays * 8 * 3600
    assert STD.seconds_between(at("2026-01-01T00:00"), at("2036-01-01T00:00")) > 0
    r = STD.add_hours(at("2026-01-01T00:00"), 8 * 2600)  # ten years of working days
    assert u(r) > u(sh("2035-12-01T00:00"))
    assert time.perf_counter() - t0 < 2.0


# -- parser -------------------------------------------------------------------------------------

def test_parse_window_forms():
    assert parse_window("09:00-12:00") == (T(9), T(12))
    assert parse_window("9:00-12:00") == (T(9), T(12))
    assert parse_window("09:00–12:00") == (T(9), T(12))
    assert parse_window(" 13:30 - 18:00 ") == (T(13, 30), T(18))
    assert parse_window("00:00-24:00") == (T(0), T.max)
    assert BusinessCalendar("x", "UTC", {0: (parse_window("22:00-24:00"),)}).seconds_between(
        at("2026-11-23T00:00"), at("2026-11-24T00:00")) == 2 * 3600


@pytest.mark.parametrize("text", ["9-12", "09:00", "09:00-12:60", "25:00-26:00", "24:00-24:00",
                                  "09:00-24:30", "ab:cd-ef:gh", "12:00-09:00", "09:00-09:00"])
def test_parse_window_errors(text):
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_window(text)


def test_calendar_from_config():
    cal = calendar_from_config("cn", {
        "timezone": "Asia/Shanghai",
        "week": {"mon": ["13:00-18:00", "09:00-12:00"], "tue": "09:00-18:00", "sat": []},
        "makeup_day": ["09:00-18:00"],
    })
    assert cal.id == "cn" and cal.timezone == "Asia/Shanghai"
    assert cal.weekly[0] == WORKDAY  # sorted
    assert cal.weekly[1] == ((T(9), T(18)),)
    assert cal.windows_on(dt.date(2026, 11, 25)) == ()  # wednesday missing = off
    assert cal.makeup == ((T(9), T(18)),)
    assert cal.with_days({dt.date(2026, 11, 28): True}).add_hours(at("2026-11-27T10:00"), 1) \
        == sh("2026-11-28T10:00")


@pytest.mark.parametrize("raw, bad", [
    ({"timezone": "Mars/Olympus", "week": {}}, "'Mars/Olympus'"),
    ({"week": {"mon": ["09:00-12:00"]}}, "None"),
    ({"timezone": "Asia/Shanghai", "week": {"monday": ["09:00-12:00"]}}, "'monday'"),
    ({"timezone": "Asia/Shanghai", "week": {"mon": ["09:00-12:00", "11:00-13:00"]}}, "'11:00-13:00'"),
    ({"timezone": "Asia/Shanghai", "week": {"mon": ["09:00-12:00", "9:30-10:00"]}}, "'9:30-10:00'"),
    ({"timezone": "Asia/Shanghai", "week": {"mon": ["9h-12h"]}}, "'9h-12h'"),
    ({"timezone": "Asia/Shanghai", "week": {"mon": ["12:00-09:00"]}}, "'12:00-09:00'"),
    ({"timezone": "Asia/Shanghai", "week": {}, "makeup_day": ["08:00-07:00"]}, "'08:00-07:00'"),
])
def test_calendar_from_config_errors(raw, bad):
    with pytest.raises(ValueError) as err:
        calendar_from_config("cn", raw)
    assert bad in str(err.value)


# -- no working time ----------------------------------------------------------------------------

def test_no_working_time_raises_instead_of_hanging():
    empty = BusinessCalendar("void", "Asia/Shanghai", {})
    for call in (lambda: empty.add_hours(at("2026-11-23T10:00"), 1),
                 lambda: empty.add_seconds(at("2026-11-23T10:00"), 0),
                 lambda: empty.add_days(at("2026-11-23T10:00"), 1)):
        with pytest.raises(ValueError, match="calendar void has no working time"):
            call()
    assert empty.seconds_between(at("2026-01-01T00:00"), at("2027-01-01T00:00")) == 0
    # Working time exists, but only on a past make-up day / only on days that are all holidays.
    past = BusinessCalendar("past", "Asia/Shanghai", {}, makeup=WORKDAY, days={dt.date(2026, 1, 3): True})
    assert past.add_hours(at("2026-01-02T10:00"), 1) == sh("2026-01-03T10:00")
    with pytest.raises(ValueError, match="calendar past has no working time"):
        past.add_hours(at("2026-02-01T10:00"), 1)
    mondays = {dt.date(2026, 1, 5) + dt.timedelta(weeks=w): False for w in range(52 * 4)}
    off = BusinessCalendar("off", "Asia/Shanghai", {0: WORKDAY}, days=mondays)
    with pytest.raises(ValueError, match="calendar off has no working time"):
        off.add_days(at("2026-01-01T10:00"), 1)


# -- properties ---------------------------------------------------------------------------------

PROPS = settings(max_examples=200, deadline=None, database=None)  # no .hypothesis/ left in the tree
ZONES = ["Asia/Shanghai", "Europe/Berlin", "America/New_York"]


@st.composite
def windows(draw, min_size: int = 0) -> tuple[tuple[dt.time, dt.time], ...]:
    """Up to three sorted, non-overlapping windows on whole minutes (1440 = 24:00)."""
    n = draw(st.integers(min_size, 3))
    marks = sorted(draw(st.sets(st.integers(0, 1440), min_size=2 * n, max_size=2 * n)))
    time_of = lambda m: T.max if m == 1440 else T(m // 60, m % 60)  # noqa: E731
    return tuple((time_of(marks[i]), time_of(marks[i + 1])) for i in range(0, 2 * n, 2))


@st.composite
def calendars(draw) -> BusinessCalendar:
    weekly = {d: draw(windows()) for d in range(7)}
    weekly[draw(st.integers(0, 6))] = draw(windows(min_size=1))  # at least one working weekday
    days = draw(st.dictionaries(st.dates(dt.date(2026, 1, 1), dt.date(2027, 12, 31)), st.booleans(),
                                max_size=30))
    return BusinessCalendar("rnd", draw(st.sampled_from(ZONES)), weekly, draw(windows()), days)


def _std_variants() -> st.SearchStrategy[BusinessCalendar]:
    holidays = st.dictionaries(st.dates(dt.date(2026, 1, 1), dt.date(2027, 12, 31)), st.booleans(), max_size=30)
    return holidays.map(STD.with_days)


any_calendar = st.one_of(_std_variants(), calendars())
naive = st.datetimes(dt.datetime(2026, 1, 1), dt.datetime(2027, 12, 31)).map(lambda d: d.replace(microsecond=0))
aware = naive.map(lambda d: d.replace(tzinfo=UTC))
starts = st.one_of(naive, aware)
durations = st.integers(0, 200 * 3600)


@PROPS
@given(any_calendar, starts, durations, durations)
def test_monotonic_in_duration(cal, t, s1, s2):
    s1, s2 = sorted((s1, s2))
    assert u(cal.add_seconds(t, s1)) <= u(cal.add_seconds(t, s2))


@PROPS
@given(any_calendar, starts, starts, durations)
def test_monotonic_in_start(cal, t1, t2, s):
    t1, t2 = sorted((cal.local(t1), cal.local(t2)), key=u)
    assert u(cal.add_seconds(t1, s)) <= u(cal.add_seconds(t2, s))


@PROPS
@given(any_calendar, starts, durations, durations)
def test_additive(cal, t, a, b):
    """add(add(t, a), b) == add(t, a + b) for all a, b >= 0, including a == 0 or b == 0.

    This holds because a sum that lands on a window end stays there, and add(x, 0) returns x
    itself when x is inside or at the end of a window (only otherwise the next window's start).
    """
    assert u(cal.add_seconds(cal.add_seconds(t, a), b)) == u(cal.add_seconds(t, a + b))


@PROPS
@given(any_calendar, st.one_of(starts, naive.map(lambda d: d.replace(microsecond=123457))), durations)
def test_inverse(cal, t, s):
    r = cal.add_seconds(t, s)
    assert cal.seconds_between(t, r) == s
    assert r.tzinfo is not None and str(r.tzinfo) == cal.timezone


@PROPS
@given(any_calendar, starts, durations)
def test_lands_in_a_window(cal, t, s):
    r = u(cal.add_seconds(t, s))
    if s > 0:
        assert cal.is_working(r - dt.timedelta(seconds=1))  # inside a window or exactly at its end
    elif u(cal.local(t)) == r:
        assert cal.is_working(r) or cal.is_working(r - dt.timedelta(seconds=1))
    else:  # s == 0 outside working time: the start of the next window, nothing worked in between
        assert u(cal.local(t)) < r and cal.is_working(r) and not cal.is_working(r - dt.timedelta(seconds=1))
        assert cal.seconds_between(t, r) == 0


@PROPS
@given(any_calendar, starts, starts, starts)
def test_seconds_between_splits(cal, a, b, c):
    a, b, c = sorted((a, b, c), key=lambda x: u(cal.local(x)))
    assert cal.seconds_between(a, c) == cal.seconds_between(a, b) + cal.seconds_between(b, c)
    assert cal.seconds_between(c, a) == 0


@PROPS
@given(any_calendar, starts, st.integers(1, 30))
def test_add_days_lands_on_the_nth_working_day(cal, t, n):
    r = cal.add_days(t, n)
    day, working = cal.local(t).date(), []
    while len(working) < n and day < dt.date(2031, 1, 1):
        day += dt.timedelta(days=1)
        if cal.seconds_between(dt.datetime.combine(day, T()), dt.datetime.combine(day, T.max)) > 0:
            working.append(day)
    assume(len(working) == n)
    # on that day, or at 24:00 when it was clamped to a window ending at midnight
    assert r.date() == working[n - 1] or (r.time() == T() and r.date() - dt.timedelta(days=1) == working[n - 1])
    assert cal.is_working(r) or cal.is_working(u(r) - dt.timedelta(seconds=1))
