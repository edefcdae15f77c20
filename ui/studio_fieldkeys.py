"""Studio: the type-specific keys of the field editor (section 3 of docs/config-reference.md).

A link's `filter` / `fetch` / `display`; `precision`, `scale`, `currency`; length limits and
`pattern`; `min` / `max`; `sensitive`. The editor offers only the keys of the field's type; the
values are checked by the engine when the draft is saved, and its messages are put beside the
input they are about (`fields.<id>.<key>` in the message names it).
"""
from __future__ import annotations

import re

from flask_babel import gettext as _

from .studio_yaml import EditError

TEXT_TYPES = ("string", "text", "email", "phone", "url")
NUMBER_TYPES = ("integer", "decimal", "money", "percent")
DECIMAL_TYPES = ("decimal", "money", "percent")
CURRENCIES = ("CNY", "USD", "EUR", "HKD", "TWD", "JPY", "KRW", "GBP", "CHF", "SGD", "AUD", "CAD", "NZD", "INR",
              "RUB", "THB", "MYR", "IDR", "VND", "PHP", "AED", "SAR", "BRL", "MXN", "ZAR", "SEK", "NOK", "DKK")
EXTRA_ROWS = 2          # blank rows offered below a link's filter and fetch entries
KEYS = ("filter", "fetch", "display", "precision", "scale", "currency", "min_length", "max_length", "pattern",
        "min", "max", "sensitive")


def kind_of(spec: dict) -> str:
    """The type the keys follow: a computed field counts as the type of its `result`."""
    return str(spec.get("result") or spec.get("type") or "") if spec.get("compute") else str(spec.get("type") or "")


def offered(spec: dict) -> set[str]:
    """The keys the editor shows for this field."""
    t, computed = kind_of(spec), bool(spec.get("compute"))
    keys = {"sensitive"}
    if t == "link" and not computed:
        keys |= {"filter", "fetch", "display"}
    if t in DECIMAL_TYPES:
        keys |= {"precision", "scale"}
    if t == "money":
        keys.add("currency")
    if t in TEXT_TYPES and not computed:
        keys |= {"min_length", "max_length", "pattern"}
    if t in NUMBER_TYPES and not computed:
        keys |= {"min", "max"}
    return keys


def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def values_from_spec(spec: dict) -> dict:
    """What the inputs show for a field as it is."""
    out = {k: _text(spec.get(k)) for k in ("precision", "scale", "currency", "min_length", "max_length",
                                           "pattern", "min", "max")}
    out["sensitive"] = bool(spec.get("sensitive"))
    rows = []
    for there, value in (spec.get("filter") or {}).items():
        if isinstance(value, str):
            rows.append({"key": there, "src": "field:" + value, "value": ""})
        else:
            const = value.get("value") if isinstance(value, dict) else value
            rows.append({"key": there, "src": "const", "value": _text(const)})
    out["filter_rows"] = rows + [{"key": "", "src": "", "value": ""}] * EXTRA_ROWS
    out["fetch_rows"] = [{"here": h, "there": _text(t)} for h, t in (spec.get("fetch") or {}).items()] \
        + [{"here": "", "there": ""}] * EXTRA_ROWS
    out["display"] = [str(d) for d in spec.get("display") or ()]
    return out


def values_from_form(form) -> dict:
    """What the admin sent, shown again when the draft is refused."""
    out = {k: (form.get(k) or "").strip() for k in ("precision", "scale", "currency", "min_length", "max_length",
                                                    "pattern", "min", "max")}
    out["pattern"] = form.get("pattern") or ""
    out["sensitive"] = bool(form.get("sensitive"))
    keys, srcs, vals = form.getlist("filter_key"), form.getlist("filter_src"), form.getlist("filter_value")
    out["filter_rows"] = [{"key": k, "src": s, "value": v} for k, s, v in zip(keys, srcs, vals)]
    heres, theres = form.getlist("fetch_here"), form.getlist("fetch_there")
    out["fetch_rows"] = [{"here": h, "there": t} for h, t in zip(heres, theres)]
    out["display"] = [d for d in form.getlist("display") if d]
    return out


def _whole(raw: str, key: str):
    raw = (raw or "").strip()
    if not raw:
        return None
    if not re.fullmatch(r"-?\d+", raw):
        raise EditError(_("Enter a whole number."), key)
    return int(raw)


def _number(raw: str, key: str):
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise EditError(_("Enter a number."), key) from None
    return int(value) if value.is_integer() and re.fullmatch(r"-?\d+", raw) else value


def _constant(raw: str):
    """A filter constant as the docs write it: true, false, a number, else {value: text}."""
    raw = raw.strip()
    if raw in ("true", "false"):
        return raw == "true"
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if re.fullmatch(r"-?\d+\.\d+", raw):
        return float(raw)
    return {"value": raw}


def _set(spec: dict, key: str, value) -> None:
    if value is None or value == "" or value == {} or value == []:
        spec.pop(key, None)
    else:
        spec[key] = value


def apply(spec: dict, form) -> dict:
    """`spec` with the offered keys set from the form (a key left empty is removed; others kept)."""
    keys = offered(spec)
    out = dict(spec)
    if "sensitive" in keys:
        _set(out, "sensitive", True if form.get("sensitive") else None)
    for key in ("precision", "scale", "min_length", "max_length"):
        if key in keys:
            _set(out, key, _whole(form.get(key), key))
    for key in ("min", "max"):
        if key in keys:
            _set(out, key, _number(form.get(key), key))
    if "currency" in keys:
        _set(out, "currency", (form.get("currency") or "").strip())
    if "pattern" in keys:
        _set(out, "pattern", form.get("pattern") or "")
    if "filter" in keys:
        flt = {}
        keys_, srcs, vals = form.getlist("filter_key"), form.getlist("filter_src"), form.getlist("filter_value")
        for there, src, val in zip(keys_, srcs, vals):
            there, src = there.strip(), src.strip()
            if not there and not src:
                continue
            if not there or not src or (src == "const" and not val.strip()):
                raise EditError(_("A filter entry needs a field of the linked entity and a field or a constant."),
                                "filter")
            flt[there] = _constant(val) if src == "const" else src.removeprefix("field:")
        _set(out, "filter", flt)
    if "fetch" in keys:
        fetch = {}
        for here, there in zip(form.getlist("fetch_here"), form.getlist("fetch_there")):
            here, there = here.strip(), there.strip()
            if not here and not there:
                continue
            if not here or not there:
                raise EditError(_("A copied value needs a field here and a field of the linked record."), "fetch")
            fetch[here] = there
        _set(out, "fetch", fetch)
    if "display" in keys:
        _set(out, "display", [d for d in dict.fromkeys(form.getlist("display")) if d])
    return out


PROBLEM_KEY = re.compile(r"fields\.(?P<fid>[a-z][a-z0-9_]*)\.(?P<key>[a-z_]+)")


def split_problems(problems: list[str], fid: str, inputs: set[str]) -> tuple[dict, list[str]]:
    """({input: message}, the rest): a check message about `fields.<fid>.<key>` goes beside that input."""
    errors: dict = {}
    rest = []
    for p in problems:
        m = next((m for m in PROBLEM_KEY.finditer(p) if m["fid"] == fid and m["key"] in inputs), None)
        if m:
            msg = p[m.start("key"):]
            errors[m["key"]] = (errors[m["key"]] + " " + msg) if m["key"] in errors else msg
        else:
            rest.append(p)
    return errors, rest
