"""Auto-number series: `CUS-{YYYY}{MM}-{#####}` → CUS-202611-00042, one counter per rendered prefix.

The counter is an upsert with RETURNING inside the record's transaction, so two concurrent
creates never get the same number and a rolled-back create gives its number back.
"""
from __future__ import annotations

import datetime as dt
import re

from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .systables import series

HASHES = re.compile(r"\{(#+)\}|(#+)")


@lru_cache(maxsize=4)
def _upsert(dialect_name: str):
    """`value += :n` of the series `:key` (created at `:n`), returning the new value; built once."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    n = sa.bindparam("n", type_=sa.Integer)
    return (dialect.insert(series).values(key=sa.bindparam("key"), value=n)
            .on_conflict_do_update(index_elements=[series.c.key], set_={"value": series.c.value + n})
            .returning(series.c.value))


def render_prefix(fmt: str, today: dt.date) -> str:
    return (fmt.replace("{YYYY}", f"{today.year:04d}").replace("{YY}", f"{today.year % 100:02d}")
            .replace("{MM}", f"{today.month:02d}").replace("{DD}", f"{today.day:02d}"))


def next_value(conn, entity: str, field: str, fmt: str, today: dt.date | None = None) -> str:
    return next_values(conn, entity, field, fmt, 1, today)[0]


def next_values(conn, entity: str, field: str, fmt: str, n: int, today: dt.date | None = None) -> list[str]:
    """`n` consecutive numbers of one series, reserved by a single upsert (a bulk create)."""
    today = today or dt.date.today()
    rendered = render_prefix(fmt, today)
    m = HASHES.search(rendered)
    width = len(m.group(1) or m.group(2))
    key = f"{entity}.{field}:{rendered[:m.start()]}|{rendered[m.end():]}"
    last = conn.execute(_upsert(conn.dialect.name), {"key": key, "n": n}).scalar_one()
    head, tail = rendered[:m.start()], rendered[m.end():]
    return [head + str(k).zfill(width) + tail for k in range(last - n + 1, last + 1)]
