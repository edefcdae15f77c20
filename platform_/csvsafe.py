"""CSV files people open in a spreadsheet: UTF-8 with a BOM (so Chinese reads right in Excel) and
cells that cannot run as formulas (CSV injection). Shared by the list export and the audit export."""
from __future__ import annotations

import csv
import io
import re

from flask import Response

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9][0-9,]*(\.[0-9]+)?( ?%)?")


def csv_safe(text: str) -> str:
    """Keep spreadsheet programs from running a cell as a formula: a cell starting with = + - @,
    TAB or CR gets a leading ' (a plain signed number such as -1,234.50 stays a number)."""
    if text[:1] in FORMULA_START and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_response(header: list, rows, filename: str) -> Response:
    """A download of `header` then `rows` (iterables of values; None is empty), every cell made safe."""
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf)
    w.writerow([csv_safe(str(h)) for h in header])
    for row in rows:
        w.writerow([csv_safe("" if v is None else str(v)) for v in row])
    return Response(buf.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
