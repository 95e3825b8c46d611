"""Builders for the care scheduler tests (a unique module name, see tests/crm_store)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine

from crm_store.campaigns import create_campaign, find_campaign
from crm_store.clock import Clock, utcnow
from crm_store.customers import create_customer
from crm_store.db import session_scope
from crm_store.identities import link_identity
from crm_store.outbox import enqueue_care_message


def due_messages(
    engine: Engine,
    count: int,
    *,
    campaign: str = "care_tip",
    clock: Clock = utcnow,
    scheduled_at: datetime | None = None,
) -> list[int]:
    """`count` due rows, each for its own WeChat follower (always reachable, no quiet hours:
    the scheduler processes of the tests run on the real clock); their ids."""
    ids = []
    with session_scope(engine) as session:
        if find_campaign(session, key=campaign) is None:
            kind = "follow_up" if campaign == "delivery_follow_up" else campaign
            create_campaign(session, key=campaign, name=campaign, kind=kind, category="care")
        for n in range(count):
            customer = create_customer(
                session,
                name=f"顾客{n}",
                preferred_channel="wechat",
                quiet_hours=None,
                clock=clock,
            )
            link_identity(
                session,
                customer_id=customer.id,
                kind="wechat_openid",
                value=f"o_{campaign}_{n}",
                clock=clock,
            )
            message, _ = enqueue_care_message(
                session,
                customer_id=customer.id,
                campaign_key=campaign,
                period="2026-11",
                channel="wechat",
                scheduled_at=scheduled_at,
                clock=clock,
            )
            ids.append(message.id)
    return ids
