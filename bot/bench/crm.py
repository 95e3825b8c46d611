"""CRM store at scale: seed N demo customers into a throwaway database, refresh the analytics and
time the reads the assistant makes (`carebot bench --crm-customers N`)."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy.engine import make_url
from sqlalchemy.future import create_engine

from bot.bench.crm_timings import CrmBench, run
from crm_store.demo import BULK_TABLES

HEADING = "CRM store at scale"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_CUSTOMERS = 1_000_000
SAMPLES = 100  # random customers per read
SEED_TARGET_S = 600.0  # issue 3: a million customers in under 10 minutes
PLAN_TARGET_S = 60.0  # issue 7: a day of campaigns for a million customers in under a minute
# What each timed read answers in a conversation (bot.bench.crm_timings names them).
READ_USES = {
    "find by identity": "who is writing: every turn of a logged-in web or WeChat user",
    "find by phone": "identification by mobile number",
    "recent orders": "订单查询: the 5 latest orders with items and shipping events",
    "points balance": "积分查询",
    "active warranties": "保修查询: the warranties still running",
}
SUMMARY_HEADER = [
    "| customers | database | seed | seed rate | analytics refresh | rows written | measured |",
    "| --- | --- | --- | --- | --- | --- | --- |",
]


def server_url(option: str | None = None) -> str:
    """--crm-url, else CAREBOT_BENCH_POSTGRES_URL, else the local test server."""
    return option or os.environ.get("CAREBOT_BENCH_POSTGRES_URL") or DEFAULT_SERVER


@contextmanager
def throwaway_database(server: str) -> Iterator[str]:
    """The URL of a new empty database on `server`'s PostgreSQL (for a SQLite URL, a temporary
    file), dropped afterwards. The database `server` names is only used to connect."""
    url = make_url(server)
    if url.get_backend_name() == "sqlite":
        with tempfile.TemporaryDirectory(prefix="carebot-crm-bench-") as tmp:
            yield f"sqlite:///{tmp}/crm.db"
        return
    name = f"carebot_bench_{secrets.token_hex(4)}"
    admin = create_engine(server, future=True, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def measure(server: str, customers: int, *, samples: int = SAMPLES) -> CrmBench:
    """Seeds, refreshes and reads in a throwaway database, with a progress bar for the seed."""
    from tqdm import tqdm

    with throwaway_database(server) as url, tqdm(total=customers, unit="customers") as bar:

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        return run(url, customers, samples=samples, progress=progress)


def crm_section(
    result: CrmBench, measured_at: str, machine: str, kept_rows: Sequence[str] = ()
) -> list[str]:
    """The report section: one summary row per size (`kept_rows` are other sizes measured
    before), then this run's reads and rows per table."""
    return [
        f"## {HEADING}",
        "",
        "`carebot seed` (`crm_store.demo.seed`) into an empty, freshly migrated database, then "
        "`refresh_customer_metrics()`, then the reads the assistant makes, each in its own "
        f"transaction as in an action, for {SAMPLES} random customers. Target (issue 3): "
        f"{DEFAULT_CUSTOMERS:,} customers seeded in under {SEED_TARGET_S / 60:.0f} minutes. "
        "Then `plan_day()` (docs/campaigns.md) plans every campaign on the seeding day and on "
        "the next festival, when every customer is greeted. Target (issue 7): a day planned for "
        f"{DEFAULT_CUSTOMERS:,} customers in under {PLAN_TARGET_S:.0f} s.",
        "",
        *SUMMARY_HEADER,
        *kept_rows,
        summary_row(result, measured_at),
        "",
        *reads_table(result),
        "",
        *planning_table(result),
        "",
        *rows_table(result),
        "",
        f"Measured on {measured_at}: {machine}.",
        "",
    ]


def summary_row(result: CrmBench, measured_at: str) -> str:
    rate = result.customers / result.seed_s if result.seed_s else 0.0
    return (
        f"| {result.customers:,} | {result.database} | {_duration(result.seed_s)} | "
        f"{rate:,.0f} customers/s | {result.analytics_s:.1f} s | {result.rows_written:,} | "
        f"{measured_at} |"
    )


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s ({seconds / 60:.1f} min)" if seconds >= 60 else f"{seconds:.1f} s"


def reads_table(result: CrmBench) -> list[str]:
    return [
        f"| read (at {result.customers:,} customers) | what the assistant uses it for "
        "| p50 ms | p95 ms |",
        "| --- | --- | --- | --- |",
        *(
            f"| {q.name} | {READ_USES.get(q.name, '')} | {q.p50_ms:.2f} | {q.p95_ms:.2f} |"
            for q in result.queries
        ),
    ]


def planning_table(result: CrmBench) -> list[str]:
    """`plan_day` (crm_store.campaigns.planning): every campaign of a day into the outbox."""
    return [
        f"| campaign planning (at {result.customers:,} customers) | day | outbox rows written "
        f"| time (target {PLAN_TARGET_S:.0f} s) |",
        "| --- | --- | --- | --- |",
        *(
            f"| {plan.kind} | {plan.day} | {plan.rows:,} | {plan.seconds:.1f} s |"
            for plan in result.planning
        ),
    ]


def rows_table(result: CrmBench) -> list[str]:
    return [
        f"| table (at {result.customers:,} customers) | rows | per customer |",
        "| --- | --- | --- |",
        *(
            f"| {table} | {rows:,} | {_per_customer(result, table)} |"
            for table, rows in result.rows.items()
        ),
    ]


def _per_customer(result: CrmBench, table: str) -> str:
    if table not in BULK_TABLES:
        return "(reference data)"
    return f"{result.rows[table] / result.customers:.2f}"


def other_sizes(section: str, customers: int) -> list[str]:
    """Summary rows of a previous section for sizes this run did not measure."""
    lines = section.splitlines()
    if SUMMARY_HEADER[0] not in lines:
        return []
    start = lines.index(SUMMARY_HEADER[0]) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("| "):
            break
        if line.split("|")[1].strip() != f"{customers:,}":
            rows.append(line)
    return rows
