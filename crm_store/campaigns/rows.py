"""Campaign rows in the CRM: created, switched on and off, capped, and their totals.

What each campaign is (its key, name, rules) is its spec (registry.py); this module is the row a
manager owns: its status (on/off), its daily cap, audited changes (docs/campaigns.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_store._unique import try_insert
from crm_store.audit import record_audit
from crm_store.clock import Clock, utcnow
from crm_store.errors import Conflict, InvalidInput, NotFound
from crm_store.models import (
    CAMPAIGN_KINDS,
    CAMPAIGN_STATUSES,
    CATEGORIES,
    OUTBOX_STATES,
    CareMessage,
    Coupon,
)
from crm_store.models import Campaign as CampaignRow
from crm_store.models import Offer as OfferRow
from crm_store.validation import check_choice, check_text


@dataclass(frozen=True)
class Campaign:
    id: int
    key: str
    name: str
    kind: str
    category: str
    status: str
    offer_id: int | None
    starts_at: datetime | None
    ends_at: datetime | None
    daily_cap: int | None = None  # the most rows planning writes in one day; None: no cap

    @property
    def enabled(self) -> bool:
        """On: the scheduler plans it (a manager switches it, docs/campaigns.md)."""
        return self.status == ON


# On and off, as the console and the scheduler speak of them, are these statuses.
ON, OFF = "active", "paused"
MAX_DAILY_CAP = 1_000_000


@dataclass(frozen=True)
class CampaignTotals:
    """One campaign since it began: its outbox rows by state and its offer's coupons (the
    dashboard's campaign figures, crm_store.dashboard.campaigns.campaign_results, are per
    period and filter)."""

    messages: dict[str, int]  # outbox state -> count
    coupons_issued: int
    coupons_redeemed: int


def is_running(campaign: Campaign, now: datetime) -> bool:
    return (
        campaign.status == "active"
        and (campaign.starts_at is None or campaign.starts_at <= now)
        and (campaign.ends_at is None or now < campaign.ends_at)
    )


def _record(row: CampaignRow) -> Campaign:
    return Campaign(
        row.id,
        row.key,
        row.name,
        row.kind,
        row.category,
        row.status,
        row.offer_id,
        row.starts_at,
        row.ends_at,
        row.daily_cap,
    )


def create_campaign(
    session: Session,
    *,
    key: str,
    name: str,
    kind: str,
    category: str,
    status: str = "active",
    offer_key: str | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    daily_cap: int | None = None,
    clock: Clock = utcnow,
) -> Campaign:
    offer_id = None
    if offer_key is not None:
        offer_id = session.scalar(select(OfferRow.id).where(OfferRow.key == offer_key))
        if offer_id is None:
            raise NotFound(f"no offer {offer_key}")
    row = CampaignRow(
        key=check_text(key, "key", 48),
        name=check_text(name, "name", 64),
        kind=check_choice(kind, CAMPAIGN_KINDS, "campaign kind"),
        category=check_choice(category, CATEGORIES, "category"),
        status=check_choice(status, CAMPAIGN_STATUSES, "campaign status"),
        offer_id=offer_id,
        starts_at=starts_at,
        ends_at=ends_at,
        daily_cap=check_daily_cap(daily_cap),
        created_at=clock(),
    )
    if not try_insert(session, row):
        raise Conflict(f"a campaign with key {key} exists")
    return _record(row)


def find_campaign(session: Session, *, key: str) -> Campaign | None:
    row = session.scalars(select(CampaignRow).where(CampaignRow.key == key)).first()
    return _record(row) if row else None


def get_campaign(session: Session, *, key: str) -> Campaign:
    campaign = find_campaign(session, key=key)
    if campaign is None:
        raise NotFound(f"no campaign {key}")
    return campaign


def list_campaigns(session: Session, *, status: str | None = None) -> list[Campaign]:
    query = select(CampaignRow).order_by(CampaignRow.id)
    if status is not None:
        query = query.where(CampaignRow.status == check_choice(status, CAMPAIGN_STATUSES, "status"))
    return [_record(row) for row in session.scalars(query)]


def set_campaign_status(
    session: Session, *, key: str, status: str, actor: str, clock: Clock = utcnow
) -> Campaign:
    row = session.scalars(select(CampaignRow).where(CampaignRow.key == key)).first()
    if row is None:
        raise NotFound(f"no campaign {key}")
    before, row.status = row.status, check_choice(status, CAMPAIGN_STATUSES, "campaign status")
    record_audit(
        session,
        actor=actor,
        action="set_campaign_status",
        entity="campaign",
        entity_id=row.id,
        changes={"status": [before, status]},
        clock=clock,
    )
    session.flush()
    return _record(row)


def check_daily_cap(daily_cap: int | None) -> int | None:
    if daily_cap is not None and not 0 <= daily_cap <= MAX_DAILY_CAP:
        raise InvalidInput(f"a daily cap is a whole number from 0 to {MAX_DAILY_CAP}")
    return daily_cap


def campaign_settings(session: Session, *, keys: Sequence[str]) -> list[Campaign]:
    """The campaigns with these keys, in this order (a key without a row is left out)."""
    rows = session.scalars(select(CampaignRow).where(CampaignRow.key.in_(keys))).all()
    by_key = {row.key: _record(row) for row in rows}
    return [by_key[key] for key in keys if key in by_key]


def switched_off(session: Session, *, keys: Sequence[str]) -> list[str]:
    """The campaigns among `keys` whose row is off, in this order (no row: not off)."""
    return [
        campaign.key for campaign in campaign_settings(session, keys=keys) if not campaign.enabled
    ]


def set_campaign_enabled(
    session: Session, *, key: str, enabled: bool, actor: str, clock: Clock = utcnow
) -> Campaign:
    """Switch a campaign on (the scheduler plans it) or off (it plans nothing, and its planned
    messages wait in the outbox); a change is audited, a repeat changes nothing."""
    row = _row(session, key)
    status = ON if enabled else OFF
    if row.status != status:
        before, row.status = row.status, status
        _audit(session, row, actor, "set_campaign_enabled", {"status": [before, status]}, clock)
    return _record(row)


def set_daily_cap(
    session: Session, *, key: str, daily_cap: int | None, actor: str, clock: Clock = utcnow
) -> Campaign:
    """The most rows planning writes for the campaign in one day (None: no cap); audited."""
    row = _row(session, key)
    cap = check_daily_cap(daily_cap)
    if row.daily_cap != cap:
        before, row.daily_cap = row.daily_cap, cap
        _audit(session, row, actor, "set_campaign_daily_cap", {"daily_cap": [before, cap]}, clock)
    return _record(row)


def _row(session: Session, key: str) -> CampaignRow:
    row = session.scalars(select(CampaignRow).where(CampaignRow.key == key)).first()
    if row is None:
        raise NotFound(f"no campaign {key}")
    return row


def _audit(
    session: Session,
    row: CampaignRow,
    actor: str,
    action: str,
    changes: dict[str, list[object]],
    clock: Clock,
) -> None:
    record_audit(
        session,
        actor=actor,
        action=action,
        entity="campaign",
        entity_id=row.key,
        changes=changes,
        clock=clock,
    )
    session.flush()


def campaign_totals(session: Session, *, key: str) -> CampaignTotals:
    """Outbox states and, for an offer campaign, coupons issued and redeemed, in two queries."""
    campaign = get_campaign(session, key=key)
    counts = dict(
        session.execute(
            select(CareMessage.state, func.count())
            .where(CareMessage.campaign_id == campaign.id)
            .group_by(CareMessage.state)
        ).all()
    )
    issued = redeemed = 0
    if campaign.offer_id is not None:
        issued, redeemed = _coupon_counts(session, campaign.offer_id)
    return CampaignTotals(
        messages={state: int(counts.get(state, 0)) for state in OUTBOX_STATES},
        coupons_issued=issued,
        coupons_redeemed=redeemed,
    )


def _coupon_counts(session: Session, offer_id: int) -> tuple[int, int]:
    issued, redeemed = session.execute(
        select(func.count(), func.count(Coupon.redeemed_at)).where(Coupon.offer_id == offer_id)
    ).one()
    return int(issued), int(redeemed)


def get_campaign_by_id(session: Session, *, campaign_id: int) -> Campaign:
    row = session.get(CampaignRow, campaign_id)
    if row is None:
        raise NotFound(f"no campaign {campaign_id}")
    return _record(row)
