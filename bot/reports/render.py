"""Reports as text: an aligned table for a terminal, CSV for Excel (UTF-8 with a BOM) or JSON.

One renderer for every report, shared by `carebot report` and the staff console's exports: a
dashboard figure is a list of rows of one dataclass type (`render`), the survey report has its
own layout (`render_survey_report`). crm_store returns the data; nothing there formats it.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import date, datetime
from typing import Any

from crm_store.dashboard.survey_report import SurveyReport
from crm_store.dashboard.surveys import SurveyFigures
from crm_store.masking import spreadsheet_safe
from crm_store.validation import check_choice

FORMATS = ("table", "csv", "json")
BOM = "\ufeff"  # tells Excel the file is UTF-8, so Chinese text opens as text
LIST_SEPARATOR = "; "  # the themes of a comment in one CSV cell


def columns(row_type: type) -> list[str]:
    return [field.name for field in fields(row_type)]


def _cell(value: Any) -> str:
    """What a table or CSV cell shows."""
    if value is None:
        return ""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (tuple, list)):
        return LIST_SEPARATOR.join(str(item) for item in value)
    return str(value)


def _csv_cell(value: Any) -> str:
    """A cell a spreadsheet would run as a formula (a comment typed as `=HYPERLINK(...)`) gets a
    leading apostrophe (crm_store.masking): customers write some of these cells."""
    return spreadsheet_safe(_cell(value))


def _csv(rows: Sequence[Sequence[Any]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows([[_csv_cell(value) for value in row] for row in rows])
    return out.getvalue()


def to_csv(rows: Sequence[Any], row_type: type) -> str:
    """A header of field names, then one line per row; empty cells for missing values."""
    names = columns(row_type)
    return BOM + _csv([names, *([getattr(row, name) for name in names] for row in rows)])


def _json_value(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")


def _json(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2, default=_json_value) + "\n"


def to_json(rows: Sequence[Any]) -> str:
    return _json([asdict(row) for row in rows])


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


def display_width(text: str) -> int:
    """Terminal columns: wide and full-width characters (Chinese) take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def align(rows: Sequence[Sequence[str]]) -> str:
    """Rows as text columns: the first left-aligned, the others right-aligned."""
    widths = [max(display_width(row[i]) for row in rows) for i in range(len(rows[0]))]

    def cell(i: int, text: str) -> str:
        pad = " " * (widths[i] - display_width(text))
        return text + pad if i == 0 else pad + text

    return "".join("  ".join(cell(i, t) for i, t in enumerate(row)) + "\n" for row in rows)


# The survey report: its figures, then its top themes --------------------------------------------

TABLE_HEADINGS = [
    "asked",
    "answered",
    "partial",
    "declined",
    "no reply",
    "response",
    "CSAT n",
    "CSAT avg",
    "satisfied",
    "NPS n",
    "promoters",
    "passives",
    "detractors",
    "NPS",
]
ALL = "all"


def render_survey_report(report: SurveyReport, fmt: str) -> str:
    """The report as an aligned table, CSV (UTF-8 with a BOM, for Excel) or JSON."""
    render_as = {"table": _survey_table, "csv": _survey_csv, "json": _survey_json}
    return render_as[check_choice(fmt, FORMATS, "report format")](report)


def _survey_json(report: SurveyReport) -> str:
    return _json(
        {
            "since": report.since.isoformat(),
            "until": report.until.isoformat(),
            "by": report.by,
            "groups": [asdict(figures) for figures in report.groups],
            "top_themes": [{"theme": theme, "count": count} for theme, count in report.top_themes],
        }
    )


def _survey_csv(report: SurveyReport) -> str:
    """Figures, a blank line, then the themes."""
    names = columns(SurveyFigures)
    figures = [[getattr(f, name) for name in names] for f in report.groups]
    header = [report.by or "group", *names[1:]]
    return BOM + _csv([header, *figures, [], ["theme", "count"], *report.top_themes])


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}%"


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _survey_row(f: SurveyFigures) -> list[str]:
    return [
        ALL if f.group is None else f.group,
        *(str(n) for n in (f.asked, f.answered, f.partial, f.declined, f.no_reply)),
        _percent(f.response_rate),
        str(f.csat_answers),
        _number(f.csat_average, 2),
        _percent(f.csat_satisfied_share),
        *(str(n) for n in (f.nps_answers, f.promoters, f.passives, f.detractors)),
        _number(f.nps, 1),
    ]


def _survey_table(report: SurveyReport) -> str:
    figures = [[report.by or "surveys", *TABLE_HEADINGS]]
    figures += [_survey_row(f) for f in report.groups]
    themes = [["top theme", "mentions"]] + [[t, str(n)] for t, n in report.top_themes]
    if len(themes) == 1:
        themes.append(["-", "0"])
    return align(figures) + "\n" + align(themes)
