"""Care campaign figures: the outbox per campaign, why messages did not go, win-back uplift.

The outbox (care_messages) has one row per customer x campaign x period; a row planned in the
range is counted by the state it is in now. Replies and opt-outs are read from what the
customer did after the message was sent (docs/dashboard.md defines each figure). These are
the campaign results; one campaign's all-time totals are crm_store.campaigns.campaign_totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from crm_store.dashboard.filters import DashboardFilter, narrow, plus_hours, share
from crm_store.dashboard.stats import uplift
from crm_store.dashboard.summaries import OPT_OUT_HOURS, REPLY_HOURS
from crm_store.models import Campaign, ConsentChange, Coupon, Interaction
from crm_store.models import CareMessage as MessageRow
from crm_store.win_back_outcomes import CONTROL_GROUP_REASON, RETURNED

FAILED, SKIPPED, DEFERRED = "failed", "skipped", "deferred"
WIN_BACK_KIND = "win_back"  # the campaign kind whose rows carry a 30-day outcome


@dataclass(frozen=True)
class CampaignFigures:
    campaign: str  # the campaign's key
    name: str
    kind: str
    planned: int  # rows meant to be sent (all but the control group)
    waiting: int  # pending, not yet due or not yet tried
    deferred: int  # pending again after a try: no channel reached the customer then
    sending: int
    sent: int
    delivered: int
    failed: int
    skipped: int  # deliberately not sent (the control group is counted apart)
    control: int  # the win-back hold-out
    replies: int
    opt_outs: int
    reply_rate: float | None  # replies / sent
    opt_out_rate: float | None  # opt_outs / sent


@dataclass(frozen=True)
class CampaignReason:
    campaign: str
    outcome: str  # failed, skipped or deferred
    reason: str
    messages: int


@dataclass(frozen=True)
class WinBackFigures:
    campaign: str
    offers_issued: int
    offers_redeemed: int
    redemption_rate: float | None
    treated: int  # sent messages whose 30-day outcome is known
    treated_returned: int
    control: int  # control-group rows whose outcome is known
    control_returned: int
    treated_rate: float | None
    control_rate: float | None
    uplift: float | None  # treated_rate - control_rate
    uplift_low: float | None  # 95% interval (Newcombe hybrid score)
    uplift_high: float | None


def _count_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _where(f: DashboardFilter) -> list[Any]:
    m = MessageRow
    return narrow(f, at=m.created_at, customer_id=m.customer_id, channel=m.channel)


def _is_control() -> Any:
    return and_(MessageRow.state == "skipped", MessageRow.reason == CONTROL_GROUP_REASON)


def _delivered() -> Any:
    """A channel receipt when the outbox keeps one; until then, accepted by the channel = sent."""
    receipt = getattr(MessageRow, "delivered_at", None)
    if receipt is None:
        return MessageRow.state == "sent"
    return and_(MessageRow.state == "sent", receipt.is_not(None))


def _unrecorded(f: DashboardFilter) -> list[Any]:
    """Sent messages in the filter whose reply and opt-out are not recorded yet."""
    m = MessageRow
    return [
        m.state == "sent",
        m.sent_at.is_not(None),
        m.responses_recorded_at.is_(None),
        *_where(f),
    ]


def _first_unrecorded(session: Session, f: DashboardFilter) -> datetime | None:
    """When the oldest sent message without recorded responses was sent (partial index)."""
    return session.scalar(select(func.min(MessageRow.sent_at)).where(*_unrecorded(f)))


def _replies(session: Session, f: DashboardFilter, first: datetime) -> dict[str, int]:
    """Unrecorded sent messages a customer turn followed within REPLY_HOURS, per campaign."""
    m, i = MessageRow, Interaction
    dialect = session.get_bind().dialect.name
    query = (
        select(Campaign.key, func.count(func.distinct(m.id)))
        .join(m, m.campaign_id == Campaign.id)
        .join(i, i.customer_id == m.customer_id)
        .where(
            *_unrecorded(f),
            i.speaker == "customer",
            i.occurred_at > m.sent_at,
            i.occurred_at <= plus_hours(m.sent_at, REPLY_HOURS, dialect),
            i.occurred_at > first,  # an index range: only turns after the oldest such message
        )
        .group_by(Campaign.key)
    )
    return {key: int(n) for key, n in session.execute(query)}


def _opt_outs(session: Session, f: DashboardFilter, first: datetime) -> dict[str, int]:
    """Unrecorded sent messages after which the customer withdrew the campaign's consent."""
    m, c = MessageRow, ConsentChange  # the history: a withdrawal taken back since still counts
    dialect = session.get_bind().dialect.name
    query = (
        select(Campaign.key, func.count(func.distinct(m.id)))
        .join(m, m.campaign_id == Campaign.id)
        .join(c, and_(c.customer_id == m.customer_id, c.category == Campaign.category))
        .where(
            *_unrecorded(f),
            ~c.granted,  # the partial index ix_consent_changes_withdrawn_at
            c.changed_at > m.sent_at,
            c.changed_at <= plus_hours(m.sent_at, OPT_OUT_HOURS, dialect),
            c.changed_at > first,
        )
        .group_by(Campaign.key)
    )
    return {key: int(n) for key, n in session.execute(query)}


def _campaign_columns() -> list[Any]:
    m = MessageRow
    sent = m.state == "sent"
    pending = m.state == "pending"
    return [
        _count_if(~_is_control()).label("planned"),
        _count_if(and_(pending, m.reason.is_(None))).label("waiting"),
        _count_if(and_(pending, m.reason.is_not(None))).label("deferred"),
        _count_if(m.state == "sending").label("sending"),
        _count_if(sent).label("sent"),
        _count_if(_delivered()).label("delivered"),
        _count_if(m.state == "failed").label("failed"),
        _count_if(and_(m.state == "skipped", ~_is_control())).label("skipped"),
        _count_if(_is_control()).label("control"),
        func.count(m.replied_at).label("replies"),
        func.count(m.opted_out_at).label("opt_outs"),
    ]


def campaign_results(session: Session, f: DashboardFilter) -> list[CampaignFigures]:
    """Per campaign with rows planned in the range: where its messages are now."""
    query = (
        select(Campaign.key, Campaign.name, Campaign.kind, *_campaign_columns())
        .join(MessageRow, MessageRow.campaign_id == Campaign.id)
        .where(*_where(f))
        .group_by(Campaign.key, Campaign.name, Campaign.kind)
        .order_by(Campaign.key)
    )
    first = _first_unrecorded(session, f)
    replies = {} if first is None else _replies(session, f, first)
    opt_outs = {} if first is None else _opt_outs(session, f, first)
    return [
        _campaign(row, replies.get(row.key, 0), opt_outs.get(row.key, 0))
        for row in session.execute(query)
    ]


def _campaign(row: Any, replies: int, opt_outs: int) -> CampaignFigures:
    counts = {name: int(getattr(row, name)) for name in _COUNTED}
    counts.update(replies=counts["replies"] + replies, opt_outs=counts["opt_outs"] + opt_outs)
    return CampaignFigures(
        campaign=row.key,
        name=row.name,
        kind=row.kind,
        **counts,
        reply_rate=share(counts["replies"], counts["sent"]),
        opt_out_rate=share(counts["opt_outs"], counts["sent"]),
    )


_COUNTED = (
    "planned",
    "waiting",
    "deferred",
    "sending",
    "sent",
    "delivered",
    "failed",
    "skipped",
    "control",
    "replies",
    "opt_outs",
)


def campaign_reasons(session: Session, f: DashboardFilter) -> list[CampaignReason]:
    """Why messages failed, were skipped (control group aside) or deferred, most frequent first."""
    m = MessageRow
    outcome = case(
        (m.state == "failed", FAILED),
        (m.state == "skipped", SKIPPED),
        else_=DEFERRED,
    ).label("outcome")
    why = (m.state.in_(("failed", "skipped")) | (m.state == "pending")) & m.reason.is_not(None)
    messages = func.count().label("messages")
    query = (
        select(Campaign.key, outcome, m.reason, messages)
        .join(m, m.campaign_id == Campaign.id)
        .where(why, ~_is_control(), *_where(f))
        .group_by(Campaign.key, outcome, m.reason)
        .order_by(Campaign.key, messages.desc(), outcome, m.reason)
    )
    return [
        CampaignReason(key, kind, reason, int(n)) for key, kind, reason, n in session.execute(query)
    ]


def _arms(session: Session, f: DashboardFilter) -> dict[str, Any]:
    m = MessageRow
    measured = m.outcome.is_not(None)
    returned = m.outcome == RETURNED
    treated = and_(m.state == "sent", measured)
    control = and_(_is_control(), measured)
    query = (
        select(
            Campaign.key,
            Campaign.offer_id,
            _count_if(treated).label("treated"),
            _count_if(and_(treated, returned)).label("treated_returned"),
            _count_if(control).label("control"),
            _count_if(and_(control, returned)).label("control_returned"),
        )
        .join(m, m.campaign_id == Campaign.id)
        .where(Campaign.kind == WIN_BACK_KIND, *_where(f))
        .group_by(Campaign.key, Campaign.offer_id)
        .order_by(Campaign.key)
    )
    return {row.key: row for row in session.execute(query)}


def _coupons(session: Session, f: DashboardFilter, offer_ids: list[int]) -> dict[int, Any]:
    c = Coupon
    where = narrow(f, at=c.issued_at, customer_id=c.customer_id)
    query = (
        select(
            c.offer_id, func.count().label("issued"), func.count(c.redeemed_at).label("redeemed")
        )
        .where(c.offer_id.in_(offer_ids), *where)
        .group_by(c.offer_id)
    )
    return {row.offer_id: row for row in session.execute(query)}


def win_back_results(session: Session, f: DashboardFilter) -> list[WinBackFigures]:
    """Per win-back campaign: its offer's coupons and the reactivation uplift over the control."""
    arms = _arms(session, f)
    offers = [row.offer_id for row in arms.values() if row.offer_id is not None]
    coupons = _coupons(session, f, offers) if offers else {}
    return [_win_back(row, coupons.get(row.offer_id)) for row in arms.values()]


def _win_back(arms: Any, coupons: Any) -> WinBackFigures:
    issued = int(coupons.issued) if coupons is not None else 0
    redeemed = int(coupons.redeemed) if coupons is not None else 0
    counts = [int(arms.treated_returned), int(arms.treated)]
    counts += [int(arms.control_returned), int(arms.control)]
    result = uplift(*counts)
    return WinBackFigures(
        campaign=arms.key,
        offers_issued=issued,
        offers_redeemed=redeemed,
        redemption_rate=share(redeemed, issued),
        treated=counts[1],
        treated_returned=counts[0],
        control=counts[3],
        control_returned=counts[2],
        treated_rate=_rounded(result.treated_rate),
        control_rate=_rounded(result.control_rate),
        uplift=_rounded(result.difference),
        uplift_low=_rounded(result.low),
        uplift_high=_rounded(result.high),
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
