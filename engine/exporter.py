"""Exporting a list: every record a list request would show (the actor's row scope and filters,
without the fields hidden from the actor), read in id-ordered pages so memory stays bounded
however many rows there are; written as CSV chunks or an XLSX file (openpyxl write-only).

Cells are what an import reads back: links by their record's title, users by user name, options
by value, dates YYYY-MM-DD. Text that a spreadsheet would run as a formula gets a leading '.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import os
import tempfile
from decimal import Decimal

import sqlalchemy as sa

from .actor import Actor
from .db import reading
from .query import ListRequest
from .systables import users

PAGE = 2000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutral(text: str) -> str:
    """A cell that cannot run as a formula (the rule of platform_/csvsafe.py, kept here for the engine)."""
    import re
    if text[:1] in FORMULA_START and not re.fullmatch(r"[+-]?[0-9][0-9,]*(\.[0-9]+)?( ?%)?", text):
        return "'" + text
    return text


def export_fields(store, entity_id: str, actor: Actor, only=None) -> list:
    """The fields of the file: stored, not hidden from the actor, `only` (ids) when given."""
    e = store.entity(entity_id)
    hidden = store.hidden_fields(e, actor)
    fields = [f for f in e.fields.values() if f.stored and f.id not in hidden
              and f.id not in ("deleted_at", "version") and f.type != "attachment"]
    if only:
        keep = [f for f in fields if f.id in set(only)]
        fields = [f for f in fields if f.id == "id"] + [f for f in keep if f.id != "id"]
    return fields


def records(store, entity_id: str, req: ListRequest, actor: Actor, page: int = PAGE):
    """Every record of the list request, in id order, one page of `page` rows in memory at a time."""
    e = store.entity(entity_id)
    store.check(entity_id, "export", actor)
    t = store.table(e)
    conds, hidden = store.list_conditions(e, t, req, actor)
    last = 0
    while True:
        with reading(store.engine) as conn:
            rows = [dict(r) for r in conn.execute(sa.select(t).where(*conds, t.c.id > last)
                                                  .order_by(t.c.id).limit(page)).mappings()]
        if not rows:
            return
        if hidden:
            rows = [{k: v for k, v in r.items() if k not in hidden} for r in rows]
        yield rows
        if len(rows) < page:
            return
        last = rows[-1]["id"]


def _texts(store, fields, rows) -> dict:
    """{field id: {value: text}} for the link and user columns of one page."""
    out = {}
    for f in fields:
        if f.value_type not in ("link", "user"):
            continue
        ids = {r.get(f.id) for r in rows if r.get(f.id) is not None}
        if not ids:
            continue
        if f.value_type == "link":
            out[f.id] = store.titles(f.to, ids)
        elif f.value_type == "user":
            with reading(store.engine) as conn:
                out[f.id] = dict(conn.execute(sa.select(users.c.id, users.c.username)
                                              .where(users.c.id.in_(ids))).all())
    return out


def cell(f, v, texts: dict, typed: bool = False):
    """One cell: text for CSV, or (typed) a number/date for XLSX."""
    if v is None:
        return None
    if f.id in texts and f.value_type in ("link", "user"):
        v = texts[f.id].get(v, v)
    if isinstance(v, list):
        return ",".join(map(str, v))
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.datetime):
        return v if typed else v.isoformat(sep=" ", timespec="seconds")
    if isinstance(v, dt.date):
        return v if typed else v.isoformat()
    if isinstance(v, (int, Decimal, float)):
        return v if typed else str(v)
    if isinstance(v, dict):
        return str(v.get("name") or v.get("sha256") or "")
    return neutral(str(v))


def rows_of(store, entity_id, req, actor, fields, typed=False, page=PAGE):
    """The file's rows after its header, each a list of cells."""
    for chunk in records(store, entity_id, req, actor, page):
        texts = _texts(store, fields, chunk)
        for r in chunk:
            yield [cell(f, r.get(f.id), texts, typed) for f in fields]


def csv_chunks(header: list, rows):
    """A CSV file in chunks: UTF-8 with a BOM (Chinese reads right in Excel), a few hundred rows each."""
    buf = io.StringIO()
    w = csv.writer(buf)
    buf.write("\ufeff")
    w.writerow([neutral(str(h)) for h in header])
    for n, row in enumerate(rows, 1):
        w.writerow(["" if v is None else v for v in row])
        if n % 500 == 0:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode("utf-8")


EXCEL_DIGITS = 15


def number_cell(ws, v):
    """A number as an XLSX cell without passing through a float: the cell's text in the sheet is the
    exact decimal (openpyxl would write `%.16g` of a float, e.g. 9420897.882999999 for 9420897.883),
    with a number format showing its decimal places. A number of more than 15 significant digits —
    more than a spreadsheet keeps of a number — is written as text, every digit kept."""
    from openpyxl.cell import WriteOnlyCell
    d = v if isinstance(v, Decimal) else Decimal(v)
    if not d.is_finite():
        return None
    if abs(d) >= 10 ** EXCEL_DIGITS or len(d.normalize().as_tuple().digits) > EXCEL_DIGITS:
        return str(v)
    places = max(0, -d.as_tuple().exponent)
    c = WriteOnlyCell(ws, value=format(d, "f"))
    c.data_type = "n"                        # the text goes into <v> as it is: a numeric cell
    c.number_format = "0" if isinstance(v, int) else "#,##0" + ("." + "0" * places if places else "")
    return c


def xlsx_file(header: list, rows, title: str = "Sheet1") -> str:
    """Write an XLSX workbook to a temporary file (write-only: rows stream to disk); its path."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=title[:31] or "Sheet1")
    ws.append([neutral(str(h)) for h in header])
    for row in rows:
        out = []
        for v in row:
            if isinstance(v, dt.datetime):
                c = WriteOnlyCell(ws, value=v)
                c.number_format = "yyyy-mm-dd hh:mm:ss"
                out.append(c)
            elif isinstance(v, dt.date):
                c = WriteOnlyCell(ws, value=v)
                c.number_format = "yyyy-mm-dd"
                out.append(c)
            elif isinstance(v, Decimal) or (isinstance(v, int) and not isinstance(v, bool)):
                out.append(number_cell(ws, v))
            else:
                out.append(v)
        ws.append(out)
    fd, path = tempfile.mkstemp(prefix="crm-export-", suffix=".xlsx")
    os.close(fd)
    wb.save(path)
    return path
