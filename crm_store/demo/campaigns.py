"""The demo's care campaigns (on, capped) and the offers any member may claim."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from crm_store.campaigns.planning import ensure_campaigns
from crm_store.clock import Clock
from crm_store.offers import create_offer

# The demo's campaigns are on from the start, each capped so that a day reaches at most 100 of
# the 2,000 demo customers (5 %), well inside the contact budget (2 a week) and what the WeChat
# simulator's page can show; a production installation starts with them off (docs/campaigns.md).
DEMO_DAILY_CAPS: dict[str, int | None] = {
    "delivery_follow_up": 20,
    "warranty_reminder": 15,
    "follow_up": 20,
    "birthday": 10,
    "holiday": 10,
    "care_tip": 10,
    "win_back": 15,
}


def ensure_demo_campaigns(engine: Engine, clock: Clock) -> None:
    """The campaign rows (and win-back offers) the care scheduler plans for: on, capped."""
    with Session(engine, future=True) as session, session.begin():
        ensure_campaigns(session, clock=clock, enabled=True, daily_caps=DEMO_DAILY_CAPS)


# Offers any member may claim in the dialogue ("有什么优惠"): key, name, kind, value, minimum
# spend (cents), days a coupon stays valid.
DEMO_OFFERS = (
    ("demo_new_year_20", "新年满100减20券", "amount_off", 2000, 10000, 30),
    ("demo_member_day_95", "会员日95折券", "percent_off", 5, 0, 14),
    ("demo_winter_50", "冬季满300减50券", "amount_off", 5000, 30000, 30),
)


def add_public_offers(engine: Engine, clock: Clock) -> None:
    with Session(engine, future=True) as session, session.begin():
        for key, name, kind, value, min_spend, days in DEMO_OFFERS:
            create_offer(
                session,
                key=key,
                name=name,
                kind=kind,
                value=value,
                min_spend_cents=min_spend,
                valid_days=days,
                clock=clock,
            )
