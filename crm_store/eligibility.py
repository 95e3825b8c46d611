"""Campaign planning, set-based: who is due on a day, written to the outbox under the budget.

Each campaign has a candidate query (customer, period, detail, rank). One pipeline of CTEs gives
every candidate an outcome, the first that applies (docs/campaigns.md): already_planned (this
customer, campaign and period have a row), one_per_day (a row of the campaign is due that day
already, or a better-ranked candidate goes today), no_consent (the campaign's category),
open_complaint (offers only), control_group (win-back hold-out), budget (`weekly_cap` contacts
within 7 days either side of the day), daily_cap (the campaign's daily cap is used up by better
ranked candidates), or sent.
`plan_campaign` plans a campaign that is on (a manager switches it: crm_store.campaigns): it runs
the pipeline once into a temporary table, counts the outcomes there and writes the day's rows in
one INSERT ... SELECT ... ON CONFLICT DO NOTHING (rows to send `pending`, the control group
`skipped`/`control_group`), then issues their coupons. Rows not written are planned again on a
later day if the campaign's rule still holds.
`preview_campaign` and `preview_audience` run the same pipeline, on or off, and write nothing.

The pure twins of these rules live in bot/care/campaigns/ and bot/care/budget.py; the tests
check on a fixture of customers that both answer alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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
    cast,
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

from crm_store.campaign_rules import (
    BIRTHDAY_GIFTS,
    CADENCES,
    COUPON_VALID_DAYS,
    PRIORITY,
    SPREAD_DAYS,
    WIN_BACK_OFFERS,
    PlanSettings,
    birthday_offer_key,
    business_midnight,
    cadence_period,
    care_tip_dates,
    control_salt,
    coupon_offer_prefix,
    half_year_period,
    holiday_on,
    month_period,
    period_start,
    same_day_window,
    send_time,
    win_back_offer_key,
)
from crm_store.campaigns import OFF, ON, Campaign, create_campaign, find_campaign, is_running
from crm_store.clock import Clock, utcnow
from crm_store.customers import CONSENT_DEFAULTS, _gregorian_on, _lunar_on
from crm_store.models import (
    CareMessage,
    Consent,
    Coupon,
    Customer,
    CustomerMetrics,
    Offer,
    Order,
    OrderItem,
    ShippingEvent,
    SurveyResponse,
    Ticket,
    UtcDateTime,
)
from crm_store.offers import Coupon as CouponRecord
from crm_store.offers import create_offer, find_coupon, new_code
from crm_store.orders import VOID_STATUSES
from crm_store.outbox import MAX_ATTEMPTS
from crm_store.tickets import OPEN_STATUSES

SEND = "send"
DAILY_CAP = "daily_cap"  # the outcome of a candidate the campaign's daily cap leaves out
# A new installation's campaigns: off, and at most this many messages a day each once a manager
# switches one on without choosing a cap (docs/campaigns.md).
DEFAULT_DAILY_CAP = 100
# Campaigns with a candidate per order or item: a customer may have several on one day.
PER_ITEM_CAMPAIGNS = ("delivery_follow_up", "care_tip", "warranty_reminder")


@dataclass(frozen=True)
class CampaignSpec:
    key: str
    name: str
    kind: str
    category: str  # the consent category its messages need


CAMPAIGN_SPECS = (
    CampaignSpec("birthday", "生日祝福", "birthday", "care"),
    CampaignSpec("holiday", "节日问候", "holiday", "care"),
    CampaignSpec("follow_up", "定期回访", "follow_up", "follow_up"),
    CampaignSpec("delivery_follow_up", "收货回访", "survey", "follow_up"),
    CampaignSpec("care_tip", "使用小贴士", "care_tip", "care"),
    CampaignSpec("warranty_reminder", "保修到期提醒", "care_tip", "care"),
    CampaignSpec("win_back", "老客召回", "win_back", "offer"),
)


@dataclass(frozen=True)
class PlanResult:
    planned: int  # pending rows written, due at the campaign's send time
    deferred: int  # pending rows written, due later because of the customer's quiet hours
    skipped_by_reason: dict[str, int]  # candidates not sent: control_group rows are written


@dataclass(frozen=True)
class PreviewRow:
    customer_id: int
    name: str
    period: str
    channel: str
    scheduled_at: datetime
    outcome: str  # "send" or the reason it is not sent
    detail: str | None  # the gift, offer or product the message is about


def ensure_campaigns(
    session: Session,
    *,
    clock: Clock = utcnow,
    enabled: bool = False,
    daily_caps: Mapping[str, int | None] | None = None,
) -> list[Campaign]:
    """The seven campaign rows and this half-year's win-back offers, created when missing.

    A campaign created here is off unless `enabled` (a new installation sends nothing until a
    manager switches a campaign on), with its cap from `daily_caps` (default DEFAULT_DAILY_CAP;
    None: no cap). Existing rows are left as their owner set them.
    """
    caps = {} if daily_caps is None else daily_caps
    campaigns = []
    for spec in CAMPAIGN_SPECS:
        found = find_campaign(session, key=spec.key)
        campaigns.append(
            found
            or create_campaign(
                session,
                **vars(spec),
                status=ON if enabled else OFF,
                daily_cap=caps.get(spec.key, DEFAULT_DAILY_CAP),
                clock=clock,
            )
        )
    _ensure_win_back_offers(session, half_year_period(clock().date()), clock)
    return campaigns


def planned_campaign_keys() -> list[str]:
    """The keys planning knows, the most important first (the order plan_day plans them)."""
    return sorted((spec.key for spec in CAMPAIGN_SPECS), key=PRIORITY.index)


# No cap on any campaign: the benchmarks and the tests of the rules themselves.
NO_DAILY_CAPS: dict[str, int | None] = {spec.key: None for spec in CAMPAIGN_SPECS}


def plan_campaign(
    session: Session,
    *,
    campaign_key: str,
    day: date,
    clock: Clock = utcnow,
    settings: PlanSettings | None = None,
) -> PlanResult:
    """Write the day's outbox rows of one campaign (idempotent: a second run adds nothing)."""
    settings, now = settings or PlanSettings(), clock()
    campaign = find_campaign(session, key=campaign_key)
    candidates = _candidates(campaign_key, day, now, settings)
    if campaign is None or not is_running(campaign, now) or candidates is None:
        return PlanResult(0, 0, {})
    final, slot, deferred = _pipeline(session, campaign, candidates, day, now, settings)
    outcomes = _materialized(session, final, slot, deferred)
    census = session.execute(
        select(outcomes.c.reason, outcomes.c.deferred, func.count()).group_by(
            outcomes.c.reason, outcomes.c.deferred
        )
    ).all()
    _write(session, campaign, outcomes, now)
    _issue_coupons(session, campaign, outcomes, day, now)
    OUTCOMES.drop(session.connection())
    return _result(census)


def plan_day(
    session: Session, *, day: date, clock: Clock = utcnow, settings: PlanSettings | None = None
) -> dict[str, PlanResult]:
    """Every campaign for `day`, the most important first: it takes the budget first."""
    keys = sorted((spec.key for spec in CAMPAIGN_SPECS), key=PRIORITY.index)
    return {
        key: plan_campaign(session, campaign_key=key, day=day, clock=clock, settings=settings)
        for key in keys
    }


def preview_campaign(
    session: Session,
    *,
    campaign_key: str,
    day: date,
    clock: Clock = utcnow,
    settings: PlanSettings | None = None,
    limit: int | None = 100,
) -> list[PreviewRow]:
    """Who would get what on `day` (and who would not, and why); writes nothing."""
    settings, now = settings or PlanSettings(), clock()
    campaign = find_campaign(session, key=campaign_key)
    candidates = _candidates(campaign_key, day, now, settings)
    if campaign is None or candidates is None:
        return []
    final, slot, _ = _pipeline(session, campaign, candidates, day, now, settings)
    query = select(
        final.c.customer_id,
        final.c.name,
        final.c.period,
        final.c.channel,
        slot,
        func.coalesce(final.c.reason, SEND),
        final.c.detail,
    ).order_by(final.c.customer_id, final.c.rank, final.c.period)
    return [PreviewRow(*row) for row in session.execute(query.limit(limit))]


@dataclass(frozen=True)
class AudiencePreview:
    """Who a campaign's planning run on `day` would reach, before anyone switches it on."""

    day: date
    outcomes: dict[str, int]  # "send", or the reason a candidate gets nothing -> candidates
    sample: list[PreviewRow]  # the first who would get a message, in the order the cap takes

    @property
    def sending(self) -> int:
        return self.outcomes.get(SEND, 0)


def preview_audience(
    session: Session,
    *,
    campaign_key: str,
    day: date,
    clock: Clock = utcnow,
    settings: PlanSettings | None = None,
    sample: int = 20,
) -> AudiencePreview:
    """The census and a sample of a planning run on `day`, on or off, cap applied; the day's
    candidates go through the pipeline once, into a temporary table (nothing else is written)."""
    settings, now = settings or PlanSettings(), clock()
    campaign = find_campaign(session, key=campaign_key)
    candidates = _candidates(campaign_key, day, now, settings)
    if campaign is None or candidates is None:
        return AudiencePreview(day, {}, [])
    final, slot, _ = _pipeline(session, campaign, candidates, day, now, settings)
    table = _previewed(session, final, slot)
    outcome = func.coalesce(table.c.reason, SEND)
    census = session.execute(select(outcome, func.count()).group_by(outcome)).all()
    first = (
        select(*(table.c[name] for name in PREVIEW_COLUMNS), literal(SEND), table.c.detail)
        .where(table.c.reason.is_(None))
        .order_by(table.c.place)
        .limit(sample)
    )
    rows = [PreviewRow(*row) for row in session.execute(first)]
    PREVIEW.drop(session.connection())
    return AudiencePreview(day, {reason: int(count) for reason, count in census}, rows)


def find_message_coupon(
    session: Session, *, customer_id: int, campaign_key: str, period: str
) -> CouponRecord | None:
    """The coupon planning issued for this message (win-back offer, birthday gift), if any."""
    prefix = coupon_offer_prefix(campaign_key, period)
    if prefix is None:
        return None
    query = (
        select(Coupon.code)
        .join(Offer, Offer.id == Coupon.offer_id)
        .where(Coupon.customer_id == customer_id, Offer.key.startswith(prefix, autoescape=True))
    )
    code = session.scalars(query).first()
    return None if code is None else find_coupon(session, code=code)


# --- candidates: (customer_id, period, detail, rank) plus the customer's columns -------------


def _customer_columns() -> tuple[Any, ...]:
    return (
        Customer.id.label("customer_id"),
        Customer.name.label("name"),
        Customer.preferred_channel.label("channel"),
        Customer.timezone.label("timezone"),
        Customer.quiet_start.label("quiet_start"),
        Customer.quiet_end.label("quiet_end"),
    )


def _row(period: Any, detail: Any, rank: Any) -> tuple[Any, ...]:
    return (
        *_customer_columns(),
        cast(period, String).label("period"),
        cast(detail, String).label("detail"),
        rank.label("rank"),
    )


def _candidates(key: str, day: date, now: datetime, settings: PlanSettings) -> Select | None:
    builders = {
        "birthday": _birthday,
        "holiday": _holiday,
        "follow_up": _follow_up,
        "delivery_follow_up": _delivery_follow_up,
        "care_tip": _care_tip,
        "warranty_reminder": _warranty_reminder,
        "win_back": _win_back,
    }
    builder = builders.get(key)
    return builder(day, now, settings) if builder else None


def _birthday(day: date, now: datetime, settings: PlanSettings) -> Select:
    period = str(day.year)
    gift = case(
        *[(Customer.tier == tier, literal(_gift_detail(tier, period))) for tier in BIRTHDAY_GIFTS],
        else_=null(),
    )
    return select(*_row(literal(period), gift, literal(0))).where(
        or_(_gregorian_on(day), _lunar_on(day))
    )


def _gift_detail(tier: str, period: str) -> str:
    gift = BIRTHDAY_GIFTS[tier]
    return birthday_offer_key(period, tier) if gift.kind == "coupon" else f"points:{gift.value}"


def _holiday(day: date, now: datetime, settings: PlanSettings) -> Select | None:
    key = holiday_on(day, settings)
    if key is None:
        return None
    return select(*_row(literal(f"{day.year}-{key}"), literal(key), literal(0)))


def _follow_up(day: date, now: datetime, settings: PlanSettings) -> Select:
    m = CustomerMetrics
    monthly = and_(
        m.frequency >= settings.frequent_orders,
        m.monetary_cents < settings.low_price_cents * m.frequency,
    )
    half_yearly = and_(
        m.frequency <= settings.rare_orders,
        m.monetary_cents >= settings.high_price_cents * m.frequency,
    )
    cadence = case((monthly, "monthly"), (half_yearly, "half_yearly"), else_="quarterly")
    period = case(*[(cadence == c, cadence_period(day, c)) for c in CADENCES])
    day_index = case(*[(cadence == c, (day - period_start(day, c)).days) for c in CADENCES])
    quiet_since = now - timedelta(days=settings.follow_up_quiet_days)
    return (
        select(*_row(period, cadence, literal(0)))
        .join(m, m.customer_id == Customer.id)
        .where(
            m.frequency > 0,
            m.churn_risk < settings.win_back_risk,
            m.last_order_at <= quiet_since,
            Customer.id % SPREAD_DAYS <= day_index,
        )
    )


def _delivery_follow_up(day: date, now: datetime, settings: PlanSettings) -> Select:
    first, last = settings.delivery_days
    delivered = (
        select(ShippingEvent.order_id, func.min(ShippingEvent.occurred_at).label("at"))
        .where(
            ShippingEvent.status == "delivered",
            ShippingEvent.occurred_at >= business_midnight(day - timedelta(days=last)),
            ShippingEvent.occurred_at < business_midnight(day - timedelta(days=first - 1)),
        )
        .group_by(ShippingEvent.order_id)
        .subquery("delivered")
    )
    return (
        select(*_row(Order.id, Order.id, delivered.c.at))
        .select_from(delivered)
        .join(Order, Order.id == delivered.c.order_id)
        .join(Customer, Customer.id == Order.customer_id)
        .where(Order.status.not_in(VOID_STATUSES))
    )


def _owned_items(*columns: Any) -> Select:
    """Order items of live orders with a warranty date, joined to their customer."""
    return (
        select(*columns)
        .select_from(OrderItem)
        .join(Order, Order.id == OrderItem.order_id)
        .join(Customer, Customer.id == Order.customer_id)
        .where(Order.status.not_in(VOID_STATUSES), OrderItem.warranty_ends_on.is_not(None))
    )


def _care_tip(day: date, now: datetime, settings: PlanSettings) -> Select:
    """Monthly, on the day of the month the warranty ends (campaign_rules.care_tip_dates)."""
    period = OrderItem.sku + literal(f"-{month_period(day)}")
    owned_since = now - timedelta(days=settings.care_tip_min_days)
    return _owned_items(*_row(period, OrderItem.sku, -OrderItem.unit_price_cents)).where(
        OrderItem.warranty_ends_on.in_(care_tip_dates(day, settings)),
        Order.placed_at <= owned_since,
    )


def _warranty_reminder(day: date, now: datetime, settings: PlanSettings) -> Select:
    ends = OrderItem.warranty_ends_on
    period = OrderItem.order_id + literal("-") + OrderItem.sku
    return _owned_items(*_row(period, OrderItem.sku, ends)).where(
        ends >= day, ends <= day + timedelta(days=settings.warranty_notice_days)
    )


def _win_back(day: date, now: datetime, settings: PlanSettings) -> Select:
    m = CustomerMetrics
    period = half_year_period(day)
    low, high = settings.clv_levels
    level = 1 + case((m.clv_cents >= low, 1), else_=0) + case((m.clv_cents >= high, 1), else_=0)
    level = level + case((Customer.tier.in_(("金卡", "钻石")), 1), else_=0)
    offer = case(
        *[(level == n, win_back_offer_key(period, n)) for n in (1, 2)],
        else_=win_back_offer_key(period, 3),
    )
    return (
        select(*_row(literal(period), offer, -m.churn_risk))
        .join(m, m.customer_id == Customer.id)
        .where(m.frequency > 0, m.churn_risk >= settings.win_back_risk)
    )


# --- the pipeline: outcomes, slots, writing ---------------------------------------------------


def _pipeline(
    session: Session,
    campaign: Campaign,
    candidates: Select,
    day: date,
    now: datetime,
    settings: PlanSettings,
) -> tuple[Any, Any, Any]:
    """(final CTE with a `reason` per candidate, its scheduled_at, its deferred flag)."""
    first = _first_pass(candidates.cte("candidates"), campaign, day, settings)
    rank: Any = literal(1)  # one candidate per customer: no window sort over a million rows
    if campaign.key in PER_ITEM_CAMPAIGNS:
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


def _first_pass(c: Any, campaign: Campaign, day: date, settings: PlanSettings) -> Any:
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
    if campaign.key == "win_back":
        salt = control_salt(half_year_period(day))
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
    """The SQL twin of campaign_rules.control_bucket(customer_id, period) < share."""
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


def _materialized(session: Session, final: Any, slot: Any, deferred: Any) -> Table:
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


def _previewed(session: Session, final: Any, slot: Any) -> Table:
    connection = session.connection()
    PREVIEW.drop(connection, checkfirst=True)  # left over by a failed preview on this connection
    PREVIEW.create(connection)
    f = final.c
    place = func.row_number().over(order_by=(f.rank, f.customer_id, f.period))
    rows = select(f.customer_id, f.name, f.period, f.channel, slot, f.reason, f.detail, place)
    session.execute(insert(PREVIEW).from_select([c.name for c in PREVIEW.columns], rows))
    return PREVIEW


def _write(session: Session, campaign: Campaign, outcomes: Table, now: datetime) -> None:
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
    statement = _insert_ignoring_duplicates(session, CareMessage).from_select(columns, rows)
    session.execute(statement)


def _insert_ignoring_duplicates(session: Session, model: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING: a concurrent planner's row wins, quietly."""
    dialect = session.get_bind().dialect.name
    module: Any = {"postgresql": postgresql, "sqlite": sqlite}.get(dialect)
    if module is None:
        return insert(model)
    return module.insert(model).on_conflict_do_nothing()


def _result(census: Iterable[Any]) -> PlanResult:
    planned = deferred = 0
    skipped: dict[str, int] = {}
    for reason, was_deferred, count in census:
        if reason is None and was_deferred:
            deferred += count
        elif reason is None:
            planned += count
        else:
            skipped[reason] = skipped.get(reason, 0) + count
    return PlanResult(planned, deferred, skipped)


# --- coupons: issued with the outbox row, so the message and the redemption see one code ------


def _ensure_offer(session: Session, key: str, value: int, min_spend: int, clock: Clock) -> None:
    if session.scalar(select(Offer.id).where(Offer.key == key)) is None:
        create_offer(
            session,
            key=key,
            name=key,
            kind="amount_off",
            value=value,
            min_spend_cents=min_spend,
            valid_days=COUPON_VALID_DAYS,
            clock=clock,
        )


def _ensure_win_back_offers(session: Session, period: str, clock: Clock) -> None:
    for level, (value, min_spend) in WIN_BACK_OFFERS.items():
        _ensure_offer(session, win_back_offer_key(period, level), value, min_spend, clock)


def _ensure_birthday_offers(session: Session, period: str, clock: Clock) -> None:
    for tier, gift in BIRTHDAY_GIFTS.items():
        if gift.kind == "coupon":
            key = birthday_offer_key(period, tier)
            _ensure_offer(session, key, gift.value, gift.min_spend_cents, clock)


def _issue_coupons(
    session: Session, campaign: Campaign, outcomes: Table, day: date, now: datetime
) -> None:
    """A coupon for every pending row this run wrote whose detail names an offer."""
    if campaign.key not in ("win_back", "birthday"):
        return
    period = half_year_period(day) if campaign.key == "win_back" else str(day.year)
    ensure = _ensure_win_back_offers if campaign.key == "win_back" else _ensure_birthday_offers
    ensure(session, period, lambda: now)
    wanted = _coupons_wanted(session, campaign, outcomes, now)
    for _ in range(5):  # a code clash (1 in 10^14) leaves that row for the next round
        missing = _without_coupon(session, wanted)
        if not missing:
            return
        _insert_coupons(session, missing, now)


def _coupons_wanted(
    session: Session, campaign: Campaign, outcomes: Table, now: datetime
) -> list[tuple[int, str]]:
    """(customer id, offer key) of this run's pending rows that carry a coupon."""
    o = outcomes.c
    query = (
        select(o.customer_id, o.detail)
        .join(
            CareMessage,
            and_(
                CareMessage.customer_id == o.customer_id,
                CareMessage.campaign_id == campaign.id,
                CareMessage.period == o.period,
            ),
        )
        .where(CareMessage.state == "pending", CareMessage.created_at == now)
        .where(o.detail.like(f"{campaign.key}\\_%", escape="\\"))
    )
    return [(row.customer_id, row.detail) for row in session.execute(query)]


def _without_coupon(session: Session, wanted: list[tuple[int, str]]) -> list[tuple[int, int, int]]:
    """(customer id, offer id, valid days) of the wanted coupons not issued yet."""
    keys = {key for _, key in wanted}
    offers = dict(session.execute(select(Offer.key, Offer.id).where(Offer.key.in_(keys))).all())
    valid = dict(
        session.execute(select(Offer.id, Offer.valid_days).where(Offer.key.in_(keys))).all()
    )
    issued = set(
        session.execute(
            select(Coupon.customer_id, Coupon.offer_id).where(Coupon.offer_id.in_(offers.values()))
        ).all()
    )
    return [
        (customer, offers[key], valid[offers[key]])
        for customer, key in wanted
        if (customer, offers[key]) not in issued
    ]


def _insert_coupons(session: Session, missing: list[tuple[int, int, int]], now: datetime) -> None:
    rows = [
        {
            "code": new_code(),
            "offer_id": offer_id,
            "customer_id": customer_id,
            "status": "issued",
            "issued_at": now,
            "expires_at": now + timedelta(days=valid_days),
        }
        for customer_id, offer_id, valid_days in missing
    ]
    session.execute(_insert_ignoring_duplicates(session, Coupon), rows)
