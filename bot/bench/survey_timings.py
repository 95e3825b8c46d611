"""Timings of the survey reports over N synthetic survey responses, on PostgreSQL.

python -m bot.bench.survey_timings URL N

URL must name an empty (throwaway) PostgreSQL database; it is migrated, then filled by one
INSERT ... SELECT generate_series per table: N // 10 customers (tiers 50/30/10/10%), RFM
segments for 90% of them, 3 agents, and N responses spread evenly over 2026 (10% anonymous, a
quarter after a handoff; 75% answered, 15% declined, 10% only asked; 0-2 themes of 8). Each
report runs once to warm the cache, then REPEAT times; the median seconds are printed, for one
month (November, about N / 12 responses) and for the whole year (all N).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    Integer,
    String,
    case,
    cast,
    func,
    insert,
    literal,
    null,
    select,
)
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from crm_store.clock import BUSINESS_TZ
from crm_store.dashboard.survey_report import GROUPINGS, survey_report, top_themes
from crm_store.db import make_engine, session_scope
from crm_store.demo import customer_count
from crm_store.errors import Conflict, InvalidInput
from crm_store.migrate import upgrade
from crm_store.models import SURVEY_TRIGGERS, Customer, CustomerMetrics, StaffUser, SurveyResponse

YEAR_START = datetime(2026, 1, 1)  # naive UTC, as stored
YEAR_SECONDS = 365 * 24 * 3600
MONTH = (datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 12, 1, tzinfo=timezone.utc))
YEAR = (datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc))
REPEAT = 3
TIER_MIX = ["普通"] * 5 + ["银卡"] * 3 + ["金卡", "钻石"]
SEGMENT_MIX = ["champions", "loyal", "new", "promising", "about_to_sleep"]
SEGMENT_MIX += ["cannot_lose", "at_risk", "hibernating", "lost", "prospect"]
CSAT_MIX = [1, 2, 3, 3, 4, 4, 4, 5, 5, 5]
NPS_MIX = [2, 5, 6, 7, 7, 8, 8, 9, 9, 10, 10]
THEME_MIX = ["物流", "售后", "产品质量", "客服态度", "价格", "使用方法", "安装", "退换货"]
AGENTS = ("agent", "agent2", "agent3")


def customers_for(responses: int) -> int:
    return max(responses // 10, 1)


def series(n: int) -> Any:
    """generate_series(1, n) AS g(i): the integers to derive synthetic rows from."""
    return func.generate_series(1, n).table_valued("i").render_derived(name="g").c.i


def pick(values: list[Any], index: Any) -> Any:
    """values[index % len(values)] in SQL (PostgreSQL arrays count from 1)."""
    return array(values)[index % len(values) + 1]


def scatter(i: Any, count: int) -> Any:
    """i spread over 0..count - 1 (in bigint: i x 7919 outgrows an integer)."""
    return cast(cast(i, BigInteger) * 7919 % count, Integer)


def insert_customers(session: Session, count: int) -> int:
    """`count` customers with a tier mix; the first id (one INSERT, so the ids follow on)."""
    i = series(count)
    rows = select(
        literal("bench ") + cast(i, String),
        pick(TIER_MIX, i),
        literal(0),
        literal("web"),
        literal(BUSINESS_TZ.key),
        literal(YEAR_START),
        literal(False),
        literal(False),
    )
    columns = ["name", "tier", "points_balance", "preferred_channel", "timezone", "created_at"]
    columns += ["lunar_birth_leap", "celebrates_lunar_birthday"]
    session.execute(insert(Customer).from_select(columns, rows))
    return int(session.scalar(select(func.min(Customer.id))))


def insert_metrics(session: Session) -> None:
    """RFM segments for every customer but one in ten (those report as "unknown")."""
    rows = select(
        Customer.id,
        literal(YEAR_START),
        literal(1),
        literal(10_000),
        pick(SEGMENT_MIX, Customer.id),
        literal(0),
        literal(10_000),
        literal("maintaining"),
    ).where(Customer.id % 10 != 0)
    columns = ["customer_id", "computed_at", "frequency", "monetary_cents", "rfm_segment"]
    columns += ["churn_risk", "clv_cents", "lifecycle_stage"]
    session.execute(insert(CustomerMetrics).from_select(columns, rows))


def insert_agents(session: Session) -> int:
    """The staff who took part in surveys after a handoff; the first id."""
    rows = [
        StaffUser(username=name, display_name=name, role="agent", created_at=YEAR_START)
        for name in AGENTS
    ]
    session.add_all(rows)
    session.flush()
    return min(row.id for row in rows)


def _themes(i: Any) -> Any:
    """No theme, one, or two different ones."""
    one, other = pick(THEME_MIX, i), pick(THEME_MIX, i + 3)
    return case(
        (i % 3 == 1, func.json_build_array(one)),
        (i % 3 == 2, func.json_build_array(one, other)),
        else_=func.json_build_array(),
    )


def insert_responses(session: Session, n: int, first_customer: int, first_agent: int) -> None:
    """N survey responses in one INSERT ... SELECT generate_series."""
    i = series(n)
    customers = customers_for(n)
    status = case((i % 20 < 15, "answered"), (i % 20 < 18, "declined"), else_="asked")
    answered = i % 20 < 15
    asked_at = literal(YEAR_START) + func.make_interval(
        0, 0, 0, 0, 0, 0, cast(i - 1, Float) * YEAR_SECONDS / n
    )
    rows = select(
        literal("bench-") + cast(i, String),
        pick(list(SURVEY_TRIGGERS), i),
        case((i % 5 < 2, "web"), else_="wechat"),
        status,
        case((i % 10 == 0, null()), else_=first_customer + scatter(i, customers)),
        case((i % 4 == 0, first_agent + (i / 4) % len(AGENTS)), else_=null()),
        case((answered, pick(CSAT_MIX, i * 7)), else_=null()),
        case(((i % 7 != 0) & answered, pick(NPS_MIX, i * 13)), else_=null()),
        case((answered, _themes(i / 20)), else_=func.json_build_array()),
        asked_at,
        case((status != "asked", asked_at + func.make_interval(0, 0, 0, 0, 0, 1)), else_=null()),
    )
    columns = ["conversation_id", "trigger", "channel", "status", "customer_id", "agent_id"]
    columns += ["csat", "nps", "themes", "asked_at", "answered_at"]
    session.execute(insert(SurveyResponse).from_select(columns, rows))


def fill(engine: Engine, n: int) -> None:
    """Migrate and fill an empty database, then gather statistics for the planner."""
    if engine.dialect.name != "postgresql":
        raise InvalidInput("the report benchmark generates its rows with PostgreSQL functions")
    if customer_count(engine) > 0:
        raise Conflict("the benchmark needs an empty (throwaway) database")
    with session_scope(engine) as session:
        first_customer = insert_customers(session, customers_for(n))
        insert_metrics(session)
        first_agent = insert_agents(session)
        insert_responses(session, n, first_customer, first_agent)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")  # no SQLAlchemy construct for it


def median_seconds(engine: Engine, query: Callable[[Session], object]) -> float:
    """One warm-up run, then the median of REPEAT timed runs, each in its own transaction."""
    timings = []
    for _ in range(REPEAT + 1):
        with session_scope(engine) as session:
            started = time.perf_counter()
            query(session)
            timings.append(time.perf_counter() - started)
    return round(statistics.median(timings[1:]), 3)


def time_reports(engine: Engine) -> dict[str, float]:
    """Seconds per report, for the month and the year."""
    results: dict[str, float] = {}
    for label, (since, until) in (("month", MONTH), ("year", YEAR)):
        for by in (None, *GROUPINGS):
            report = partial(survey_report, since=since, until=until, by=by)
            results[f"{label} by {by or 'all'}"] = median_seconds(engine, report)
        themes = partial(top_themes, since=since, until=until)
        results[f"{label} top themes"] = median_seconds(engine, themes)
    return results


def run(url: str, n: int) -> dict[str, Any]:
    upgrade(url)
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        fill(engine, n)
        filled = round(time.perf_counter() - started, 1)
        return {"responses": n, "fill_seconds": filled, **time_reports(engine)}
    finally:
        engine.dispose()


def main() -> None:
    url, n = sys.argv[1], int(sys.argv[2])
    for key, value in run(url, n).items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
