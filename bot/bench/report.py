"""`carebot bench`: runs the benchmarks and writes docs/benchmarks.md with the machine they ran on.

Everything above the notes marker in docs/benchmarks.md is regenerated; the notes below it are
kept, so the interpretation written by people survives a new run.
"""

from __future__ import annotations

import os
import platform
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.bench import care_dispatch, crm, dashboard, nlu, rest
from bot.runtime import Stack, rasa_server, wait_until_ready, wechat_simulator_env
from bot.settings import Settings, load_settings
from bot.training import ensure_model

NOTES_MARKER = "<!-- notes: everything below is kept by `make bench` -->"
PUBLIC_SETS = {
    "smp2017": (["train.csv", "dev.csv"], ["test.csv"]),
    "banking77": (["train.csv"], ["test.csv"]),
    "clinc150": (["train.csv"], ["test.csv"]),
}


@dataclass(frozen=True)
class BenchOptions:
    data_dir: Path
    sets: Sequence[str]
    rest: bool
    conversations: int
    output: Path
    fresh: bool = False
    pipelines: Sequence[str] = nlu.PIPELINES
    stock_epochs: int = 0  # the stock pipelines' DIET epochs (0: Rasa's 100)
    crm_customers: int = 0  # 0: no CRM section
    crm_url: str | None = None  # the PostgreSQL server for the throwaway database
    care_dispatch: int = 0  # care messages dispatched to a stub Rasa (0: no dispatch section)
    care_dispatch_rasa: int = 0  # and to the real Rasa server (0: not measured)


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_kb / 1024 / 1024:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def data_sets(options: BenchOptions, project_dir: Path) -> list[nlu.DataSet]:
    chosen = []
    for name in options.sets:
        if name in nlu.OUR_SETS:
            chosen.append(nlu.our_data_set(project_dir, name))
        elif (options.data_dir / name).is_dir():
            train, test = PUBLIC_SETS[name]
            chosen.append(nlu.public_data_set(options.data_dir, name, train, test))
        else:
            print(f"skipping {name}: {options.data_dir / name} not found")
    return chosen


def bench_members(url: str, count: int, kind: str = "web_user") -> list[str]:
    """Identities `bench-<n>` (of `kind`: a web login, or a REST back end's user id) for the
    first `count` demo members: identified conversations."""
    from crm_store import demo, migrate
    from crm_store.db import make_engine, session_scope
    from crm_store.identities import link_identity

    migrate.upgrade(url)
    engine = make_engine(url)
    demo.ensure_demo_data(engine, customers=max(2000, count))
    with session_scope(engine) as session:
        for number in range(1, count + 1):
            link_identity(session, customer_id=number, kind=kind, value=f"bench-{number}")
    engine.dispose()
    return [f"bench-{number}" for number in range(1, count + 1)]


# What runs while a turn is measured: the Rasa server and the action server (and the log
# consumer in the production profile), nothing that sends on its own (the care scheduler) or
# serves staff (the console, the WeChat simulator).
BENCH_PARTS = frozenset({"action-server", "rasa", "log-consumer"})
REPEATS = 2  # A B, then B A


def forget_bench_conversations(settings: Settings) -> None:
    """Every run starts with no conversations: the bench members are the same each run, so a
    conversation left by the last run (its session not yet expired) would go on from there,
    longer at every run, while the stock bot's senders are new each time."""
    if not settings.tracker_url:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{settings.tracker_db}{suffix}").unlink(missing_ok=True)


def rest_section(conversations: int, repeats: int = REPEATS) -> list[str]:
    settings = load_settings(_bench_env())
    forget_bench_conversations(settings)
    model = ensure_model(settings.project_dir)
    long_turns, long_conversations = 50, 5
    count = repeats * len(rest.CONCURRENCY) * (conversations + 1) + long_conversations
    members = iter(bench_members(settings.database_url, count, kind="rest_user"))
    credential = {"Authorization": f"Bearer {settings.rest_secret}"}
    port = int(_bench_env()["CAREBOT_RASA_PORT"]) + 1
    stock_service, project = rest.stock_init_bot(port)
    log_dir = settings.var_dir / "log"
    with Stack(settings, model, log_dir=log_dir, parts=BENCH_PARTS) as stack:
        rest.start(stock_service, project, log_dir / "rasa-init.log")
        try:
            ours = rest.Contender(
                "carebot", settings.rasa_url, rest.OUR_SCRIPT, members, credential
            )
            stock = rest.Contender("stock rasa init", f"http://127.0.0.1:{port}", rest.STOCK_SCRIPT)
            mine, theirs = rest.alternate(ours, stock, conversations, repeats)
            long_rows = rest.long_conversation_rows([ours, stock], long_turns, long_conversations)
            our_mb = rest.resident_mb(_pid(stack.service("rasa")))
            action_mb = rest.resident_mb(_pid(stack.service("action-server")))
            stock_mb = rest.resident_mb(_pid(stock_service))
        finally:
            stock_service.stop()
    return [
        "## Turn latency and throughput (REST channel)",
        "",
        f"{conversations} conversations of {len(rest.OUR_SCRIPT)} messages per concurrency level "
        f"and bot, after one warm-up conversation, repeated {repeats} times in the order A B, "
        "B A (the machine's drift lands on both bots); medians over the repeats, with the "
        "p50's and the throughput's range. Both bots run at the same time and nothing else "
        "does: ours is the Rasa server and the action server only (no care scheduler, console "
        "or WeChat simulator); the stock bot is `rasa init` with no custom actions. Our "
        "conversations are members known to the brand's back end (`bench-<n>`, through the "
        "REST channel with its credential), so the order, warranty and points turns read the "
        "CRM (SQLite).",
        "",
        *rest.summary_rows(mine, theirs),
        "",
        'A CRM-backed turn: "我的订单到哪了" (the member\'s recent orders from the CRM).',
        "",
        *rest.crm_summary_rows(mine, theirs),
        "",
        f"A long conversation: {long_conversations} conversations of {long_turns} messages "
        "(each bot's script repeated), one at a time; the same messages early and late, so "
        "only the conversation's length differs.",
        "",
        *long_rows,
        "",
        "| bot | resident memory after the load (Rasa server + children) |",
        "| --- | --- |",
        f"| stock rasa init | {stock_mb:.0f} MiB |",
        f"| carebot | {our_mb:.0f} MiB ({our_mb / stock_mb:.2f}× stock) |",
        f"| carebot action server | {action_mb:.0f} MiB |",
        "",
    ]


RASA_WORKERS = (1, 2, 4, 8)  # dispatch workers measured against one Rasa (4 and 8 against two)


def care_dispatch_section(messages: int, rasa_messages: int) -> list[str]:
    """The dispatcher against a stub Rasa and, if asked, against the real system: by one
    worker and more, on one Rasa replica and (with Redis for the lock store, CAREBOT_REDIS_URL)
    on two."""
    from bot.care.dispatch import DEFAULT_RATE_PER_S, DEFAULT_WORKERS

    workers = DEFAULT_WORKERS
    results = [
        care_dispatch.measure_stub(messages),
        care_dispatch.measure_stub(messages, workers=workers),
    ]
    if rasa_messages:
        settings = load_settings(_bench_env())
        model = ensure_model(settings.project_dir)
        logins = bench_members(settings.database_url, rasa_messages)
        quiet = {"CAREBOT_SCHEDULER_AUTOPLAN": "0", "CAREBOT_SCHEDULER_DISPATCH_EVERY": "86400"}
        with Stack(settings, model, settings.var_dir / "log", scheduler_env=quiet):
            url, token = settings.database_url, settings.api_token
            one = (settings.rasa_url,)
            for count in RASA_WORKERS:
                results.append(care_dispatch.measure_rasa(url, one, token, logins, count))
            if settings.redis_url:
                with second_rasa(settings, model) as other:
                    both = (settings.rasa_url, other)
                    for count in RASA_WORKERS[2:]:
                        results.append(care_dispatch.measure_rasa(url, both, token, logins, count))
    return care_dispatch.section(results, DEFAULT_RATE_PER_S, workers)


@contextmanager
def second_rasa(settings: Settings, model: Path) -> Iterator[str]:
    """Another Rasa process of the running stack (same tracker store, same Redis lock store),
    on the next port; its URL."""
    port = settings.rasa_port + 2
    env = {
        **_bench_env(),
        "CAREBOT_RASA_PORT": str(port),
        "CAREBOT_RASA_METRICS_PORT": str(BENCH_HEALTH_PORT + 3),
    }
    other = load_settings(env)
    endpoints, credentials = other.run_dir / "endpoints.yml", other.run_dir / "credentials.yml"
    service = rasa_server(other, model, endpoints, credentials, wechat_simulator_env(other))
    service.start(other.project_dir, other.var_dir / "log" / "rasa-2.log")
    try:
        wait_until_ready(service)
        yield other.rasa_url
    finally:
        service.stop()


def _pid(service: rest.Service) -> int:
    assert service.process is not None
    return service.process.pid


def _bench_env() -> dict[str, str]:
    var_dir = Path(
        os.environ.get("CAREBOT_BENCH_VAR_DIR") or Path(tempfile.gettempdir()) / "carebot-bench"
    )
    return dict(
        os.environ,
        CAREBOT_VAR_DIR=str(var_dir),
        CAREBOT_RASA_PORT=os.environ.get("CAREBOT_BENCH_PORT", "5105"),
        CAREBOT_ACTION_PORT=os.environ.get("CAREBOT_BENCH_ACTION_PORT", "5155"),
        CAREBOT_WECHAT_SIM_PORT=os.environ.get("CAREBOT_BENCH_WECHAT_SIM_PORT", "5106"),
        # health and metrics ports of their own too, beside a running `make run` (5008-5010)
        CAREBOT_SCHEDULER_HEALTH_PORT=str(BENCH_HEALTH_PORT),
        CAREBOT_CONSUMER_HEALTH_PORT=str(BENCH_HEALTH_PORT + 1),
        CAREBOT_RASA_METRICS_PORT=str(BENCH_HEALTH_PORT + 2),
        CAREBOT_DATABASE_URL=f"sqlite:///{var_dir / 'crm.db'}",
        # the REST channel is on only with its credential, which the load sends
        CAREBOT_REST_SECRET=os.environ.get("CAREBOT_REST_SECRET") or BENCH_REST_SECRET,
    )


BENCH_REST_SECRET = secrets.token_urlsafe(24)
# the first of three (scheduler health, consumer health, Rasa metrics); a second bench running
# beside another sets CAREBOT_BENCH_HEALTH_PORT and CAREBOT_BENCH_VAR_DIR
BENCH_HEALTH_PORT = int(os.environ.get("CAREBOT_BENCH_HEALTH_PORT", "5108"))


def nlu_section(results: Sequence[nlu.Result], kept_rows: Sequence[str] = ()) -> list[str]:
    """The NLU table: `kept_rows` (sets this run did not measure), then this run's rows."""
    table = nlu.results_table(results).splitlines()
    return [
        "## NLU accuracy",
        "",
        "Each pipeline trained on the set's training split and scored on its test split. "
        "`carebot held-out` is our own data: trained on `data/nlu/`, scored on "
        "`tests/nlu/holdout.yml`, retrieval intents scored with their sub-intent (`faq/invoice`). "
        "A prediction of `nlu_fallback` counts as wrong. A row is re-measured whenever its "
        "inputs change (config, custom components, data, Rasa version); otherwise the result "
        "measured on this machine at the time shown is reused (`--fresh` re-measures all).",
        "",
        *table[:2],
        *kept_rows,
        *table[2:],
        "",
    ]


def unmeasured_rows(
    previous_report: str,
    measured_sets: Sequence[str],
    measured_pipelines: Sequence[str] | None = None,
) -> list[str]:
    """Table rows of the previous report's NLU section that this run did not measure: their data
    set was not measured or (given `measured_pipelines`, the pipelines' names) their pipeline."""
    section = split_sections(previous_report.partition(NOTES_MARKER)[0]).get("NLU accuracy", "")
    rows = [line for line in section.splitlines() if line.startswith("| ")][2:]
    return [
        row
        for row in rows
        if row.split("|")[1].strip() not in measured_sets
        or (measured_pipelines is not None and row.split("|")[2].strip() not in measured_pipelines)
    ]


def write_report(output: Path, sections: Sequence[str], command: str) -> None:
    """Writes the generated sections; sections this run did not measure are kept as they were."""
    previous = output.read_text(encoding="utf-8") if output.exists() else ""
    generated, _, notes = previous.partition(NOTES_MARKER)
    merged = {**split_sections(generated), **split_sections("\n".join(sections))}
    header = [
        "# Benchmarks",
        "",
        f"Last generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Machine: {machine()}. Commit: {_commit()}.",
        "",
    ]
    body = "\n".join(header) + "\n" + "\n".join(merged.values())
    output.write_text(f"{body.rstrip()}\n\n{NOTES_MARKER}{notes or chr(10)}", encoding="utf-8")


def split_sections(text: str) -> dict[str, str]:
    """The `## ` sections of a generated report, by heading, in order."""
    sections: dict[str, str] = {}
    for chunk in ("\n" + text).split("\n## ")[1:]:
        heading = chunk.split("\n", 1)[0]
        sections[heading] = "## " + chunk.rstrip() + "\n"
    return sections


def _commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() or "uncommitted"


def crm_report_section(options: BenchOptions, previous_report: str) -> list[str]:
    """The CRM section; summary rows of other sizes in the previous report are kept."""
    result = crm.measure(crm.server_url(options.crm_url), options.crm_customers)
    section = split_sections(previous_report.partition(NOTES_MARKER)[0]).get(crm.HEADING, "")
    kept = crm.other_sizes(section, options.crm_customers)
    measured_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = crm.crm_section(result, measured_at, machine(), kept)
    if result.dashboard is not None:  # the manager dashboard, on the same seeded database
        lines += dashboard.dashboard_section(
            result.dashboard, result.customers, measured_at, machine()
        )
    return lines


def run_bench(options: BenchOptions, command: str) -> None:
    project_dir = load_settings().project_dir
    previous = options.output.read_text(encoding="utf-8") if options.output.exists() else ""
    sections: list[str] = []
    chosen = data_sets(options, project_dir)
    if chosen:
        results = nlu.run_nlu_bench(
            chosen,
            project_dir,
            fresh=options.fresh,
            pipelines=options.pipelines,
            stock_epochs=options.stock_epochs,
        )
        measured = sorted({result.contender for result in results})
        kept = unmeasured_rows(previous, [data_set.name for data_set in chosen], measured)
        sections += nlu_section(results, kept)
    if options.rest:
        sections += rest_section(options.conversations)
    if options.crm_customers:
        sections += crm_report_section(options, previous)
    if options.care_dispatch:
        sections += care_dispatch_section(options.care_dispatch, options.care_dispatch_rasa)
    write_report(options.output, sections, command)
    print("\n".join(sections))
