"""`carebot`: the one command-line entry point for everything an operator does."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from bot import log_format, log_masking
from bot.care.commands import add_parsers as add_care_parsers
from bot.privacy_cli import add_parsers as add_privacy_parsers
from bot.report_cli import add_figure_parsers, print_report
from bot.settings import Settings, load_settings
from bot.wechat_sim.config import add_arguments as add_wechat_sim_arguments
from crm_store.clock import BUSINESS_TZ

if TYPE_CHECKING:
    from crm_store.dashboard.survey_report import SurveyReport

Handler = Callable[[argparse.Namespace], int]
SERVE_PARTS = ("rasa", "actions", "scheduler", "console", "log-consumer")  # bot/serve.py


def main(argv: Sequence[str] | None = None) -> int:
    log_masking.install()  # every command, the console and the WeChat simulator included
    log_format.install()  # CAREBOT_LOG_FORMAT=json: JSON lines, Rasa's included
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carebot", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train the model if data/domain/config changed")
    train.add_argument("--force", action="store_true", help="train even if a cached model fits")
    train.set_defaults(handler=cmd_train)

    model_path = commands.add_parser("model-path", help="print the current model (train if needed)")
    model_path.set_defaults(handler=cmd_model_path)

    run = commands.add_parser("run", help="start the whole system and print where to chat")
    add_demo_argument(run)
    run.add_argument(
        "--migrate",
        action="store_true",
        help="apply the CRM migrations first (always done with --demo; otherwise the schema "
        "must be at head: `carebot db-upgrade` is its own step, docs/deploy.md)",
    )
    run.set_defaults(handler=cmd_run)

    shell = commands.add_parser("shell", help="chat with the assistant in this terminal")
    add_demo_argument(shell)
    shell.set_defaults(handler=cmd_shell)

    wechat_sim = commands.add_parser("wechat-sim", help="a local WeChat server to chat as users")
    add_wechat_sim_arguments(wechat_sim)
    wechat_sim.set_defaults(handler=cmd_wechat_sim)

    console = commands.add_parser("console", help="the staff console (started by `run`)")
    console.set_defaults(handler=cmd_console)

    consumer = commands.add_parser(
        "log-consumer",
        help="write the turns Rasa publishes to RabbitMQ into the CRM (CAREBOT_EVENT_BROKER_URL)",
    )
    consumer.set_defaults(handler=cmd_log_consumer)

    serve = commands.add_parser(
        "serve", help="run one part in the foreground, for systemd (docs/deploy.md)"
    )
    serve.add_argument("part", choices=SERVE_PARTS)
    serve.add_argument("--model", type=Path, help="the Rasa model (default: the current one)")
    serve.set_defaults(handler=cmd_serve)

    add_users_parser(commands)

    db = commands.add_parser("db-upgrade", help="apply the CRM database migrations")
    db.set_defaults(handler=cmd_db_upgrade)

    seed = commands.add_parser("seed", help="fill an empty CRM database with demo data")
    seed.add_argument("--customers", type=int, default=2000)
    seed.add_argument("--seed", type=int, default=42, help="random seed (same seed, same data)")
    seed.set_defaults(handler=cmd_seed)

    bench = commands.add_parser("bench", help="measure NLU accuracy, latency, throughput, memory")
    bench.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    bench.add_argument(
        "--sets",
        default="own,outside,smp2017,banking77,clinc150",
        help="comma-separated NLU data sets",
    )
    bench.add_argument("--no-rest", dest="rest", action="store_false", help="skip the load test")
    bench.add_argument("--conversations", type=int, default=60, help="per concurrency level")
    bench.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    bench.add_argument("--fresh", action="store_true", help="re-measure cached NLU results")
    bench.add_argument(
        "--pipelines",
        default="stock-default,stock-zh,carebot,carebot-no-encoder",
        help="comma-separated NLU pipelines to compare (the stock ones take the longest)",
    )
    bench.add_argument(
        "--stock-epochs",
        type=int,
        default=0,
        metavar="N",
        help="train the stock pipelines' DIET and ResponseSelector for N epochs instead of "
        "Rasa's 100 (a bounded measurement; the row's name says so)",
    )
    bench.add_argument(
        "--crm-customers",
        type=int,
        default=1_000_000,
        help="seed this many demo customers for the CRM section (0 skips it)",
    )
    bench.add_argument(
        "--crm-url",
        help="PostgreSQL server for the CRM section's throwaway database (default: "
        "$CAREBOT_BENCH_POSTGRES_URL or postgresql://postgres@127.0.0.1:5432/test)",
    )
    bench.add_argument(
        "--care-dispatch",
        type=int,
        default=0,
        metavar="N",
        help="dispatch N care messages to a stub Rasa and time it (0, the default, skips it)",
    )
    bench.add_argument(
        "--care-dispatch-rasa",
        type=int,
        default=0,
        metavar="N",
        help="with --care-dispatch: also N messages through the real Rasa server",
    )
    bench.set_defaults(handler=cmd_bench)

    notify = commands.add_parser(
        "notify", help="send a proactive message (an EXTERNAL_ intent) on the customer's channel"
    )
    notify.add_argument("customer_id", type=int)
    notify.add_argument("intent", help="e.g. EXTERNAL_order_update")
    notify.add_argument(
        "--entity", action="append", default=[], metavar="KEY=VALUE", help="repeatable"
    )
    notify.add_argument("--dry-run", action="store_true", help="print the route, send nothing")
    notify.set_defaults(handler=cmd_notify)

    check = commands.add_parser("validate", help="validate domain and training data (strict)")
    check.set_defaults(handler=cmd_validate)

    gate = commands.add_parser("nlu-gate", help="evaluate the model on the held-out NLU sets")
    gate.add_argument("--data", type=Path, help="gate this one file, not every gated set")
    gate.add_argument("--min-accuracy", type=float, default=0.96, help="with --data")
    gate.add_argument("--min-macro-f1", type=float, default=0.96, help="with --data")
    gate.set_defaults(handler=cmd_nlu_gate)
    add_report_parser(commands)
    add_care_parsers(commands)
    add_privacy_parsers(commands)
    return parser


REPORT_GROUPINGS = ("channel", "tier", "segment", "agent")  # survey_report.GROUPINGS


def add_report_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser("report", help="print a report from the CRM database")
    reports = report.add_subparsers(required=True, metavar="REPORT")
    surveys = reports.add_parser("surveys", help="CSAT, NPS, response rate and top themes")
    surveys.add_argument("--from", dest="first", type=_day, required=True, metavar="YYYY-MM-DD")
    surveys.add_argument(
        "--to", dest="last", type=_day, required=True, metavar="YYYY-MM-DD", help="included"
    )
    surveys.add_argument("--by", choices=REPORT_GROUPINGS, help="one row per group")
    surveys.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="csv: UTF-8 BOM"
    )
    surveys.add_argument("--tz", default=BUSINESS_TZ.key, help="days in this zone (%(default)s)")
    surveys.set_defaults(handler=cmd_report_surveys)
    add_figure_parsers(reports, _day)  # the dashboard's figures (bot/report_cli.py)


def add_users_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = commands.add_parser("users", help="staff accounts of the console")
    actions = users.add_subparsers(required=True, metavar="ACTION")
    add = actions.add_parser("add", help="create a staff user (asks for the password)")
    add.add_argument("username")
    add.add_argument("--name", help="the name customers see (default: the username)")
    add.add_argument("--role", choices=["agent", "supervisor", "manager", "admin"], default="agent")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(handler=cmd_users_add)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def cmd_train(args: argparse.Namespace) -> int:
    from bot.training import ensure_model

    model = ensure_model(load_settings().project_dir, force=args.force)
    print(f"model: {model}")
    return 0


def cmd_model_path(args: argparse.Namespace) -> int:
    from bot.training import ensure_model

    print(ensure_model(load_settings().project_dir))
    return 0


def add_demo_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--demo",
        action="store_true",
        help="demo mode: seed demo customers and staff into an empty SQLite database, the web "
        "chat's demo login, one-time codes in the log (what `make run` asks for)",
    )


def demo_settings(args: argparse.Namespace) -> Settings:
    """The settings, in demo mode when `--demo` asks for it (children inherit CAREBOT_DEMO)."""
    if getattr(args, "demo", False):
        os.environ["CAREBOT_DEMO"] = "1"
    return load_settings()


def cmd_run(args: argparse.Namespace) -> int:
    from bot.runtime import Stack
    from bot.supervisor import RestartPolicy, Supervisor
    from bot.training import ensure_model

    os.umask(0o077)  # var/: databases, logs and secrets are the operator's alone
    log_format.configure()
    settings = demo_settings(args)
    model = ensure_model(settings.project_dir)
    if settings.demo or args.migrate:
        if not prepare_database(settings.database_url, demo=settings.demo):
            return 2
    elif not schema_is_current(settings.database_url):
        return 2
    _stop_on_sigterm()
    with Stack(settings, model) as stack:
        print_where_to_chat(settings, stack.wechat_sim_url)
        stop = _stop_event()
        code = Supervisor(stack, RestartPolicy.from_env(os.environ)).watch(stop)
        print("\nstopping…", file=sys.stderr)
    return code


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.serve import exec_service, service_for
    from bot.training import ensure_model

    os.umask(0o077)
    settings = load_settings()
    if args.part == "log-consumer" and not settings.event_broker_url:
        print("carebot: set CAREBOT_EVENT_BROKER_URL (amqp://...) to run the log consumer")
        return 2
    model = (args.model or ensure_model(settings.project_dir)) if args.part == "rasa" else None
    exec_service(service_for(args.part, settings, model), settings.project_dir)


def cmd_shell(args: argparse.Namespace) -> int:
    import subprocess

    from bot.runtime import action_server, rasa_secrets, wait_until_ready, write_runtime_config
    from bot.training import ensure_model, rasa_env

    os.umask(0o077)
    settings = demo_settings(args)
    model = ensure_model(settings.project_dir)
    if not prepare_database(settings.database_url, demo=settings.demo):
        return 2
    endpoints, _ = write_runtime_config(settings)
    actions = action_server(settings)
    actions.start(settings.project_dir, settings.var_dir / "log" / "action-server.log")
    try:
        wait_until_ready(actions)
        # `rasa shell` serves its own REST endpoint: on loopback, like every other port here
        command = [sys.executable, "-m", "bot.rasa_main", "shell", "--model", str(model)]
        command += ["--endpoints", str(endpoints), "--port", str(settings.rasa_port)]
        command += ["--interface", "127.0.0.1"]
        env = rasa_env(rasa_secrets(settings))
        return subprocess.run(command, cwd=settings.project_dir, env=env).returncode
    finally:
        actions.stop()


def cmd_wechat_sim(args: argparse.Namespace) -> int:
    import os

    from bot.wechat_sim.app import run
    from bot.wechat_sim.config import load_config

    try:
        config = load_config(args, os.environ)
    except ValueError as error:
        print(f"carebot wechat-sim: {error}", file=sys.stderr)
        return 2
    run(config)
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    from bot.console.app import serve
    from bot.console.config import console_config

    log_format.configure()
    log_format.sanic_writes_its_own()
    settings = load_settings()
    serve(console_config(settings), settings.console_host, settings.console_port)
    return 0


def cmd_log_consumer(args: argparse.Namespace) -> int:
    from bot.log_consumer import ConsumerConfig, run_consumer
    from bot.reconcile import reconcile_config

    settings = load_settings()
    if not settings.event_broker_url:
        print("carebot: set CAREBOT_EVENT_BROKER_URL (amqp://...) to run the log consumer")
        return 2
    log_format.configure()
    config = ConsumerConfig(
        amqp_url=settings.event_broker_url,
        database_url=settings.database_url,
        queue=settings.event_queue,
        exchange=settings.event_exchange,
        health_host=settings.health_host,
        health_port=settings.consumer_health_port,
        reconcile=reconcile_config(
            settings.tracker_url,
            settings.database_url,
            settings.consumer_reconcile_every,
            settings.consumer_reconcile_margin,
        ),
    )
    return run_consumer(config)


def cmd_users_add(args: argparse.Namespace) -> int:
    import getpass

    from crm_store.audit import record_audit
    from crm_store.db import make_engine, session_scope
    from crm_store.errors import CrmError
    from crm_store.staff import create_staff_user

    password = (
        sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("password: ")
    )
    engine = make_engine(load_settings().database_url)
    try:
        with session_scope(engine) as session:
            member = create_staff_user(
                session,
                username=args.username,
                display_name=args.name or args.username,
                role=args.role,
                password=password,
            )
            record_audit(
                session,
                actor="cli",
                action="create_staff_user",
                entity="staff_user",
                entity_id=member.id,
                changes={"username": [None, member.username], "role": [None, member.role]},
            )
    except CrmError as error:
        print(f"carebot: {error}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"staff user {member.username} ({member.role}) created, id {member.id}")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Migrates under the migration lock: run on several hosts at once, one migrates and the
    others wait and find the schema at head (crm_store/locks.py)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    from crm_store import migrate
    from crm_store.locks import LockTimeout

    log_format.configure()
    url = load_settings().database_url
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        migrate.upgrade(url)
    except LockTimeout as error:
        print(f"carebot db-upgrade: {error}", file=sys.stderr)
        return 1
    except OperationalError as error:
        print(f"carebot: cannot use the CRM database {shown}: {error.orig}", file=sys.stderr)
        return 2
    print(f"CRM database is up to date ({migrate.head_revision()}): {shown}")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from crm_store import demo, migrate
    from crm_store.db import make_engine
    from crm_store.errors import Conflict

    url = load_settings().database_url
    migrate.upgrade(url)
    with tqdm(total=args.customers, unit="customers") as bar:

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        try:
            written = demo.seed(
                make_engine(url), customers=args.customers, seed=args.seed, progress=progress
            )
        except Conflict as error:
            print(f"carebot seed: {error}", file=sys.stderr)
            return 1
    print(f"seeded {written} customers into {url}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from bot.bench.report import BenchOptions, run_bench

    options = BenchOptions(
        data_dir=args.data_dir,
        sets=[name for name in args.sets.split(",") if name],
        rest=args.rest,
        conversations=args.conversations,
        output=args.output,
        fresh=args.fresh,
        pipelines=[name for name in args.pipelines.split(",") if name],
        stock_epochs=args.stock_epochs,
        crm_customers=args.crm_customers,
        crm_url=args.crm_url,
        care_dispatch=args.care_dispatch,
        care_dispatch_rasa=args.care_dispatch_rasa,
    )
    run_bench(options, command="carebot bench " + " ".join(sys.argv[2:]))
    return 0


def cmd_notify(args: argparse.Namespace) -> int:
    from bot.care.notify import NotDelivered, route_for, trigger
    from crm_store.db import make_engine
    from crm_store.errors import NotFound

    if not args.intent.startswith("EXTERNAL_"):
        print("the intent must be an EXTERNAL_ intent of the domain", file=sys.stderr)
        return 2
    if any("=" not in item for item in args.entity):
        print("--entity takes KEY=VALUE", file=sys.stderr)
        return 2
    entities = dict(item.split("=", 1) for item in args.entity)
    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        route = route_for(engine, args.customer_id)
    except NotFound:
        print(f"no customer {args.customer_id}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    if route is None:
        print(f"customer {args.customer_id} is reachable on no channel now: not sent")
        return 3
    print(f"{route.channel} conversation {route.conversation_id}")
    if args.dry_run:
        return 0
    try:
        trigger(settings.rasa_url, settings.api_token, route, args.intent, entities)
    except NotDelivered as error:
        print(f"not sent: {error}", file=sys.stderr)
        return 1
    print("sent")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from bot.validate import validate

    return validate(load_settings().project_dir)


def cmd_nlu_gate(args: argparse.Namespace) -> int:
    """Every gated set is evaluated, even after one fails, so the report shows them all."""
    from bot.nlu.evaluate import NLU_GATES
    from bot.training import ensure_model

    project_dir = load_settings().project_dir
    model = ensure_model(project_dir)
    if args.data:
        gates = {args.data: (args.min_accuracy, args.min_macro_f1)}
    else:
        gates = {project_dir / path: floors for path, floors in NLU_GATES.items()}
    passed = [nlu_gate_passes(model, path, *floors) for path, floors in gates.items()]
    return 0 if all(passed) else 1


def nlu_gate_passes(model: Path, data: Path, min_accuracy: float, min_macro_f1: float) -> bool:
    from bot.nlu.evaluate import evaluate_model, load_examples

    report = evaluate_model(model, load_examples(data))
    print(f"{data}:")
    print(report.as_table())
    passed = report.accuracy >= min_accuracy and report.macro_f1 >= min_macro_f1
    verdict = "passed" if passed else "FAILED"
    need = f"accuracy ≥ {min_accuracy}, macro-F1 ≥ {min_macro_f1}"
    print(f"NLU gate {verdict} on {data} (need {need})")
    return passed


def cmd_report_surveys(args: argparse.Namespace) -> int:
    """Survey figures over whole local days (--to included), rendered for a terminal or Excel."""
    from bot.reports.render import render_survey_report

    url = load_settings().database_url
    return print_report(
        url,
        lambda: _survey_report(url, args),
        lambda report: render_survey_report(report, args.format),
    )


def _survey_report(url: str, args: argparse.Namespace) -> SurveyReport:
    from crm_store.dashboard import day_window
    from crm_store.dashboard.survey_report import build_survey_report
    from crm_store.db import make_engine, session_scope

    since, until = day_window(args.first, args.last, tz=args.tz)
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            return build_survey_report(session, since=since, until=until, by=args.by)
    finally:
        engine.dispose()


def prepare_database(url: str, demo: bool = False) -> bool:
    """Brings the CRM schema up to date; in demo mode, seeds demo data into an empty SQLite one.

    Demo data (customers, and staff with a published password) is never written unless asked
    for, never into PostgreSQL or another server database, never into one that has customers.
    An unreachable database is reported in one line (with the URL) instead of a traceback.
    """
    from sqlalchemy.exc import OperationalError

    from crm_store import demo as demo_data
    from crm_store import migrate
    from crm_store.db import make_engine

    try:
        migrate.upgrade(url)
        if demo and url.startswith("sqlite"):
            demo_data.ensure_demo_data(make_engine(url), customers=2000)
        elif demo:
            print("carebot: demo data is only seeded into SQLite; `carebot seed` fills others")
    except OperationalError as error:
        print(f"carebot: cannot use the CRM database {url}: {error.orig}", file=sys.stderr)
        return False
    return True


def schema_is_current(url: str) -> bool:
    """True when the CRM schema is at this code's head; otherwise says what to run (the
    production profile migrates in its own step, `carebot db-upgrade`, never on every start)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    from crm_store import migrate

    shown = make_url(url).render_as_string(hide_password=True)
    try:
        current = migrate.current_revision(url)
    except OperationalError as error:
        print(f"carebot: cannot use the CRM database {shown}: {error.orig}", file=sys.stderr)
        return False
    head = migrate.head_revision()
    if current != head:
        print(
            f"carebot: the CRM database {shown} is at revision {current or 'none'}, this code "
            f"needs {head}: run `carebot db-upgrade` first (or `carebot run --migrate`)",
            file=sys.stderr,
        )
        return False
    return True


def print_where_to_chat(settings: Settings, wechat_sim_url: str | None = None) -> None:
    from bot.runtime import ready_url, scheduler_health_port

    health = f"{ready_url(settings, scheduler_health_port(settings))} (scheduler; docs/deploy.md)"
    wechat_sim = f"  WeChat sim     {wechat_sim_url}/ (chat as a WeChat user)\n"
    print(
        "\ncarebot is running:\n"
        f"  REST channel   POST {settings.rasa_url}/webhooks/rest/webhook\n"
        f"  web chat       {settings.rasa_url}/webhooks/webchat/ (log in as a demo customer)\n"
        + (wechat_sim if wechat_sim_url else "")
        + f"  HTTP API       {settings.rasa_url} (token in {settings.var_dir / 'api_token'})\n"
        f"  action server  {settings.action_url}\n"
        "  care scheduler proactive messages (carebot campaigns status)\n"
        f"  staff console  {settings.console_url}/ (staff: agent / carebot-demo)\n"
        f"  health         {health}\n"
        "  chat in a terminal: make shell    stop: Ctrl-C\n",
        flush=True,
    )


def _stop_event() -> threading.Event:
    """Set by SIGTERM or SIGINT (Ctrl-C): the supervisor stops watching, the stack stops."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


def _stop_on_sigterm() -> None:
    def raise_interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, raise_interrupt)


if __name__ == "__main__":
    sys.exit(main())
