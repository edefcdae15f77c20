"""Values as people read them: per field type, in the request's language. Returns plain text
(or Markup built only from escaped parts), so templates stay autoescaped."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from markupsafe import Markup, escape

from engine.model import Field, label_of


def option_label(f: Field, value, lang: str) -> str:
    for o in f.options:
        if o.value == value:
            return label_of(o.label, lang, o.value)
    return str(value)


def option_color(f: Field, value) -> str | None:
    for o in f.options:
        if o.value == value:
            return o.color
    return None


def number(v, scale: int | None) -> str:
    if v is None:
        return ""
    if isinstance(v, (int,)) and not isinstance(v, bool):
        return f"{v:,}"
    d = Decimal(str(v))
    s = scale if scale is not None else 2
    return f"{d:,.{s}f}"


# How an amount's currency (a money field's `currency`) is written before it; other codes as "CHF 10.00".
CURRENCY_SIGNS = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "JP¥", "HKD": "HK$", "TWD": "NT$"}


def money(v, f: Field) -> str:
    text = number(v, f.scale)
    if not f.currency:
        return text
    sign = CURRENCY_SIGNS.get(f.currency)
    if sign is None:
        return f"{f.currency} {text}"
    return f"-{sign}{text[1:]}" if text.startswith("-") else f"{sign}{text}"


def fmt(f: Field, v, lang: str = "en", titles: dict | None = None, users: dict | None = None,
        states: dict | None = None):
    """Display text of one value. `titles` maps link ids to titles, `users` user ids to names,
    `states` state ids to labels (from the workflow)."""
    if v is None or v == "" or v == []:
        return ""
    t = f.value_type
    if t == "money":
        return money(v, f)
    if t == "decimal":
        return number(v, f.scale)
    if t == "percent":
        return f"{number(v, f.scale)} %"
    if t == "integer":
        return number(v, 0) if f.id not in ("id", "version") else str(v)
    if t == "boolean":
        return "✓" if v else "✗"
    if t == "select":
        return option_label(f, v, lang)
    if t == "multiselect":
        return ", ".join(option_label(f, x, lang) for x in (v or []))
    if t == "state":
        return (states or {}).get(v, v)
    if t == "datetime":
        return v.strftime("%Y-%m-%d %H:%M") if isinstance(v, dt.datetime) else str(v)
    if t == "date":
        return v.isoformat() if isinstance(v, dt.date) else str(v)
    if t == "link":
        return (titles or {}).get(v) or f"#{v}"
    if t == "user":
        return (users or {}).get(v) or f"#{v}"
    if t == "attachment":
        return v.get("name", "file") if isinstance(v, dict) else str(v)
    return str(v)


def badge(text: str, color: str | None) -> Markup:
    attr = f' data-color="{escape(color)}"' if color and all(c.isalnum() or c in "#" for c in color) else ""
    return Markup(f'<span class="badge"{attr}>{escape(text)}</span>')  # ui.js applies the colour (CSP)


def to_input(f: Field, v):
    """A stored value as the string (or list of strings) an <input> shows."""
    if v is None:
        return [] if f.value_type == "multiselect" else ""
    t = f.value_type
    if t == "multiselect":
        return [str(x) for x in v]
    if t == "boolean":
        return "true" if v else "false"
    if t == "datetime":
        return v.strftime("%Y-%m-%d %H:%M") if isinstance(v, dt.datetime) else str(v)
    if t == "date":
        return v.isoformat() if isinstance(v, dt.date) else str(v)
    if t in ("money", "decimal", "percent"):
        return str(v)
    if t == "attachment":
        return v
    return str(v)
