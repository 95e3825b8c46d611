"""`carebot forget`, `carebot export-customer` and `carebot retention run` (issue 15,
docs/personal-data.md): the operator's side of a member's requests and of retention."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from bot.settings import load_settings


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    forget = commands.add_parser(
        "forget", help="erase a member's personal data everywhere (PIPL); keeps the aggregates"
    )
    forget.add_argument("customer_id", type=int)
    forget.add_argument(
        "--offline",
        action="store_true",
        help="the system is stopped: edit Rasa's tracker file instead of calling its HTTP API",
    )
    forget.set_defaults(handler=cmd_forget)

    export = commands.add_parser(
        "export-customer", help="everything held about one member, as one JSON file"
    )
    export.add_argument("customer_id", type=int)
    export.add_argument("--out", type=Path, help="the file to write (default: standard output)")
    export.set_defaults(handler=cmd_export)

    retention = commands.add_parser("retention", help="delete personal data past its period")
    actions = retention.add_subparsers(required=True, metavar="ACTION")
    run = actions.add_parser("run", help="apply the CAREBOT_RETENTION_* periods now")
    run.set_defaults(handler=cmd_retention_run)


def operator() -> str:
    """Who runs the command, for the audit log."""
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


def cmd_forget(args: argparse.Namespace) -> int:
    from bot.privacy import forget, places_from
    from bot.rasa_api import RasaRefused
    from crm_store.db import make_engine
    from crm_store.errors import NotFound

    settings = load_settings()
    places = places_from(settings, os.environ, rasa_running=not args.offline)
    engine = make_engine(settings.database_url)
    try:
        report = forget(engine, places, customer_id=args.customer_id, actor=operator())
    except NotFound:
        print(f"carebot forget: no customer {args.customer_id}", file=sys.stderr)
        return 2
    except RasaRefused as error:
        print(f"carebot forget: {error}; nothing was erased in the CRM", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    erased = ", ".join(f"{name} {count}" for name, count in report.crm.items())
    print(f"customer {report.customer_id} forgotten: {erased}")
    print(f"Rasa conversations emptied: {report.trackers}")
    if places.wechat_sim_url:
        print(f"WeChat simulator records erased: {report.wechat_sim_records}")
    for note in report.notes:
        print(note)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from bot.privacy import export
    from crm_store.db import make_engine
    from crm_store.errors import NotFound

    engine = make_engine(load_settings().database_url)
    try:
        document = export(engine, customer_id=args.customer_id, actor=operator())
    except NotFound:
        print(f"carebot export-customer: no customer {args.customer_id}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
        return 0
    os.umask(0o077)  # personal data: the operator's alone
    args.out.write_text(text, encoding="utf-8")
    print(f"customer {args.customer_id} exported to {args.out}", file=sys.stderr)
    return 0


def cmd_retention_run(args: argparse.Namespace) -> int:
    from bot.privacy import run_retention
    from crm_store.db import make_engine
    from crm_store.personal_data import RetentionPolicy

    settings = load_settings()
    policy = RetentionPolicy.from_env(os.environ)
    engine = make_engine(settings.database_url)
    try:
        counts = run_retention(engine, settings.tracker_store_url, policy)
    finally:
        engine.dispose()
    print("retention: " + ", ".join(f"{name} {count}" for name, count in counts.items()))
    return 0
