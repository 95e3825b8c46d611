"""The one filter every dashboard figure takes, and how it narrows a table of facts.

A figure reads one table of facts (survey responses, care messages, conversations, ...). Each
dimension of the filter narrows it through the column that names it there: the date range
through the fact's own time, tier through customers, RFM segment and lifecycle stage through
customer_metrics (as semi-joins, so a fact is never counted twice), the agent through the
fact's agent. A dimension a fact has no column for does not narrow it (docs/dashboard.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, cast, func, select
from sqlalchemy.sql import ColumnElement

from crm_store.analytics import PROSPECT, RFM_RULES
from crm_store.clock import BUSINESS_TZ, as_utc
from crm_store.customers import check_timezone
from crm_store.errors import InvalidInput
from crm_store.models import CHANNELS, LIFECYCLE_STAGES, TIERS, Customer, CustomerMetrics, StaffUser
from crm_store.validation import check_choice

SEGMENTS = (*(rule[0] for rule in RFM_RULES), PROSPECT)
BOT = "bot"  # the agent filter value for what no human agent took part in
UNKNOWN = "unknown"  # a group for facts without a customer, or a customer never analysed


@dataclass(frozen=True)
class DashboardFilter:
    """What a manager narrowed the dashboard to; None everywhere means everything.

    since/until: [since, until), aware or naive UTC. agent: a staff username, or "bot".
    """

    since: datetime | None = None
    until: datetime | None = None
    channel: str | None = None
    tier: str | None = None
    segment: str | None = None
    stage: str | None = None
    agent: str | None = None

    def __post_init__(self) -> None:
        if self.since and self.until and as_utc(self.until) < as_utc(self.since):
            raise InvalidInput(f"the range ends ({self.until}) before it starts ({self.since})")
        for value, allowed, what in (
            (self.channel, CHANNELS, "channel"),
            (self.tier, TIERS, "tier"),
            (self.segment, SEGMENTS, "RFM segment"),
            (self.stage, LIFECYCLE_STAGES, "lifecycle stage"),
        ):
            if value is not None:
                check_choice(value, allowed, what)

    def previous(self) -> DashboardFilter:
        """The same filter over the range of equal length just before this one."""
        if self.since is None or self.until is None:
            raise InvalidInput("a period-over-period figure needs both ends of the range")
        length = self.until - self.since
        return replace(self, since=self.since - length, until=self.since)


def day_window(first: date, last: date, *, tz: str = BUSINESS_TZ.key) -> tuple[datetime, datetime]:
    """[first 00:00, the day after last 00:00) in `tz`, in UTC: a report's days are whole local
    days, and its last day is included."""
    if last < first:
        raise InvalidInput(f"the report ends ({last}) before it starts ({first})")
    zone = ZoneInfo(check_timezone(tz))
    since = datetime.combine(first, time(), zone)
    until = datetime.combine(last + timedelta(days=1), time(), zone)
    return since.astimezone(timezone.utc), until.astimezone(timezone.utc)


def in_range(f: DashboardFilter, at: Any) -> list[ColumnElement]:
    where = []
    if f.since is not None:
        where.append(at >= f.since)
    if f.until is not None:
        where.append(at < f.until)
    return where


def of_customers(f: DashboardFilter, customer_id: Any) -> list[ColumnElement]:
    """Tier, segment and stage as semi-joins on the fact's customer."""
    where = []
    if f.tier is not None:
        where.append(customer_id.in_(select(Customer.id).where(Customer.tier == f.tier)))
    metrics = []
    if f.segment is not None:
        metrics.append(CustomerMetrics.rfm_segment == f.segment)
    if f.stage is not None:
        metrics.append(CustomerMetrics.lifecycle_stage == f.stage)
    if metrics:
        where.append(customer_id.in_(select(CustomerMetrics.customer_id).where(*metrics)))
    return where


def of_agent(f: DashboardFilter, agent_id: Any) -> list[ColumnElement]:
    if f.agent is None:
        return []
    if f.agent == BOT:
        return [agent_id.is_(None)]
    return [agent_id.in_(select(StaffUser.id).where(StaffUser.username == f.agent))]


def narrow(
    f: DashboardFilter,
    *,
    at: Any,
    customer_id: Any,
    channel: Any = None,
    agent_id: Any = None,
) -> list[ColumnElement]:
    """Every condition of `f` that the fact's columns can express."""
    where = in_range(f, at) + of_customers(f, customer_id)
    if channel is not None and f.channel is not None:
        where.append(channel == f.channel)
    if agent_id is not None:
        where += of_agent(f, agent_id)
    return where


def utc_offset_minutes(tz: str, at: datetime | None) -> int:
    """The zone's offset at `at` (now if None); periods are cut at this fixed offset."""
    zone = ZoneInfo(check_timezone(tz))
    moment = as_utc(at) if at is not None else datetime.now(zone)
    offset = moment.astimezone(zone).utcoffset()
    return 0 if offset is None else int(offset.total_seconds() // 60)


def local_day(column: Any, minutes: int, dialect: str) -> Any:
    """The calendar day of a stored UTC time, shifted by a fixed offset, in SQL."""
    if dialect == "postgresql":
        return cast(column + func.make_interval(0, 0, 0, 0, 0, minutes), Date)
    return func.date(column, f"{minutes:+d} minutes")


def as_date(value: Any) -> date:
    """SQLite answers a day as text, PostgreSQL as a date."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def aware(value: Any) -> datetime:
    """A time read through a union or an aggregate comes back as stored (text on SQLite)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return as_utc(moment)


def plus_hours(column: Any, hours: int, dialect: str) -> Any:
    if dialect == "postgresql":
        return column + func.make_interval(0, 0, 0, 0, hours)
    return func.strftime("%Y-%m-%d %H:%M:%f", column, f"+{hours} hours")


def seconds_between(start: Any, end: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def share(part: int, whole: int) -> float | None:
    """part / whole to 4 places, None when there is no whole (every figure rounds alike)."""
    return None if whole == 0 else round(part / whole, 4)
