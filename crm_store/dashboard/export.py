"""Every dashboard table as CSV for Excel (UTF-8 with a BOM), JSON, or aligned text columns.

One function per format for every figure: a table is a list of rows of one dataclass type.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import date, datetime
from typing import Any

from crm_store.masking import spreadsheet_safe
from crm_store.reports import FORMATS, align
from crm_store.validation import check_choice

BOM = "\ufeff"  # tells Excel the file is UTF-8, so Chinese text opens as text
LIST_SEPARATOR = "; "  # the themes of a comment in one CSV cell


def columns(row_type: type) -> list[str]:
    return [field.name for field in fields(row_type)]


def _cell(value: Any) -> str:
    """What a table or CSV cell shows (see `_csv_cell` for the CSV's own rule)."""
    if value is None:
        return ""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (tuple, list)):
        return LIST_SEPARATOR.join(str(item) for item in value)
    return str(value)


def to_csv(rows: Sequence[Any], row_type: type) -> str:
    """A header of field names, then one line per row; empty cells for missing values. A cell a
    spreadsheet would run as a formula (a comment typed as `=HYPERLINK(...)`) gets a leading
    apostrophe: customers write some of these cells."""
    out = io.StringIO()
    writer = csv.writer(out)
    names = columns(row_type)
    writer.writerow(names)
    for row in rows:
        writer.writerow([spreadsheet_safe(_cell(getattr(row, name))) for name in names])
    return BOM + out.getvalue()


def _json_value(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")


def to_json(rows: Sequence[Any]) -> str:
    document = [asdict(row) for row in rows]
    return json.dumps(document, ensure_ascii=False, indent=2, default=_json_value) + "\n"


def to_table(rows: Sequence[Any], row_type: type) -> str:
    names = columns(row_type)
    lines = [names] + [[_cell(getattr(row, n)) or "-" for n in names] for row in rows]
    return align(lines)


def render(rows: Sequence[Any], row_type: type, fmt: str) -> str:
    """The rows as `table`, `csv` or `json`."""
    check_choice(fmt, FORMATS, "format")
    if fmt == "csv":
        return to_csv(rows, row_type)
    if fmt == "json":
        return to_json(rows)
    return to_table(rows, row_type)
