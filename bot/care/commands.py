"""`carebot scheduler` and `carebot campaigns preview|run-once|status`: the operator's view of
proactive care (docs/care_scheduler.md)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from bot.settings import load_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from crm_store.clock import Clock

# With --date, the commands act as if it were this time of that day in the shop's time zone:
# when planned messages fall due (crm_store.campaign_rules.PlanSettings.send_at), so run-once
# sends them at once.
PLAN_TIME = time(10, 0)


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scheduler = commands.add_parser(
        "scheduler", help="run the care scheduler (plans campaigns, sends the outbox)"
    )
    scheduler.set_defaults(handler=cmd_scheduler)
    campaigns = commands.add_parser("campaigns", help="preview, run and watch proactive care")
    actions = campaigns.add_subparsers(required=True, metavar="ACTION")
    preview = actions.add_parser("preview", help="who would get what on a day; sends nothing")
    preview.add_argument("campaign", help="e.g. birthday, win_back")
    preview.add_argument("--date", type=_day, metavar="YYYY-MM-DD", help="default: today")
    preview.add_argument("--limit", type=int, default=50, help="rows shown (%(default)s)")
    preview.set_defaults(handler=cmd_preview)
    run_once = actions.add_parser("run-once", help="plan every campaign, send what is due, exit")
    run_once.add_argument("--date", type=_day, metavar="YYYY-MM-DD", help="default: today")
    run_once.set_defaults(handler=cmd_run_once)
    status = actions.add_parser("status", help="the outbox by state and the win-back uplift")
    status.set_defaults(handler=cmd_status)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def clock_for(day: date | None) -> Clock:
    """The real clock, or one fixed at PLAN_TIME (Shanghai) on `day`."""
    from crm_store.campaign_rules import BUSINESS_TZ
    from crm_store.clock import fixed, utcnow

    if day is None:
        return utcnow
    return fixed(datetime.combine(day, PLAN_TIME, BUSINESS_TZ))


def cmd_scheduler(args: argparse.Namespace) -> int:
    from bot.care.service import main

    return main()


def _engine() -> Engine:
    from crm_store.db import make_engine

    return make_engine(load_settings().database_url)


def cmd_preview(args: argparse.Namespace) -> int:
    """Runs the planning queries in a transaction that is rolled back: nothing is written."""
    from sqlalchemy.orm import Session

    from bot.care.scheduler import CAMPAIGNS, business_day
    from crm_store.eligibility import ensure_campaigns, preview_campaign

    if args.campaign not in CAMPAIGNS:
        print(f"carebot campaigns: no campaign {args.campaign} ({', '.join(CAMPAIGNS)})")
        return 2
    clock, engine = clock_for(args.date), _engine()
    session = Session(bind=engine, future=True)
    try:
        ensure_campaigns(session, clock=clock)
        rows = preview_campaign(
            session,
            campaign_key=args.campaign,
            day=business_day(clock),
            clock=clock,
            limit=args.limit,
        )
    finally:
        session.rollback()
        session.close()
        engine.dispose()
    print(render_preview(args.campaign, business_day(clock), rows))
    return 0


def render_preview(campaign: str, day: date, rows: Sequence[Any]) -> str:
    lines = [f"{campaign} on {day}: {len(rows)} candidate(s) shown (nothing was sent)"]
    lines += [
        f"  {row.customer_id:>8}  {row.name:<8}  {row.channel:<6}  {row.period:<20}  "
        f"{row.scheduled_at:%Y-%m-%d %H:%M}Z  {row.outcome:<16}  {row.detail or ''}"
        for row in rows
    ]
    return "\n".join(lines)


def cmd_run_once(args: argparse.Namespace) -> int:
    """Plans today's campaigns (or --date's), sends everything due, and exits."""
    from bot.care.dispatch import Dispatcher
    from bot.care.scheduler import business_day, config_from_env
    from bot.care.scheduler import ensure_campaigns as ensure

    settings = load_settings()
    config = config_from_env(
        settings.database_url, settings.rasa_url, settings.api_token, os.environ
    )
    clock, engine = clock_for(args.date), _engine()
    try:
        ensure(engine, clock)
        day = business_day(clock)
        for key, result in plan_all(engine, clock, day):
            print(f"planned {key} for {day}: {result}")
        dispatch = replace(config.dispatch, crash_at=None)
        report = Dispatcher(engine, dispatch, clock=clock).drain()
    finally:
        engine.dispose()
    print(
        f"dispatched: {report.sent} sent, {report.failed} failed (retried later), "
        f"{report.deferred} waiting for a reachable channel"
    )
    return 1 if report.failed else 0


def plan_all(engine: Engine, clock: Clock, day: date) -> list[tuple[str, Any]]:
    from bot.care.scheduler import CAMPAIGNS
    from crm_store.db import session_scope
    from crm_store.eligibility import plan_campaign

    results = []
    for key in CAMPAIGNS:
        with session_scope(engine) as session:
            results.append((key, plan_campaign(session, campaign_key=key, day=day, clock=clock)))
    return results


def cmd_status(args: argparse.Namespace) -> int:
    from bot.care.uplift import describe, uplift
    from crm_store.db import session_scope
    from crm_store.models import OUTBOX_STATES
    from crm_store.outbox import count_by_campaign
    from crm_store.win_back_outcomes import win_back_counts

    engine = _engine()
    try:
        with session_scope(engine) as session:
            counts = count_by_campaign(session)
            arms = win_back_counts(session)
    finally:
        engine.dispose()
    print(render_status(counts, OUTBOX_STATES))
    result = uplift(
        arms.treated.returned, arms.treated.measured, arms.control.returned, arms.control.measured
    )
    print(
        f"\nwin-back (30 days): treated {arms.treated.returned}/{arms.treated.measured} came back,"
        f" control {arms.control.returned}/{arms.control.measured}\n{describe(result)}"
    )
    sys.stdout.flush()
    return 0


def render_status(counts: dict[str, dict[str, int]], states: Sequence[str]) -> str:
    header = f"{'campaign':<20}" + "".join(f"{state:>9}" for state in states)
    rows = [
        f"{key:<20}" + "".join(f"{by_state[state]:>9}" for state in states)
        for key, by_state in sorted(counts.items())
    ]
    return "\n".join([header, *(rows or ["(no care messages yet)"])])
