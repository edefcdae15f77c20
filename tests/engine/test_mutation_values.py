"""Field values as a person types them: what is stored, what is shown back, and the message on refusal.

Written against the survivors of `make mutate MODULE=engine/values.py` (docs/testing.md): each test
pins a behaviour a user would notice, a wrong value kept or a bad value let through.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import MappingProxyType

import pytest

from engine.model import Entity, Field, Option
from engine.values import check_limits, coerce, empty, masked, record_to_json, to_json


def fld(type_, **kw) -> Field:
    return Field(id=kw.pop("id", "f"), type=type_, label={"en": "F", "zh": "F"}, **kw)


def refused(f: Field, v) -> str:
    with pytest.raises(ValueError) as e:
        coerce(f, v)
    return str(e.value)


SHA = "ab" * 32


# --- empty input -------------------------------------------------------------------------------

@pytest.mark.parametrize("v", [None, "", "   ", [], ()])
def test_empty_input_is_no_value(v):
    assert empty(v) is True
    assert coerce(fld("string"), v) is None


@pytest.mark.parametrize("v", ["x", 0, False, [""], {"a": 1}])
def test_values_that_are_not_empty(v):
    assert empty(v) is False


def test_empty_multiselect_list_stays_an_empty_list_but_blank_text_is_no_value():
    assert coerce(fld("multiselect"), []) == []
    assert coerce(fld("multiselect"), "") is None
    assert coerce(fld("string"), []) is None


# --- text types ----------------------------------------------------------------------------------

def test_single_line_text_is_trimmed_multi_line_text_is_kept_as_typed():
    assert coerce(fld("string"), "  Ada  ") == "Ada"
    assert coerce(fld("text"), "  line 1\n\tline 2  ") == "  line 1\n\tline 2  "
    assert coerce(fld("string"), 42) == "42"


@pytest.mark.parametrize("v", [{"a": 1}, ["a"], True])
def test_text_refuses_structures_and_booleans(v):
    assert refused(fld("string"), v) == "expected text"


def test_text_refuses_control_characters_and_names_them():
    assert refused(fld("string"), "a\x00b") == "contains a control character (U+0000), which is not allowed"
    assert refused(fld("string"), "a\x1bb") == "contains a control character (U+001B), which is not allowed"
    assert refused(fld("string"), "a\x7f") == "contains a control character (U+007F), which is not allowed"
    assert refused(fld("string"), "a\nb") == "contains a control character (U+000A), which is not allowed"
    assert refused(fld("text"), "a\x00b") == "contains a control character (U+0000), which is not allowed"
    assert coerce(fld("text"), "a\r\nb\tc") == "a\r\nb\tc"


def test_text_refuses_a_lone_surrogate():
    assert refused(fld("string"), "a\ud800") == "contains an invalid character (a lone UTF-16 surrogate)"
    assert refused(fld("text"), "\udfff") == "contains an invalid character (a lone UTF-16 surrogate)"


def test_email_phone_url_are_checked_and_the_message_quotes_the_input():
    assert coerce(fld("email"), " ada@example.org ") == "ada@example.org"
    assert refused(fld("email"), "ada@example") == "'ada@example' is not an e-mail address"
    assert refused(fld("email"), "ada example@x.org") == "'ada example@x.org' is not an e-mail address"
    assert coerce(fld("phone"), "+86 (10) 1234-5678") == "+86 (10) 1234-5678"
    assert refused(fld("phone"), "call me") == "'call me' is not a phone number"
    assert coerce(fld("url"), "HTTPS://example.org/a?b=1") == "HTTPS://example.org/a?b=1"
    assert refused(fld("url"), "ftp://example.org") == "'ftp://example.org' is not a web address (http:// or https://)"
    assert refused(fld("url"), "https://exa mple.org") \
        == "'https://exa mple.org' is not a web address (http:// or https://)"


def test_autonumber_and_state_values_are_text():
    assert coerce(fld("autonumber"), " ACC-2024-0001 ") == "ACC-2024-0001"
    assert coerce(fld("state"), " won ") == "won"
    assert refused(fld("state"), ["won"]) == "expected text"


def test_email_rules_do_not_apply_to_other_text_types():
    assert coerce(fld("string"), "not an email") == "not an email"
    assert coerce(fld("phone"), "12345") == "12345"


def test_select_takes_only_its_options_and_lists_them_on_refusal():
    f = fld("select", options=(Option("new", {"en": "New"}), Option("won", {"en": "Won"})))
    assert coerce(f, " won ") == "won"
    assert refused(f, "lost") == "'lost' is not one of new, won"
    assert coerce(fld("select"), "anything") == "anything"          # no options declared: free text


# --- numbers -------------------------------------------------------------------------------------

def test_integer_accepts_whole_numbers_in_any_spelling():
    assert coerce(fld("integer"), " 42 ") == 42
    assert coerce(fld("integer"), "42.0") == 42
    assert coerce(fld("integer"), -7) == -7
    assert coerce(fld("integer"), 2 ** 31 - 1) == 2 ** 31 - 1
    assert coerce(fld("integer"), -(2 ** 31 - 1)) == -(2 ** 31 - 1)
    assert type(coerce(fld("integer"), "3")) is int


def test_integer_refusals():
    assert refused(fld("integer"), True) == "expected a whole number"
    assert refused(fld("integer"), "abc") == "'abc' is not a whole number"
    assert refused(fld("integer"), "1.5") == "'1.5' is not a whole number"
    assert refused(fld("integer"), 2 ** 31) == "the number is too large"
    assert refused(fld("integer"), -(2 ** 31)) == "the number is too large"


def test_decimal_rounds_half_up_to_the_scale_and_accepts_thousands_separators():
    assert coerce(fld("decimal"), "1,234.5") == Decimal("1234.50")
    assert coerce(fld("money"), "2.345") == Decimal("2.35")
    assert coerce(fld("money"), "-2.345") == Decimal("-2.35")
    assert coerce(fld("decimal", scale=0), "2.5") == Decimal("3")
    assert coerce(fld("decimal", scale=4), "0.00005") == Decimal("0.0001")
    assert coerce(fld("decimal"), Decimal("1.005")) == Decimal("1.01")
    assert coerce(fld("decimal"), 7) == Decimal("7.00")
    assert str(coerce(fld("money"), "3")) == "3.00"


def test_decimal_refusals():
    assert refused(fld("decimal"), True) == "expected a number"
    assert refused(fld("decimal"), "12abc") == "'12abc' is not a number"
    assert refused(fld("decimal"), "NaN") == "expected a finite number"
    assert refused(fld("decimal"), "Infinity") == "expected a finite number"


def test_decimal_size_limit_follows_precision_and_scale():
    # default decimal: 18 digits, 2 after the point -> 16 before it
    assert coerce(fld("decimal"), "9" * 16) == Decimal("9" * 16 + ".00")
    assert refused(fld("decimal"), "1" + "0" * 16) \
        == "the number is too large (at most 16 digits before the decimal point)"
    # rounding up may carry into one digit more than allowed
    assert refused(fld("decimal"), "9" * 16 + ".999") \
        == "the number is too large (at most 16 digits before the decimal point)"
    # far too large for Decimal's own context: still a message, not a crash
    assert refused(fld("decimal"), "1e40").startswith("the number is too large")
    # percent: 9 digits, 2 after the point -> 7 before
    assert coerce(fld("percent"), "9999999") == Decimal("9999999.00")
    assert refused(fld("percent"), "10000000") == "the number is too large (at most 7 digits before the decimal point)"
    # declared precision and scale
    f = fld("decimal", precision=5, scale=3)
    assert coerce(f, "12.3456") == Decimal("12.346")
    assert refused(f, "123") == "the number is too large (at most 2 digits before the decimal point)"
    assert refused(f, "99.9999") == "the number is too large (at most 2 digits before the decimal point)"
    assert coerce(f, "99.9994") == Decimal("99.999")
    # whole numbers only (scale 0): rounding 99999.6 up gives six digits where five are allowed
    w = fld("decimal", precision=5, scale=0)
    assert coerce(w, "99999.4") == Decimal("99999")
    assert refused(w, "99999.6") == "the number is too large (at most 5 digits before the decimal point)"


# --- booleans, dates ---------------------------------------------------------------------------

@pytest.mark.parametrize("v,want", [(True, True), (False, False), ("true", True), (" YES ", True), ("on", True),
                                    ("1", True), ("false", False), ("No", False), ("off", False), ("0", False),
                                    (1, True), (0, False)])
def test_boolean_spellings(v, want):
    assert coerce(fld("boolean"), v) is want


def test_boolean_refuses_anything_else():
    assert refused(fld("boolean"), "maybe") == "expected true or false"


def test_dates():
    assert coerce(fld("date"), " 2024-02-29 ") == dt.date(2024, 2, 29)
    assert coerce(fld("date"), dt.datetime(2024, 1, 2, 23, 59)) == dt.date(2024, 1, 2)
    assert type(coerce(fld("date"), dt.datetime(2024, 1, 2, 23, 59))) is dt.date
    assert coerce(fld("date"), dt.date(2024, 1, 2)) == dt.date(2024, 1, 2)
    assert refused(fld("date"), "2023-02-29") == "'2023-02-29' is not a date (YYYY-MM-DD)"


def test_datetimes_are_stored_as_naive_utc():
    assert coerce(fld("datetime"), "2024-01-02T10:30") == dt.datetime(2024, 1, 2, 10, 30)
    assert coerce(fld("datetime"), "2024-01-02T10:30:00Z") == dt.datetime(2024, 1, 2, 10, 30)
    assert coerce(fld("datetime"), "2024-01-02T10:30:00+08:00") == dt.datetime(2024, 1, 2, 2, 30)
    aware = dt.datetime(2024, 1, 2, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert coerce(fld("datetime"), aware) == dt.datetime(2024, 1, 2, 15, 30)
    assert coerce(fld("datetime"), aware).tzinfo is None
    naive = dt.datetime(2024, 1, 2, 10, 30)
    assert coerce(fld("datetime"), naive) == naive
    assert refused(fld("datetime"), "tomorrow") == "'tomorrow' is not a date and time (YYYY-MM-DDTHH:MM)"


def test_datetimes_are_stored_as_utc_whatever_the_server_time_zone(monkeypatch):
    import time
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        assert coerce(fld("datetime"), "2024-01-02T10:30:00+02:00") == dt.datetime(2024, 1, 2, 8, 30)
    finally:
        monkeypatch.undo()
        time.tzset()


# --- multiselect, links, files -------------------------------------------------------------------

def test_multiselect_from_text_or_list_keeps_order_and_drops_repeats():
    f = fld("multiselect", options=(Option("a", {"en": "A"}), Option("b", {"en": "B"}), Option("c", {"en": "C"})))
    assert coerce(f, " b, a ,,b ") == ["b", "a"]
    assert coerce(f, ["c", "a", "c"]) == ["c", "a"]
    assert refused(f, "a,x,y") == "x, y not among a, b, c"
    assert refused(f, ["a", 3]) == "3 not among a, b, c"
    assert refused(f, ["a\x00"]) == "contains a control character, which is not allowed"
    assert refused(f, ["\ud800"]) == "contains a control character, which is not allowed"
    assert coerce(fld("multiselect"), "x, y") == ["x", "y"]        # no options declared: free tags


def test_link_takes_an_id_or_a_picked_record():
    f = fld("link", to="other")
    assert coerce(f, " 12 ") == 12
    assert coerce(f, {"id": 7, "title": "Seven"}) == 7
    assert coerce(f, 2 ** 31 - 1) == 2 ** 31 - 1
    assert coerce(fld("user"), "3") == 3
    assert refused(f, True) == "expected a record id"
    assert refused(f, "abc") == "'abc' is not a record id"
    assert refused(f, "0") == "'0' is not a record id (out of range)"
    assert refused(f, "-4") == "'-4' is not a record id (out of range)"
    assert refused(f, 2 ** 31) == f"{2 ** 31!r} is not a record id (out of range)"
    assert refused(f, {"title": "no id"}) == "{'title': 'no id'} is not a record id"


def test_attachment_keeps_only_its_known_keys():
    v = {"name": "a.pdf", "sha256": SHA, "size": 10, "mime": "application/pdf", "extra": "x"}
    assert coerce(fld("attachment"), v) == {"name": "a.pdf", "sha256": SHA, "size": 10, "mime": "application/pdf"}
    assert coerce(fld("attachment"), {"sha256": SHA}) == {"sha256": SHA}
    assert coerce(fld("attachment"), {"sha256": SHA, "size": 0, "name": None}) == {"sha256": SHA, "size": 0,
                                                                                    "name": None}
    assert coerce(fld("attachment"), {"sha256": SHA, "name": "n" * 255})["name"] == "n" * 255
    assert coerce(fld("attachment"), {"sha256": SHA, "size": 5_000_000})["size"] == 5_000_000
    assert coerce(fld("attachment"), {"sha256": SHA, "size": 2 ** 53 - 1})["size"] == 2 ** 53 - 1


@pytest.mark.parametrize("v,msg", [
    ("a.pdf", "expected an uploaded file"),
    ({"name": "a.pdf"}, "expected an uploaded file"),
    ({"sha256": "AB" * 32}, "sha256 is not a file reference (64 lower-case hexadecimal digits)"),
    ({"sha256": SHA + "0"}, "sha256 is not a file reference (64 lower-case hexadecimal digits)"),
    ({"sha256": 5}, "sha256 is not a file reference (64 lower-case hexadecimal digits)"),
    ({"sha256": SHA, "name": "n" * 256}, "name must be text of at most 255 characters"),
    ({"sha256": SHA, "mime": 3}, "mime must be text of at most 255 characters"),
    ({"sha256": SHA, "name": "a\x00.pdf"}, "name contains a control character, which is not allowed"),
    ({"sha256": SHA, "mime": "text/\ud800"}, "mime contains a control character, which is not allowed"),
    ({"sha256": SHA, "size": -1}, "size must be a whole number of bytes"),
    ({"sha256": SHA, "size": 2 ** 53}, "size must be a whole number of bytes"),
    ({"sha256": SHA, "size": True}, "size must be a whole number of bytes"),
    ({"sha256": SHA, "size": 1.5}, "size must be a whole number of bytes"),
])
def test_attachment_refusals(v, msg):
    assert refused(fld("attachment"), v) == msg


def test_unknown_type_is_refused_by_name():
    assert refused(fld("hologram"), "x") == "unsupported type hologram"


# --- shown back: to_json, record_to_json, masked ----------------------------------------------------

def test_to_json():
    assert to_json(None, None) is None
    assert to_json(None, Decimal("1.50")) == 1.5 and isinstance(to_json(None, Decimal("1.50")), float)
    assert to_json(None, Decimal("1.50"), exact=True) == Decimal("1.50")
    assert isinstance(to_json(None, Decimal("1.50"), exact=True), Decimal)
    assert to_json(None, dt.datetime(2024, 1, 2, 3, 4, 5, 678)) == "2024-01-02T03:04:05"
    assert to_json(None, dt.datetime(2024, 1, 2, 3, 4, 5), utc=True) == "2024-01-02T03:04:05Z"
    aware = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert to_json(None, aware, utc=True) == "2024-01-02T03:04:05+00:00"
    assert to_json(None, dt.date(2024, 1, 2)) == "2024-01-02"
    assert to_json(None, "x") == "x" and to_json(None, 3) == 3 and to_json(None, False) is False


def test_record_to_json_nests_child_rows():
    child = Entity(id="line", label={"en": "Line"}, fields=MappingProxyType({
        "amount": fld("money", id="amount"), "on": fld("date", id="on"), "at": fld("datetime", id="at")}),
        child=True)
    parent = Entity(id="doc", label={"en": "Doc"}, fields=MappingProxyType({
        "total": fld("money", id="total"), "lines": fld("table", id="lines", of="line"),
        "at": fld("datetime", id="at"), "tags": fld("multiselect", id="tags")}))
    config = type("C", (), {"entities": {"line": child, "doc": parent}})()
    rec = {"id": 1, "total": Decimal("3.50"), "at": dt.datetime(2024, 1, 2, 3, 4), "tags": ["a", "b"],
           "lines": [{"amount": Decimal("1.25"), "on": dt.date(2024, 1, 2), "at": dt.datetime(2024, 1, 3, 4, 5)}]}
    plain = record_to_json(config, parent, rec)
    assert plain == {"id": 1, "total": 3.5, "at": "2024-01-02T03:04:00", "tags": ["a", "b"],
                     "lines": [{"amount": 1.25, "on": "2024-01-02", "at": "2024-01-03T04:05:00"}]}
    assert type(plain["total"]) is float and type(plain["lines"][0]["amount"]) is float
    exact = record_to_json(config, parent, rec, exact=True, utc=True)
    assert exact["total"] == Decimal("3.50") and isinstance(exact["total"], Decimal)
    assert exact["lines"][0]["amount"] == Decimal("1.25") and isinstance(exact["lines"][0]["amount"], Decimal)
    assert exact["at"] == "2024-01-02T03:04:00Z"
    assert exact["lines"][0]["at"] == "2024-01-03T04:05:00Z"         # child rows carry the zone too
    assert exact["tags"] == ["a", "b"]
    zoned = record_to_json(config, parent, rec, utc=True)
    assert zoned["lines"][0]["at"] == "2024-01-03T04:05:00Z" and type(zoned["lines"][0]["amount"]) is float


def test_masked_hides_only_encrypted_values_that_are_set():
    ent = Entity(id="p", label={"en": "P"}, fields=MappingProxyType({
        "name": fld("string", id="name"), "ssn": fld("string", id="ssn", encrypted=True),
        "pin": fld("string", id="pin", encrypted=True)}))
    rec = {"name": "Ada", "ssn": "123", "pin": None}
    assert masked(ent, rec) == {"name": "Ada", "ssn": "***", "pin": None}
    assert rec["ssn"] == "123"                          # the record itself is not changed
    plain = {"name": "Ada", "pin": None}
    assert masked(ent, plain) == plain


# --- limits -----------------------------------------------------------------------------------------

def test_text_limits_and_messages():
    f = fld("string", max_length=5, min_length=2)
    assert check_limits(f, "abcde") is None
    assert check_limits(f, "abcdef") == "at most 5 characters (6 given)"
    assert check_limits(f, "ab") is None
    assert check_limits(f, "a") == "at least 2 characters"
    assert check_limits(fld("string"), "x" * 255) is None
    assert check_limits(fld("string"), "x" * 256) == "at most 255 characters (256 given)"
    assert check_limits(fld("string", max_length=300), "x" * 300) is None
    assert check_limits(fld("text"), "x" * 100_000) is None
    assert check_limits(fld("string"), None) is None


def test_pattern_must_match_the_whole_value():
    f = fld("string", pattern="[A-Z]{3}")
    assert check_limits(f, "ABC") is None
    assert check_limits(f, "ABCD") == "does not match the expected pattern [A-Z]{3}"
    assert check_limits(f, "xABC") == "does not match the expected pattern [A-Z]{3}"


def test_number_ranges_are_inclusive():
    f = fld("integer", min=1, max=10)
    assert check_limits(f, 1) is None and check_limits(f, 10) is None
    assert check_limits(f, 0) == "must be at least 1"
    assert check_limits(f, 11) == "must be at most 10"
    d = fld("decimal", min=0.5, max=2.5)
    assert check_limits(d, Decimal("0.50")) is None and check_limits(d, Decimal("2.50")) is None
    assert check_limits(d, Decimal("0.49")) == "must be at least 0.5"
    assert check_limits(d, Decimal("2.51")) == "must be at most 2.5"
    assert check_limits(fld("integer", min=0), 0) is None
    assert check_limits(fld("integer", max=0), 1) == "must be at most 0"


def test_percent_defaults_to_0_to_100_unless_ranged_or_computed():
    p = fld("percent")
    assert check_limits(p, Decimal("0")) is None and check_limits(p, Decimal("100")) is None
    assert check_limits(p, Decimal("100.01")) == "must be between 0 and 100"
    assert check_limits(p, Decimal("-0.01")) == "must be between 0 and 100"
    assert check_limits(fld("percent", max=200), Decimal("150")) is None
    assert check_limits(fld("percent", min=-50), Decimal("-20")) is None
    assert check_limits(fld("computed", result="percent", compute="a / b"), Decimal("250")) is None
    assert check_limits(fld("decimal"), Decimal("250")) is None


def test_booleans_are_not_range_checked():
    assert check_limits(fld("boolean", min=5), True) is None
