"""The planning pipeline: every candidate of one campaign's day gets an outcome, set-based.

One pipeline of CTEs gives every candidate the first outcome that applies (docs/campaigns.md):
already_planned (this customer, campaign and period have a row), one_per_day (a row of the
campaign is due that day already, or a better-ranked candidate goes today), no_consent (the
campaign's category), open_complaint (offers only), control_group (the campaign's hold-out),
budget (`weekly_cap` contacts within 7 days either side of the day), daily_cap (the campaign's
daily cap is used up by better-ranked candidates), or none: sent. planning.py runs it into a
temporary table and reads the census, the outbox rows and the coupons from there.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import ColumnElement, Select

from crm_store.campaigns.rows import Campaign
from crm_store.campaigns.rules import (
    PlanSettings,
    business_midnight,
    control_salt,
    same_day_window,
    send_time,
)
from crm_store.campaigns.spec import CampaignSpec
from crm_store.customers import CONSENT_DEFAULTS
from crm_store.models import CareMessage, Consent, Customer, SurveyResponse, Ticket, UtcDateTime
from crm_store.outbox import MAX_ATTEMPTS
from crm_store.tickets import OPEN_STATUSES

DAILY_CAP = "daily_cap"  # the outcome of a candidate the campaign's daily cap leaves out


def run_pipeline(
    session: Session,
    campaign: Campaign,
    spec: CampaignSpec,
    candidates: Select,
    day: date,
    now: datetime,
    settings: PlanSettings,
) -> tuple[Any, Any, Any]:
    """(final CTE with a `reason` per candidate, its scheduled_at, its deferred flag)."""
    first = _first_pass(candidates.cte("candidates"), campaign, spec, day, settings)
    rank: Any = literal(1)  # one candidate per customer: no window sort over a million rows
    if spec.per_item:
        rank = func.row_number().over(
            partition_by=(first.c.customer_id, first.c.reason1.is_(None)),
            order_by=(first.c.rank, first.c.period),
        )
    ranked = select(first, rank.label("nth")).cte("ranked")
    reason = case(
        (ranked.c.reason1.is_not(None), ranked.c.reason1),
        (ranked.c.nth > 1, "one_per_day"),
        (ranked.c.used >= settings.weekly_cap, "budget"),
        else_=null(),
    )
    budgeted = select(ranked, reason.label("reason")).cte("budgeted")
    final = _capped(session, budgeted, campaign, day)
    slot, deferred = _slots(session, final, day, now, settings)
    return final, slot, deferred


def _capped(session: Session, budgeted: Any, campaign: Campaign, day: date) -> Any:
    """The candidates with the campaign's daily cap applied (docs/campaigns.md).

    The rows this campaign's planning may still write today go to the candidates it would
    write, in the campaign's own order (`rank`: the soonest warranty end, the earliest
    delivery, the most expensive product, the highest churn risk; equal ranks by customer id,
    the longest-standing member first); the rest get `daily_cap` and are planned again on a
    later day while the campaign's rule holds. The win-back control group is drawn inside the
    capped set (its rows count against the cap), so both arms come from the same customers.
    """
    b = budgeted.c
    if campaign.daily_cap is None:
        return select(budgeted).cte("final")
    left = max(campaign.daily_cap - _planned_on(session, campaign, day), 0)
    # one partition key: a bare OR would be taken as a list of keys
    written = case((or_(b.reason.is_(None), b.reason == "control_group"), 1), else_=0)
    place = func.row_number().over(partition_by=written, order_by=(b.rank, b.customer_id, b.period))
    numbered = select(budgeted, place.label("place")).cte("numbered")
    n = numbered.c
    over_cap = and_(or_(n.reason.is_(None), n.reason == "control_group"), n.place > left)
    reason = case((over_cap, literal(DAILY_CAP)), else_=n.reason)
    kept = [column for column in n if column.name not in ("reason", "place")]
    return select(*kept, reason.label("reason")).cte("final")


def _planned_on(session: Session, campaign: Campaign, day: date) -> int:
    """Rows of the campaign written on `day` (the shop's day): what its cap has used."""
    count = session.scalar(
        select(func.count())
        .select_from(CareMessage)
        .where(
            CareMessage.campaign_id == campaign.id,
            CareMessage.created_at >= business_midnight(day),
            CareMessage.created_at < business_midnight(day + timedelta(days=1)),
        )
    )
    return int(count or 0)


def _first_pass(
    c: Any, campaign: Campaign, spec: CampaignSpec, day: date, settings: PlanSettings
) -> Any:
    """The candidates with their contacts so far and the reasons that need no ranking.

    Outer joins, not correlated subqueries, so each database picks hash or index joins; the
    CTE is materialized on PostgreSQL so that the reasons are computed once per row (inlined,
    the window sort and the CASEs above re-ran the lookups for every reference).
    """
    planned, consent = aliased(CareMessage), aliased(Consent)
    used = _contacts(day).subquery("used")
    same_day = _planned_same_day(campaign, day)
    query = (
        select(c)
        .join(used, used.c.customer_id == c.c.customer_id, isouter=True)
        .join(planned, _same_message(planned, c, campaign), isouter=True)
        .join(same_day, same_day.c.customer_id == c.c.customer_id, isouter=True)
        .join(consent, _consent_of(consent, c, campaign.category), isouter=True)
    )
    whens: list[tuple[Any, str]] = [
        (planned.id.is_not(None), "already_planned"),
        (same_day.c.customer_id.is_not(None), "one_per_day"),
        (~func.coalesce(consent.granted, CONSENT_DEFAULTS[campaign.category]), "no_consent"),
    ]
    if campaign.category == "offer":
        complaints = _open_complaints()
        query = query.join(complaints, complaints.c.customer_id == c.c.customer_id, isouter=True)
        whens.append((complaints.c.customer_id.is_not(None), "open_complaint"))
    if spec.control_group_period is not None:
        salt = control_salt(spec.control_group_period(day))
        control = _in_control_group(c.c.customer_id, salt, settings.control_share)
        whens.append((control, "control_group"))
    reason1 = case(*whens, else_=null()).label("reason1")
    used_count = func.coalesce(used.c.n, 0).label("used")
    return (
        query.add_columns(used_count, reason1)
        .cte("first_pass")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )


def _same_message(planned: Any, c: Any, campaign: Campaign) -> ColumnElement:
    return and_(
        planned.customer_id == c.c.customer_id,
        planned.campaign_id == campaign.id,
        planned.period == c.c.period,
    )


def _consent_of(consent: Any, c: Any, category: str) -> ColumnElement:
    return and_(consent.customer_id == c.c.customer_id, consent.category == category)


def _planned_same_day(campaign: Campaign, day: date) -> Any:
    """Customers with a row of this campaign due the same day (a second item waits)."""
    start, end = same_day_window(day)
    return (
        select(CareMessage.customer_id)
        .where(
            CareMessage.campaign_id == campaign.id,
            CareMessage.scheduled_at >= start,
            CareMessage.scheduled_at < end,
        )
        .distinct()
        .subquery("same_day")
    )


def _open_complaints() -> Any:
    return (
        select(Ticket.customer_id)
        .where(Ticket.kind == "complaint", Ticket.status.in_(OPEN_STATUSES))
        .distinct()
        .subquery("complaints")
    )


def _in_control_group(customer_id: Any, salt: int, share: int) -> ColumnElement:
    """The SQL twin of rules.control_bucket(customer_id, period) < share."""
    return (customer_id * 2_654_435_761 + salt) % 1_000_003 % 100 < share


def _contacts(day: date) -> Select:
    """Per customer, the proactive contacts within 7 days either side of `day`: outbox rows that
    are or will be sent, and surveys asked (but post-purchase ones: their outbox row counts)."""
    start = business_midnight(day - timedelta(days=6))
    end = business_midnight(day + timedelta(days=7))
    at = func.coalesce(CareMessage.sent_at, CareMessage.scheduled_at)
    live = or_(
        CareMessage.state.in_(("pending", "sending", "sent")),
        and_(CareMessage.state == "failed", CareMessage.attempts < MAX_ATTEMPTS),
    )
    messages = select(CareMessage.customer_id).where(
        live, CareMessage.scheduled_at < end, at >= start, at < end
    )
    surveys = select(SurveyResponse.customer_id).where(
        SurveyResponse.customer_id.is_not(None),
        SurveyResponse.trigger != "post_purchase",
        SurveyResponse.asked_at >= start,
        SurveyResponse.asked_at < end,
    )
    contacts = union_all(messages, surveys).subquery("contacts")
    return select(contacts.c.customer_id, func.count().label("n")).group_by(contacts.c.customer_id)


def _slots(
    session: Session, final: Any, day: date, now: datetime, settings: PlanSettings
) -> tuple[Any, Any]:
    """scheduled_at and a deferred flag as CASEs over the customers' (time zone, quiet hours)
    combinations: few, so each is computed once in Python."""
    combos = session.execute(
        select(Customer.timezone, Customer.quiet_start, Customer.quiet_end).distinct()
    ).all()
    slot_whens, deferred_whens = [], []
    for timezone, start, end in combos:
        at, deferred = send_time(day, timezone, (start, end), settings.send_at, now)
        match = _combo(final, timezone, start, end)
        slot_whens.append((match, literal(at, UtcDateTime())))
        deferred_whens.append((match, literal(deferred)))
    fallback = literal(now, UtcDateTime())
    if not slot_whens:
        return fallback, literal(False)
    return case(*slot_whens, else_=fallback), case(*deferred_whens, else_=literal(False))


def _combo(final: Any, timezone: str, start: time | None, end: time | None) -> ColumnElement:
    return and_(
        final.c.timezone == timezone,
        final.c.quiet_start.is_(None) if start is None else final.c.quiet_start == start,
        final.c.quiet_end.is_(None) if end is None else final.c.quiet_end == end,
    )


# One planning run's candidates and outcomes: the pipeline runs once, then the census, the
# outbox rows and the coupons are read from here. A temporary table: per connection, no log.
OUTCOMES = Table(
    "plan_outcomes",
    MetaData(),
    Column("customer_id", Integer, nullable=False),
    Column("period", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("reason", String(16)),
    Column("scheduled_at", UtcDateTime, nullable=False),
    Column("deferred", Boolean, nullable=False),
    Column("detail", String(64)),
    prefixes=["TEMPORARY"],
)


def materialize_outcomes(session: Session, final: Any, slot: Any, deferred: Any) -> Table:
    connection = session.connection()
    OUTCOMES.drop(connection, checkfirst=True)  # left over by a failed run on this connection
    OUTCOMES.create(connection)
    rows = select(
        final.c.customer_id,
        final.c.period,
        final.c.channel,
        final.c.reason,
        slot,
        deferred,
        final.c.detail,
    )
    session.execute(insert(OUTCOMES).from_select([c.name for c in OUTCOMES.columns], rows))
    return OUTCOMES


# A preview's candidates, in the order a cap takes them (`place`): temporary, like OUTCOMES.
PREVIEW_COLUMNS = ("customer_id", "name", "period", "channel", "scheduled_at")
PREVIEW = Table(
    "preview_outcomes",
    MetaData(),
    Column("customer_id", Integer, nullable=False),
    Column("name", String(64), nullable=False),
    Column("period", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("scheduled_at", UtcDateTime, nullable=False),
    Column("reason", String(16)),
    Column("detail", String(64)),
    Column("place", Integer, nullable=False),
    prefixes=["TEMPORARY"],
)


def materialize_preview(session: Session, final: Any, slot: Any) -> Table:
    connection = session.connection()
    PREVIEW.drop(connection, checkfirst=True)  # left over by a failed preview on this connection
    PREVIEW.create(connection)
    f = final.c
    place = func.row_number().over(order_by=(f.rank, f.customer_id, f.period))
    rows = select(f.customer_id, f.name, f.period, f.channel, slot, f.reason, f.detail, place)
    session.execute(insert(PREVIEW).from_select([c.name for c in PREVIEW.columns], rows))
    return PREVIEW


def write_rows(session: Session, campaign: Campaign, outcomes: Table, now: datetime) -> None:
    o = outcomes.c
    state = case((o.reason.is_(None), "pending"), else_="skipped")
    rows = select(
        o.customer_id,
        literal(campaign.id),
        o.period,
        o.channel,
        state,
        literal(0),
        o.reason,
        o.scheduled_at,
        literal(now, UtcDateTime()),
        literal(now, UtcDateTime()),
    ).where(or_(o.reason.is_(None), o.reason == "control_group"))
    columns = [
        "customer_id",
        "campaign_id",
        "period",
        "channel",
        "state",
        "attempts",
        "reason",
        "scheduled_at",
        "created_at",
        "updated_at",
    ]
    statement = insert_ignoring_duplicates(session, CareMessage).from_select(columns, rows)
    session.execute(statement)


def insert_ignoring_duplicates(session: Session, model: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING: a concurrent planner's row wins, quietly."""
    dialect = session.get_bind().dialect.name
    module: Any = {"postgresql": postgresql, "sqlite": sqlite}.get(dialect)
    if module is None:
        return insert(model)
    return module.insert(model).on_conflict_do_nothing()
