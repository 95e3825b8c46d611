"""`carebot scheduler` and `carebot campaigns preview|run-once|status|enable|disable|cap`: the
operator's view of proactive care (docs/care_scheduler.md, docs/campaigns.md)."""

from __future__ import annotations

import argparse
import getpass
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
# when planned messages fall due (crm_store.campaigns.rules.PlanSettings.send_at), so run-once
# sends them at once.
PLAN_TIME = time(10, 0)
OFF_LINE = "off, not planned (`carebot campaigns enable KEY`, or a manager in the staff console)"


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
    for action, text in (("enable", "switch a campaign on"), ("disable", "switch it off")):
        switch = actions.add_parser(action, help=f"{text} (audited, like the console's switch)")
        switch.add_argument("campaign", help="e.g. birthday, win_back")
        switch.set_defaults(handler=cmd_switch, enabled=action == "enable")
    cap = actions.add_parser("cap", help="the most messages a campaign plans a day (audited)")
    cap.add_argument("campaign", help="e.g. birthday, win_back")
    cap.add_argument("daily_cap", type=_cap, metavar="N|none", help="a number, or none: no cap")
    cap.set_defaults(handler=cmd_cap)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _cap(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or none: {text!r}") from None


def clock_for(day: date | None) -> Clock:
    """The real clock, or one fixed at PLAN_TIME (the business zone) on `day`."""
    from crm_store.clock import BUSINESS_TZ, fixed, utcnow

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

    from bot.care.scheduler import business_day
    from crm_store.campaigns.planning import ensure_campaigns, preview_campaign

    if not known(args.campaign):
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
            print(f"planned {key} for {day}: {result}" if result else f"{key}: {OFF_LINE}")
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
    """Every campaign that is on, by priority, each in a transaction of its own; None for one
    that is off (crm_store.campaigns.planning.plan_campaigns, the scheduler's loop too)."""
    from crm_store.campaigns.planning import plan_campaigns
    from crm_store.db import session_scope

    return plan_campaigns(lambda: session_scope(engine), day=day, clock=clock)


def known(key: str) -> bool:
    """Whether `key` is a registered campaign; if not, says which are."""
    from crm_store.campaigns.registry import campaign_keys

    if key in campaign_keys():
        return True
    print(f"carebot campaigns: no campaign {key} ({', '.join(campaign_keys())})")
    return False


def cmd_switch(args: argparse.Namespace) -> int:
    """`enable`/`disable`: the console's switch from the command line, audited as `cli:USER`."""
    from crm_store.campaigns import set_campaign_enabled

    return _change(
        args.campaign,
        lambda session, key, actor: set_campaign_enabled(
            session, key=key, enabled=args.enabled, actor=actor
        ),
    )


def cmd_cap(args: argparse.Namespace) -> int:
    from crm_store.campaigns import set_daily_cap

    return _change(
        args.campaign,
        lambda session, key, actor: set_daily_cap(
            session, key=key, daily_cap=args.daily_cap, actor=actor
        ),
    )


def _change(key: str, change: Any) -> int:
    """Apply one audited change to a campaign (made first when missing, switched off)."""
    from crm_store.campaigns.planning import ensure_campaigns
    from crm_store.db import session_scope
    from crm_store.errors import InvalidInput

    if not known(key):
        return 2
    engine = _engine()
    try:
        with session_scope(engine) as session:
            ensure_campaigns(session)
            campaign = change(session, key, f"cli:{getpass.getuser()}")
    except InvalidInput as error:
        print(f"carebot campaigns: {error}")
        return 2
    finally:
        engine.dispose()
    print(describe_campaign(campaign))
    return 0


def describe_campaign(campaign: Any) -> str:
    cap = "no cap" if campaign.daily_cap is None else f"at most {campaign.daily_cap} a day"
    return f"{campaign.key}: {'on' if campaign.enabled else 'off'}, {cap}"


def cmd_status(args: argparse.Namespace) -> int:
    from bot.care.uplift import describe, uplift
    from crm_store.campaigns import campaign_settings
    from crm_store.campaigns.registry import campaign_keys
    from crm_store.db import session_scope
    from crm_store.models import OUTBOX_STATES
    from crm_store.outbox import count_by_campaign
    from crm_store.win_back_outcomes import win_back_counts

    engine = _engine()
    try:
        with session_scope(engine) as session:
            counts = count_by_campaign(session)
            arms = win_back_counts(session)
            owned = campaign_settings(session, keys=campaign_keys())
    finally:
        engine.dispose()
    print(render_status(counts, OUTBOX_STATES))
    if owned:
        print("\n" + "\n".join(describe_campaign(campaign) for campaign in owned))
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
