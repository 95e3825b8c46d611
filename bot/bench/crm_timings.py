"""Timings of demo seeding, of the analytics refresh, of the reads the assistant makes and of
campaign planning (a whole day of campaigns into the outbox).

python -m bot.bench.crm_timings URL CUSTOMERS   (URL: an empty database; it is migrated first)
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock_time

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.bench import dashboard_timings
from crm_store.analytics import refresh_customer_metrics
from crm_store.campaigns import set_daily_cap
from crm_store.campaigns.planning import plan_day, planned_campaign_keys
from crm_store.campaigns.rules import PlanSettings, holiday_on
from crm_store.clock import BUSINESS_TZ, utcnow
from crm_store.customers import find_customer
from crm_store.db import make_engine, session_scope
from crm_store.demo import COLUMNS, Progress, demo_phone, seed
from crm_store.identities import find_customer_by_identity
from crm_store.migrate import upgrade
from crm_store.models import Base, CareMessage, ChannelIdentity
from crm_store.orders import list_orders, list_warranties
from crm_store.points import points_balance

Read = Callable[[Session, int], object]


@dataclass(frozen=True)
class QueryTiming:
    name: str
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True)
class PlanTiming:
    """One `plan_day` run: every campaign for one day, written to the outbox."""

    day: str  # the ISO date planned
    kind: str  # "ordinary day" or the festival greeted that day
    seconds: float
    rows: int  # outbox rows written


@dataclass(frozen=True)
class CrmBench:
    customers: int
    database: str
    seed_s: float
    analytics_s: float
    rows: dict[str, int]  # per table the seed wrote
    queries: tuple[QueryTiming, ...]
    planning: tuple[PlanTiming, ...] = ()
    dashboard: dashboard_timings.DashboardBench | None = None  # the manager dashboard's figures

    @property
    def rows_written(self) -> int:
        return sum(self.rows.values())


def run(
    url: str, customers: int, *, samples: int = 100, progress: Progress | None = None
) -> CrmBench:
    """Migrate and seed the empty database at `url`, refresh the metrics, time the reads."""
    upgrade(url)
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        seed(engine, customers=customers, progress=progress)
        seeded = time.perf_counter()
        with session_scope(engine) as session:
            refresh_customer_metrics(session)
        analysed = time.perf_counter()
        return CrmBench(
            customers=customers,
            database=database_version(engine),
            seed_s=seeded - started,
            analytics_s=analysed - seeded,
            rows=row_counts(engine),
            queries=time_reads(engine, sample_customers(customers, samples)),
            planning=time_planning(engine),
            dashboard=dashboard_timings.run_on_postgresql(engine),  # after the counts: it adds rows
        )
    finally:
        engine.dispose()


def database_version(engine: Engine) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            version = connection.exec_driver_sql("SHOW server_version").scalar()
            return f"PostgreSQL {str(version).split()[0]}"
        return f"SQLite {connection.exec_driver_sql('SELECT sqlite_version()').scalar()}"


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        count = select(func.count())
        tables = Base.metadata.tables
        return {name: int(connection.scalar(count.select_from(tables[name]))) for name in COLUMNS}


def sample_customers(customers: int, samples: int) -> list[int]:
    """Random generated customers (ids from 4), the same ones for the same arguments."""
    rng = random.Random(customers)
    return [rng.randint(min(4, customers), customers) for _ in range(samples)]


def time_reads(engine: Engine, customer_ids: list[int]) -> tuple[QueryTiming, ...]:
    """p50/p95 of each read the assistant makes, one transaction per call as in an action."""
    identities = _identities(engine, customer_ids)
    today = utcnow().date()
    reads: list[tuple[str, Read]] = [
        ("find by identity", lambda s, c: find_customer_by_identity(s, **identities[c])),
        ("find by phone", lambda s, c: find_customer(s, phone=demo_phone(c))),
        ("recent orders", lambda s, c: list_orders(s, customer_id=c, limit=5)),
        ("points balance", lambda s, c: points_balance(s, customer_id=c)),
        ("active warranties", lambda s, c: list_warranties(s, customer_id=c, active_on=today)),
    ]
    return tuple(_timed(engine, name, read, customer_ids) for name, read in reads)


def _identities(engine: Engine, customer_ids: list[int]) -> dict[int, dict[str, str]]:
    """A channel identity per customer; a web login nobody has (a miss) for those without."""
    query = select(ChannelIdentity.customer_id, ChannelIdentity.kind, ChannelIdentity.value)
    with engine.connect() as connection:
        rows = connection.execute(query.where(ChannelIdentity.customer_id.in_(customer_ids)))
        found = {row.customer_id: {"kind": row.kind, "value": row.value} for row in rows}
    return {c: found.get(c, {"kind": "web_user", "value": f"w_{c:08x}"}) for c in customer_ids}


def _timed(engine: Engine, name: str, read: Read, customer_ids: list[int]) -> QueryTiming:
    with session_scope(engine) as session:  # warm the pool and the statement cache
        read(session, customer_ids[0])
    seconds = []
    for customer_id in customer_ids:
        started = time.perf_counter()
        with session_scope(engine) as session:
            read(session, customer_id)
        seconds.append(time.perf_counter() - started)
    cuts = statistics.quantiles(seconds, n=20, method="inclusive")
    return QueryTiming(name, statistics.median(seconds) * 1000, cuts[18] * 1000)


def time_planning(engine: Engine) -> tuple[PlanTiming, ...]:
    """plan_day on the seeding day, then on the next festival (a greeting for everyone), with
    the demo's daily caps lifted: the benchmark plans every candidate of the day."""
    with session_scope(engine) as session:
        for key in planned_campaign_keys():
            set_daily_cap(session, key=key, daily_cap=None, actor="bench")
    today = utcnow().date()
    festival = next(
        today + timedelta(days=n)
        for n in range(1, 400)
        if holiday_on(today + timedelta(days=n), PlanSettings())
    )
    return (
        _time_plan(engine, today, "ordinary day"),
        _time_plan(engine, festival, f"festival ({holiday_on(festival, PlanSettings())})"),
    )


def _time_plan(engine: Engine, day: date, kind: str) -> PlanTiming:
    at = datetime.combine(day, clock_time(0, 30), BUSINESS_TZ)
    before = _outbox_rows(engine)
    started = time.perf_counter()
    with session_scope(engine) as session:
        plan_day(session, day=day, clock=lambda: at)
    seconds = time.perf_counter() - started
    return PlanTiming(day.isoformat(), kind, seconds, _outbox_rows(engine) - before)


def _outbox_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(CareMessage)))


def main() -> None:
    url, customers = sys.argv[1], int(sys.argv[2])
    print(run(url, customers))


if __name__ == "__main__":
    main()
