"""Reading an import file: CSV (UTF-8, UTF-8 with BOM, GBK/GB18030) or XLSX, as a header and
numbered rows. Anything else, an unknown encoding or an empty file is a BadRequest with a message
a person can act on, raised before a single record is written.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from dataclasses import dataclass

from .errors import BadRequest

DEFAULT_MAX_MB = 50
CSV_EXT = (".csv", ".txt", ".tsv")
XLSX_EXT = (".xlsx", ".xlsm")


@dataclass
class Sheet:
    kind: str            # csv or xlsx
    header: list         # the column names of the first non-empty row
    header_line: int
    data: bytes
    encoding: str | None = None
    total: int | None = None     # data rows (None when unknown before reading)

    def rows(self):
        """(file line, [cell values]) of every non-empty data row, in file order."""
        return _csv_rows(self) if self.kind == "csv" else _xlsx_rows(self)


def kind_of(data: bytes, filename: str) -> str:
    name = (filename or "").lower()
    is_zip = data[:4] == b"PK\x03\x04"
    if name.endswith(XLSX_EXT) or (is_zip and not name.endswith(CSV_EXT)):
        if not is_zip:
            raise BadRequest(f"{filename or 'the file'} is not an XLSX workbook (it is not a zip file).")
        return "xlsx"
    if name.endswith(".xls"):
        raise BadRequest("Old Excel .xls files cannot be imported: save the sheet as .xlsx or CSV first.")
    if "." in name.rsplit("/", 1)[-1] and not name.endswith(CSV_EXT):
        raise BadRequest(f"{filename} is not a CSV or XLSX file; import a .csv or .xlsx file.")
    if b"\x00" in data[:65536]:
        raise BadRequest(f"{filename or 'the file'} is not a CSV text file (it holds binary data).")
    return "csv"


def open_sheet(data: bytes, filename: str, max_mb: float = DEFAULT_MAX_MB) -> Sheet:
    if len(data) > max_mb * 1024 * 1024:
        raise BadRequest(f"The file is {len(data) / 1048576:.1f} MB; the import limit is {max_mb:g} MB. "
                         "Split it into smaller files.")
    if not data.strip():
        raise BadRequest("The file is empty: it needs a header row of column names and rows of data.")
    kind = kind_of(data, filename)
    sheet = Sheet(kind=kind, header=[], header_line=0, data=data)
    if kind == "csv":
        sheet.encoding = _encoding(data)
    for line, row in (_raw_csv(sheet) if kind == "csv" else _raw_xlsx(sheet)):
        if any(_blank(v) is False for v in row):
            sheet.header = [("" if v is None else str(v)).strip() for v in row]
            sheet.header_line = line
            break
    if not sheet.header:
        raise BadRequest("The file has no header row: the first row must name the columns.")
    return sheet


def _blank(v) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _encoding(data: bytes) -> str:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            data.decode(enc)
            return enc
        except UnicodeDecodeError:
            continue
    raise BadRequest("The file's text encoding is not UTF-8 or GBK/GB18030; save it as CSV UTF-8 and import again.")


def _raw_csv(sheet: Sheet):
    text = sheet.data.decode(sheet.encoding)
    first = text.split("\n", 1)[0]
    delimiter = next((d for d in ("\t", ";") if d in first and "," not in first), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    try:
        for row in reader:
            yield start, row
            start = reader.line_num + 1
    except csv.Error as e:
        raise BadRequest(f"line {start}: the CSV cannot be read ({e}).") from None


def _csv_rows(sheet: Sheet):
    for line, row in _raw_csv(sheet):
        if line > sheet.header_line and any(not _blank(v) for v in row):
            yield line, row


def _raw_xlsx(sheet: Sheet):
    from openpyxl import load_workbook
    try:
        wb = load_workbook(io.BytesIO(sheet.data), read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as e:
        raise BadRequest(f"The XLSX workbook cannot be read ({type(e).__name__}: {str(e)[:120]}).") from None
    try:
        ws = wb.worksheets[0] if wb.worksheets else None
        if ws is None:
            raise BadRequest("The XLSX workbook has no sheet.")
        if sheet.total is None and ws.max_row:
            sheet.total = max(0, ws.max_row - 1)
        for n, row in enumerate(ws.iter_rows(values_only=True), 1):
            yield n, [_cell(v) for v in row]
    finally:
        wb.close()


def _cell(v):
    """A cell as the importer takes it: formulas stay text, dates and numbers their own type."""
    if isinstance(v, dt.time):
        return v.isoformat()
    return v


def _xlsx_rows(sheet: Sheet):
    for line, row in _raw_xlsx(sheet):
        if line > sheet.header_line and any(not _blank(v) for v in row):
            yield line, row


def count_rows(sheet: Sheet) -> int:
    """Data rows in the sheet (a first pass, for the progress bar)."""
    if sheet.kind == "xlsx" and sheet.total is not None:
        return sheet.total
    return sum(1 for _ in sheet.rows())
