"""`carebot report <figure>`: every dashboard figure on the command line (table, CSV or JSON).

The same query functions as the staff console's dashboard (crm_store.dashboard), so a figure
printed here and one on the dashboard agree to the last digit.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from bot.reports.options import NEEDS_TZ, OPTIONS
from bot.settings import load_settings
from crm_store.clock import BUSINESS_TZ

T = TypeVar("T")

if TYPE_CHECKING:
    from crm_store.dashboard import DashboardFilter

Day = Callable[[str], date]
CUSTOMER_TEXT_FIGURES = ("comments", "misunderstood", "follow-ups")  # crm_store.dashboard


def add_figure_parsers(
    reports: argparse._SubParsersAction[argparse.ArgumentParser], day: Day
) -> None:
    """One `carebot report` subcommand per dashboard figure."""
    from crm_store.dashboard import FIGURES

    for figure in FIGURES.values():
        parser = reports.add_parser(figure.name, help=figure.help)
        _add_filter_arguments(parser, day)
        for flag, dest, kwargs in OPTIONS.get(figure.name, []):
            parser.add_argument(flag, dest=f"option_{dest}", **kwargs)
        if figure.name in CUSTOMER_TEXT_FIGURES:
            parser.add_argument(
                "--full",
                action="store_true",
                help="customers' words unmasked (recorded in the audit log)",
            )
        parser.set_defaults(handler=cmd_report_figure, figure=figure.name)


def _add_filter_arguments(parser: argparse.ArgumentParser, day: Day) -> None:
    parser.add_argument("--from", dest="first", type=day, metavar="YYYY-MM-DD")
    parser.add_argument("--to", dest="last", type=day, metavar="YYYY-MM-DD", help="included")
    parser.add_argument("--tz", default=BUSINESS_TZ.key, help="days in this zone (%(default)s)")
    parser.add_argument("--channel", choices=("web", "wechat"))
    parser.add_argument("--tier", help="普通, 银卡, 金卡 or 钻石")
    parser.add_argument("--segment", help="an RFM segment, e.g. champions")
    parser.add_argument("--stage", help="a lifecycle stage, e.g. churning")
    parser.add_argument("--agent", help="a staff username, or bot")
    parser.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="csv: UTF-8 BOM"
    )


def _range(args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    """Whole local days: --from's midnight to the midnight after --to (either may be left out)."""
    from crm_store.dashboard import day_window

    first, last = args.first, args.last
    if first is None and last is None:
        return None, None
    since, until = day_window(first or last, last or first, tz=args.tz)
    return (since if first else None), (until if last else None)


def dashboard_filter(args: argparse.Namespace) -> DashboardFilter:
    from crm_store.dashboard import DashboardFilter

    since, until = _range(args)
    return DashboardFilter(
        since=since,
        until=until,
        channel=args.channel,
        tier=args.tier,
        segment=args.segment,
        stage=args.stage,
        agent=args.agent,
    )


def figure_options(args: argparse.Namespace) -> dict[str, Any]:
    options = {
        name[len("option_") :]: value
        for name, value in vars(args).items()
        if name.startswith("option_") and value is not None
    }
    if args.figure in NEEDS_TZ:
        options["tz"] = args.tz
    return options


def read_rows(url: str, args: argparse.Namespace) -> list[Any]:
    from crm_store.dashboard import read_figure
    from crm_store.db import make_engine, session_scope

    full = bool(getattr(args, "full", False))
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            if full:
                audit_full_read(session, args.figure)
            f = dashboard_filter(args)
            return read_figure(session, args.figure, f, full=full, **figure_options(args))
    finally:
        engine.dispose()


def audit_full_read(session: Any, figure: str) -> None:
    """An unmasked read of customers' words is on the record: who, which figure, when."""
    from bot.privacy_cli import operator
    from crm_store.audit import record_audit

    record_audit(
        session, actor=operator(), action="read_unmasked", entity="dashboard", entity_id=figure
    )


def cmd_report_figure(args: argparse.Namespace) -> int:
    """One figure, rendered for a terminal, Excel (CSV with a BOM) or a program (JSON)."""
    from bot.reports.render import render
    from crm_store.dashboard import FIGURES

    url = load_settings().database_url
    return print_report(
        url,
        lambda: read_rows(url, args),
        lambda rows: render(rows, FIGURES[args.figure].row_type, args.format),
    )


def print_report(url: str, read: Callable[[], T], render: Callable[[T], str]) -> int:
    """Read a report and print it as UTF-8 (Excel needs the CSV's BOM kept intact).

    Exit code 2, with the reason, for an option the report refuses or a database it cannot read.
    """
    from sqlalchemy.exc import DBAPIError

    from crm_store.errors import InvalidInput

    try:
        report = read()
    except InvalidInput as error:
        print(f"carebot report: {error}", file=sys.stderr)
        return 2
    except DBAPIError as error:
        print(f"carebot: cannot read the CRM database {url}: {error.orig}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    sys.stdout.buffer.write(render(report).encode("utf-8"))
    sys.stdout.buffer.flush()
    return 0
