from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.future import create_engine

from bot.bench import crm
from bot.bench.crm_timings import CrmBench, QueryTiming
from bot.bench.report import NOTES_MARKER, split_sections, write_report
from bot.cli import build_parser

MEASURED = "2026-11-22 12:00 UTC"


def _result(customers: int = 1_000_000, seed_s: float = 212.4) -> CrmBench:
    return CrmBench(
        customers=customers,
        database="PostgreSQL 15.20",
        seed_s=seed_s,
        analytics_s=31.25,
        rows={"products": 12, "customers": customers, "orders": 5 * customers},
        queries=(QueryTiming("recent orders", 1.234, 2.5), QueryTiming("points balance", 0.4, 0.9)),
    )


def test_the_section_has_a_summary_row_the_reads_the_rows_and_the_machine() -> None:
    lines = crm.crm_section(_result(), MEASURED, "2 cores (test CPU)")
    assert lines[0] == "## CRM store at scale"
    assert (
        "| 1,000,000 | PostgreSQL 15.20 | 212 s (3.5 min) | 4,708 customers/s | 31.2 s "
        "| 6,000,012 | 2026-11-22 12:00 UTC |"
    ) in lines
    assert (
        "| recent orders | 订单查询: the 5 latest orders with items and shipping events "
        "| 1.23 | 2.50 |"
    ) in lines
    assert "| orders | 5,000,000 | 5.00 |" in lines
    assert "| products | 12 | (reference data) |" in lines
    assert lines[-2] == f"Measured on {MEASURED}: 2 cores (test CPU)."


def test_a_short_seed_is_shown_in_seconds() -> None:
    assert "| 300 | PostgreSQL 15.20 | 0.5 s |" in crm.summary_row(_result(300, 0.5), MEASURED)


def test_rows_of_other_sizes_are_kept_and_the_measured_size_is_replaced() -> None:
    small = crm.summary_row(_result(100_000, 20.0), "earlier")
    section = "\n".join(
        crm.crm_section(_result(), "earlier", "m", kept_rows=[small]) + ["more text"]
    )
    assert crm.other_sizes(section, 1_000_000) == [small]
    assert len(crm.other_sizes(section, 50_000)) == 2
    assert crm.other_sizes("## CRM store at scale\n\nno table yet\n", 1_000) == []


def test_the_section_replaces_only_itself_in_the_report(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    write_report(report, ["## NLU accuracy", "", "nlu rows", "", "## Latency", "", "rest"], "x")
    report.write_text(report.read_text() + "\nour notes\n")

    write_report(report, crm.crm_section(_result(), MEASURED, "m"), "carebot bench --sets ''")

    text = report.read_text()
    assert list(split_sections(text.partition(NOTES_MARKER)[0])) == [
        "NLU accuracy",
        "Latency",
        "CRM store at scale",
    ]
    assert "nlu rows" in text and "rest" in text and text.endswith("our notes\n")


def test_a_tiny_run_on_sqlite_seeds_refreshes_and_times_every_read() -> None:
    result = crm.measure("sqlite://", 300, samples=10)
    assert result.customers == result.rows["customers"] == 300
    assert result.database.startswith("SQLite") and result.seed_s > 0 and result.analytics_s > 0
    assert 3 * 300 < result.rows["orders"] < 8 * 300
    assert [q.name for q in result.queries] == list(crm.READ_USES)
    assert all(0 < q.p50_ms <= q.p95_ms for q in result.queries)


def test_the_throwaway_postgresql_database_is_dropped_afterwards() -> None:
    server = crm.server_url()
    admin = create_engine(server, future=True)
    try:
        admin.connect().close()
    except OperationalError:
        admin.dispose()
        pytest.skip(f"PostgreSQL unreachable at {server}")
    with crm.throwaway_database(server) as url:
        name = url.rsplit("/", 1)[1]
        assert _database_exists(admin, name)
    assert not _database_exists(admin, name)
    admin.dispose()


def _database_exists(admin: Engine, name: str) -> bool:
    with admin.connect() as connection:
        query = text("SELECT count(*) FROM pg_database WHERE datname = :name")
        return bool(connection.scalar(query, {"name": name}))


def test_bench_seeds_a_million_crm_customers_unless_told_otherwise() -> None:
    parser = build_parser()
    assert parser.parse_args(["bench"]).crm_customers == 1_000_000
    assert parser.parse_args(["bench", "--crm-customers", "0"]).crm_customers == 0
    assert parser.parse_args(["bench", "--crm-url", "sqlite://"]).crm_url == "sqlite://"


def test_the_server_comes_from_the_option_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CAREBOT_BENCH_POSTGRES_URL", raising=False)
    assert crm.server_url() == crm.DEFAULT_SERVER
    monkeypatch.setenv("CAREBOT_BENCH_POSTGRES_URL", "postgresql://elsewhere/db")
    assert crm.server_url() == "postgresql://elsewhere/db"
    assert crm.server_url("sqlite://") == "sqlite://"
