"""Field values: from JSON input to Python/DB values, and back to JSON.

`coerce()` raises ValueError with a message a person can act on; the store collects them per field.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation, ROUND_HALF_UP

from .model import Field

EMAIL_RX = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_RX = re.compile(r"^\+?[0-9 ()\-.]{3,40}$")
URL_RX = re.compile(r"^https?://[^\s]+$", re.I)
TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off"}


def empty(v) -> bool:
    return v is None or (isinstance(v, str) and v.strip() == "") or (isinstance(v, (list, tuple)) and not v)


MAX_ID = 2 ** 31 - 1          # record ids are INTEGER columns on both databases
_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 control characters (NUL, ESC, …) and DEL: never part of a value. Multi-line text keeps TAB, LF and CR.
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_CONTROL_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SHA256 = re.compile("[0-9a-f]{64}")


def _decimal(v, f: Field) -> Decimal:
    if isinstance(v, bool):
        raise ValueError("expected a number")
    try:
        d = Decimal(str(v).strip().replace(",", "")) if not isinstance(v, Decimal) else v
    except InvalidOperation:
        raise ValueError(f"{v!r} is not a number") from None
    if not d.is_finite():
        raise ValueError("expected a finite number")
    scale = f.scale if f.scale is not None else 2
    precision = f.precision or (9 if f.value_type == "percent" else 18)
    too_large = ValueError(f"the number is too large (at most {precision - scale} digits before the decimal point)")
    if d.adjusted() >= precision - scale:          # checked before quantize, which fails past 28 digits
        raise too_large
    try:
        q = d.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise too_large from None
    if len(q.as_tuple().digits) - max(0, -q.as_tuple().exponent) > precision - scale:
        raise too_large
    return q


def coerce(f: Field, v):
    """Turn an input value into the stored Python value, or raise ValueError."""
    if empty(v):
        return [] if f.value_type == "multiselect" and v == [] else None
    t = f.value_type
    if t in ("string", "text", "email", "phone", "url", "select", "autonumber", "state"):
        if isinstance(v, (dict, list, bool)):
            raise ValueError("expected text")
        s = str(v).strip() if t != "text" else str(v)
        if _SURROGATE.search(s):
            raise ValueError("contains an invalid character (a lone UTF-16 surrogate)")
        bad = (_CONTROL_IN_TEXT if t == "text" else _CONTROL).search(s)
        if bad:
            raise ValueError(f"contains a control character (U+{ord(bad.group()):04X}), which is not allowed")
        if t == "email" and not EMAIL_RX.match(s):
            raise ValueError(f"{s!r} is not an e-mail address")
        if t == "phone" and not PHONE_RX.match(s):
            raise ValueError(f"{s!r} is not a phone number")
        if t == "url" and not URL_RX.match(s):
            raise ValueError(f"{s!r} is not a web address (http:// or https://)")
        if t == "select" and f.options and s not in f.option_values:
            raise ValueError(f"{s!r} is not one of {', '.join(f.option_values)}")
        return s
    if t == "integer":
        if isinstance(v, bool):
            raise ValueError("expected a whole number")
        try:
            d = Decimal(str(v).strip())
        except InvalidOperation:
            raise ValueError(f"{v!r} is not a whole number") from None
        if d != d.to_integral_value():
            raise ValueError(f"{v!r} is not a whole number")
        if abs(d) > 2 ** 31 - 1:
            raise ValueError("the number is too large")
        return int(d)
    if t in ("decimal", "money", "percent"):
        return _decimal(v, f)
    if t == "boolean":
        if isinstance(v, bool):
            return v
        s = str(v).strip().lower()
        if s in TRUE:
            return True
        if s in FALSE:
            return False
        raise ValueError("expected true or false")
    if t == "date":
        if isinstance(v, dt.datetime):
            return v.date()
        if isinstance(v, dt.date):
            return v
        try:
            return dt.date.fromisoformat(str(v).strip())
        except ValueError:
            raise ValueError(f"{v!r} is not a date (YYYY-MM-DD)") from None
    if t == "datetime":
        if isinstance(v, dt.datetime):
            d = v
        else:
            try:
                d = dt.datetime.fromisoformat(str(v).strip().replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"{v!r} is not a date and time (YYYY-MM-DDTHH:MM)") from None
        if d.tzinfo is not None:
            d = d.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return d
    if t == "multiselect":
        items = v if isinstance(v, list) else [x.strip() for x in str(v).split(",") if x.strip()]
        if any(isinstance(x, str) and (_CONTROL.search(x) or _SURROGATE.search(x)) for x in items):
            raise ValueError("contains a control character, which is not allowed")
        bad = [x for x in items if not isinstance(x, str) or (f.options and x not in f.option_values)]
        if bad:
            raise ValueError(f"{', '.join(map(str, bad))} not among {', '.join(f.option_values)}")
        return list(dict.fromkeys(items))
    if t in ("link", "user"):
        if isinstance(v, dict) and "id" in v:
            v = v["id"]
        if isinstance(v, bool):
            raise ValueError("expected a record id")
        try:
            n = int(str(v).strip())
        except ValueError:
            raise ValueError(f"{v!r} is not a record id") from None
        if not 0 < n <= MAX_ID:
            raise ValueError(f"{v!r} is not a record id (out of range)")
        return n
    if t == "attachment":
        if not isinstance(v, dict) or "sha256" not in v:
            raise ValueError("expected an uploaded file")
        if not isinstance(v["sha256"], str) or not _SHA256.fullmatch(v["sha256"]):
            raise ValueError("sha256 is not a file reference (64 lower-case hexadecimal digits)")
        for k in ("name", "mime"):
            if k in v and v[k] is not None:
                if not isinstance(v[k], str) or len(v[k]) > 255:
                    raise ValueError(f"{k} must be text of at most 255 characters")
                if _CONTROL.search(v[k]) or _SURROGATE.search(v[k]):
                    raise ValueError(f"{k} contains a control character, which is not allowed")
        if "size" in v and v["size"] is not None and (isinstance(v["size"], bool) or not isinstance(v["size"], int)
                                                      or not 0 <= v["size"] < 2 ** 53):
            raise ValueError("size must be a whole number of bytes")
        return {k: v[k] for k in ("name", "sha256", "size", "mime") if k in v}
    raise ValueError(f"unsupported type {t}")


def to_json(f: Field | None, v, exact: bool = False, utc: bool = False):
    """A stored value as JSON-ready data. `exact`: decimals stay Decimal, for a serializer that writes
    them as JSON numbers digit for digit (the API's); otherwise float. `utc`: a stored (naive UTC)
    datetime carries its zone, `…Z`, as RFC 3339 `date-time` requires (the API's)."""
    if v is None:
        return None
    if isinstance(v, Decimal):
        return v if exact else float(v)
    if isinstance(v, dt.datetime):
        text = v.replace(microsecond=0).isoformat()
        return text + "Z" if utc and v.tzinfo is None else text
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def check_limits(f: Field, v) -> str | None:
    """Length, range and pattern checks on a coerced value; a message or None."""
    if v is None:
        return None
    if isinstance(v, str):
        if f.max_length and len(v) > f.max_length:
            return f"at most {f.max_length} characters ({len(v)} given)"
        if f.min_length and len(v) < f.min_length:
            return f"at least {f.min_length} characters"
        from .tables import DEFAULT_LENGTH
        limit = DEFAULT_LENGTH.get(f.value_type)
        if limit and not f.max_length and len(v) > limit:
            return f"at most {limit} characters ({len(v)} given)"
        if f.pattern and not re.fullmatch(f.pattern, v):
            return f"does not match the expected pattern {f.pattern}"
    if isinstance(v, (int, Decimal)) and not isinstance(v, bool):
        if f.min is not None and v < Decimal(str(f.min)):
            return f"must be at least {f.min}"
        if f.max is not None and v > Decimal(str(f.max)):
            return f"must be at most {f.max}"
        if f.value_type == "percent" and f.min is None and f.max is None and not (0 <= v <= 100) and not f.computed:
            return "must be between 0 and 100"
    return None


def record_to_json(config, entity, rec: dict, exact: bool = False, utc: bool = False) -> dict:
    """A record as a JSON-ready dict: ISO dates, numbers for decimals, child rows nested."""
    out = {}
    for k, v in rec.items():
        f = entity.fields.get(k)
        if f is not None and f.type == "table" and isinstance(v, list):
            child = config.entities[f.of]
            out[k] = [record_to_json(config, child, row, exact, utc) for row in v]
        else:
            out[k] = to_json(f, v, exact, utc)
    return out


def masked(entity, rec: dict) -> dict:
    """The record with encrypted fields' values replaced by "***" (for logs and outside systems)."""
    secret = [f.id for f in entity.fields.values() if getattr(f, "encrypted", False) and rec.get(f.id) is not None]
    return {**rec, **{k: "***" for k in secret}} if secret else rec
