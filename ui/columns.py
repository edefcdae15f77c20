"""The columns of a list page, so that it fits its window: which fields are shown by default, how
wide each kind of column is, which go first on a narrow screen, the money totals and the
deadlines that have passed.

A list must fit a 1366-pixel-wide window (DESIGN: daily work). The table is laid out with a fixed
layout: narrow kinds (dates, money, badges…) get a width from their CSS class, text and links share
what is left and are cut with "…" (the cell's tooltip holds the whole value). The default columns
are the entity's list columns, taken in order while their estimated widths fit `BUDGET_REM`; the
others stay in the column chooser.
"""
from __future__ import annotations

import datetime as dt
import re

from engine.model import Entity, Field

TITLE_PART = re.compile(r"\{(\w+)\}")
BUDGET_REM = 80          # of a 1366 px window: 86 rem of content at 15.2 px, less the check box column
SLA_REM = 9
# per value type: (CSS width class or "" for a column that takes a share of the rest, estimated rem)
WIDTHS = {
    "boolean": ("w-xs", 4.5), "integer": ("w-xs", 5),
    "percent": ("w-s", 7), "date": ("w-d", 7.5), "datetime": ("w-l", 9.8),
    "money": ("w-l", 9.8), "decimal": ("w-m", 8.5), "state": ("w-m", 8.5), "select": ("w-m", 8.5),
    "user": ("w-m", 8.5),
    "autonumber": ("", 10), "link": ("", 10), "email": ("", 11), "phone": ("", 9),
    "multiselect": ("", 9), "text": ("", 10), "string": ("", 9), "url": ("", 10), "attachment": ("", 9),
}
TITLE_REM = 13


def title_fields(entity: Entity) -> list[str]:
    """The fields a record's title is made of: '{code} {name}' → code, name."""
    if entity.title:
        return [m for m in dict.fromkeys(TITLE_PART.findall(entity.title)) if m in entity.fields]
    return [k for k in ("name", "title", "subject", "code") if k in entity.fields][:1]


def link_field(entity: Entity, hidden=frozenset()) -> Field | None:
    """The column that links to the record: the title's text field ('{code} {name}' → name), else
    its first field; None when the title has no stored field the reader may see."""
    fields = [entity.fields[f] for f in title_fields(entity) if entity.fields[f].stored and f not in hidden]
    return next((f for f in fields if f.value_type in ("string", "text")), fields[0] if fields else None)


def width_class(f: Field) -> str:
    return WIDTHS.get(f.value_type, ("", 9))[0]


def estimate(f: Field, link: Field | None) -> float:
    return TITLE_REM if link is not None and f.id == link.id else WIDTHS.get(f.value_type, ("", 9))[1]


def default_columns(entity: Entity, hidden=frozenset(), sla: bool = False) -> list[Field]:
    """The entity's list columns the reader may see, the title's field first when it is not among
    them, in order while they fit the window's budget."""
    link = link_field(entity, hidden)
    wanted = [f for f in entity.columns_for_list() if f.id not in hidden and f.stored]
    if link is not None and link not in wanted:
        wanted.insert(0, link)
    budget = BUDGET_REM - (SLA_REM if sla else 0) - (0 if link is not None else TITLE_REM)
    out, used = [], 0.0
    for f in wanted:
        w = estimate(f, link)
        if out and used + w > budget and f is not link:
            continue                      # a later, narrower column may still fit
        out.append(f)
        used += w
    return out


def priority_class(index: int) -> str:
    """Narrow windows drop the last columns first (ui.css): the first three always stay."""
    return "" if index < 3 else ("p-2" if index < 5 else "p-3")


def open_record(entity: Entity, record: dict, final_states: frozenset) -> bool:
    """Whether a record is still open: not in a final state of its workflow, not in a done status
    of its to-do settings (`todo: {status, done}`)."""
    sf = entity.state_field
    if sf is not None and record.get(sf.id) in final_states:
        return False
    todo = getattr(entity, "todo", None) or {}
    status, done = todo.get("status"), todo.get("done") or ()
    return not (status and record.get(status) in done)


def due_fields(entity: Entity) -> set[str]:
    todo = getattr(entity, "todo", None) or {}
    out = {f.id for f in entity.fields.values() if getattr(f, "due", False)}
    if todo.get("due") in entity.fields:
        out.add(todo["due"])
    return out


def overdue(entity: Entity, rows: list[dict], cols: list[Field], final_states: frozenset,
            today: dt.date | None = None) -> set[tuple[int, str]]:
    """{(record id, field id)} of the shown deadlines that have passed on open records."""
    today = today or dt.date.today()
    now = dt.datetime.now()
    fields = [f for f in cols if f.id in due_fields(entity) and f.value_type in ("date", "datetime")]
    out = set()
    if not fields:
        return out
    for r in rows:
        if not open_record(entity, r, final_states):
            continue
        for f in fields:
            v = r.get(f.id)
            if isinstance(v, dt.datetime):
                late = v < now
            elif isinstance(v, dt.date):
                late = v < today
            else:
                late = False
            if late:
                out.add((r["id"], f.id))
    return out


def money_columns(cols: list[Field]) -> list[Field]:
    return [f for f in cols if f.value_type == "money"]
