"""The three documented demo customers (ids 1-3, crm_store/README.md) that dialogue tests and
demos rely on."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from crm_store.clock import BUSINESS_TZ
from crm_store.demo.orders import OrderRows, carrier_of
from crm_store.demo.reference import CATALOGUE
from crm_store.demo.tables import Batch
from crm_store.models import (
    CATEGORIES,
    ChannelIdentity,
    Consent,
    Conversation,
    Customer,
    Interaction,
    Order,
    OrderItem,
    PointsEntry,
    ShippingEvent,
    SurveyResponse,
)
from crm_store.orders import add_months
from crm_store.points import POINTS_VALID_DAYS

FIXED_CUSTOMERS = 3
FIXED_SHIPPING = (
    (2, "created", "佛山"),
    (20, "picked_up", "佛山"),
    (40, "in_transit", "广州转运中心"),
)


def add_fixed_customers(batch: Batch, gen: OrderRows) -> None:
    """The documented demo customers (ids 1-3) that dialogue tests and demos rely on."""
    _demo_gold_member(batch, gen)
    _demo_drifting_lunar(batch, gen)
    _demo_newcomer(batch, gen.now)
    _rest_users(batch, gen.now)


def _demo_gold_member(batch: Batch, gen: OrderRows) -> None:
    """1 王小明: orders incl. DD202611020387, a warranty ending in 20 days, points."""
    now = gen.now
    _identities(
        batch,
        1,
        now,
        web_user="demo",
        wechat_openid="o_demo_openid",
        wechat_unionid="u_demo_unionid",
    )
    _consents(batch, 1, now, offer=True)
    recent = now - timedelta(days=2)
    _fixed_order(batch, 1, "DD202611020387", recent, ["AF-200", "KT-090"], "shipped")
    robot = datetime.combine(add_months(now.date() + timedelta(days=20), -12), time(3))
    _fixed_order(batch, 1, gen.order_id(robot), robot, ["RV-700"], "completed")
    old = now - timedelta(days=400)
    _fixed_order(batch, 1, gen.order_id(old), old, ["WP-600", "DW-900", "CM-400"], "completed")
    earned = [(old, 9_000), (robot, 3_700), (recent, 790)]
    balance = _fixed_points(batch, 1, now, earned, redeemed=500)
    chatted = _fixed_chat(batch, 1, "demo-1-0", now - timedelta(days=30), csat=5, nps=10)
    _fixed_profile(
        batch,
        1,
        "王小明",
        "13800138000",
        "金卡",
        now - timedelta(days=900),
        birthday=date(1990, 11, 20),
        channel="wechat",
        activity=(balance, chatted),
    )


def _demo_drifting_lunar(batch: Batch, gen: OrderRows) -> None:
    """2 李娜: a lunar birthday, no order for 260 days, an unhappy survey: a win-back case."""
    now = gen.now
    _identities(batch, 2, now, web_user="demo_lunar", wechat_openid="o_demo_lunar")
    _consents(batch, 2, now, offer=True)
    for days, skus in ((260, ["BL-500"]), (320, ["RC-300"]), (400, ["AP-800"])):
        placed = now - timedelta(days=days)
        _fixed_order(batch, 2, gen.order_id(placed), placed, skus, "completed")
    balance = _fixed_points(batch, 2, now, [(now - timedelta(days=260), 899)], redeemed=0)
    chatted = _fixed_chat(batch, 2, "demo-2-0", now - timedelta(days=100), csat=2, nps=3)
    _fixed_profile(
        batch,
        2,
        "李娜",
        "13800138001",
        "银卡",
        now - timedelta(days=1_000),
        birthday=date(1985, 9, 12),
        channel="web",
        lunar=(8, 15),
        activity=(balance, chatted),
    )


def _demo_newcomer(batch: Batch, now: datetime) -> None:
    """3 张伟: signed up 3 days ago, no orders, no consent to offers."""
    _identities(batch, 3, now, wechat_openid="o_demo_new")
    _consents(batch, 3, now, offer=False)
    _fixed_profile(
        batch,
        3,
        "张伟",
        "13800138002",
        "普通",
        now - timedelta(days=3),
        birthday=None,
        channel="wechat",
    )


def _fixed_profile(
    batch: Batch,
    customer_id: int,
    name: str,
    phone: str,
    tier: str,
    created_at: datetime,
    *,
    birthday: date | None,
    channel: str,
    lunar: tuple[int, int] | None = None,
    activity: tuple[int, datetime | None] = (0, None),
) -> None:
    """`activity`: the points balance and the last time the customer was active."""
    balance, last_active = activity
    batch.add(
        Customer,
        id=customer_id,
        name=name,
        phone=phone,
        email=None,
        birthday=birthday,
        lunar_birth_month=lunar[0] if lunar else None,
        lunar_birth_day=lunar[1] if lunar else None,
        lunar_birth_leap=False,
        celebrates_lunar_birthday=lunar is not None,
        tier=tier,
        points_balance=balance,
        preferred_channel=channel,
        timezone=BUSINESS_TZ.key,
        quiet_start=time(22),
        quiet_end=time(8),
        created_at=created_at,
        last_active_at=last_active,
    )


# The REST channel's senders "demo" and "demo_lunar": user ids of the brand's back end (rest_user
# identities, migration 0014). Empty for a schema from before 0014 (the migration tests).
DEMO_REST_USERS: dict[int, str] = {1: "demo", 2: "demo_lunar"}


def _rest_users(batch: Batch, now: datetime) -> None:
    for customer_id, user in DEMO_REST_USERS.items():
        _identities(batch, customer_id, now, rest_user=user)


def _identities(batch: Batch, customer_id: int, now: datetime, **kinds: str) -> None:
    for kind, value in kinds.items():
        batch.add(ChannelIdentity, customer_id=customer_id, kind=kind, value=value, created_at=now)


def _consents(batch: Batch, customer_id: int, now: datetime, *, offer: bool) -> None:
    for category in CATEGORIES:
        batch.add(
            Consent,
            customer_id=customer_id,
            category=category,
            granted=offer if category == "offer" else True,
            source="signup",
            updated_at=now,
        )


def _fixed_order(
    batch: Batch, customer_id: int, order_id: str, placed: datetime, skus: list[str], status: str
) -> None:
    total = 0
    for sku in skus:
        _, _, price, warranty = CATALOGUE[sku]
        total += price
        batch.add(
            OrderItem,
            order_id=order_id,
            sku=sku,
            quantity=1,
            unit_price_cents=price,
            warranty_ends_on=add_months(placed.date(), warranty),
        )
    batch.add(
        Order,
        id=order_id,
        customer_id=customer_id,
        status=status,
        total_cents=total,
        placed_at=placed,
        carrier=carrier_of(order_id, status),
    )
    if status == "shipped":
        for hours, event, where in FIXED_SHIPPING:
            batch.add(
                ShippingEvent,
                order_id=order_id,
                status=event,
                location=where,
                occurred_at=placed + timedelta(hours=hours),
            )


def _fixed_points(
    batch: Batch,
    customer_id: int,
    now: datetime,
    earned: list[tuple[datetime, int]],
    *,
    redeemed: int,
) -> int:
    """The ledger rows; the balance they leave."""
    balance = 0
    for at, points in earned:
        balance += points
        batch.add(
            PointsEntry,
            customer_id=customer_id,
            kind="earn",
            delta=points,
            balance_after=balance,
            reason="order",
            order_id=None,
            created_at=at,
            expires_at=at + timedelta(days=POINTS_VALID_DAYS),
        )
    if redeemed:
        balance -= redeemed
        batch.add(
            PointsEntry,
            customer_id=customer_id,
            kind="redeem",
            delta=-redeemed,
            balance_after=balance,
            reason="coupon",
            order_id=None,
            created_at=now - timedelta(days=1),
            expires_at=None,
        )
    return balance


def _fixed_chat(
    batch: Batch, customer_id: int, conversation_id: str, at: datetime, *, csat: int, nps: int
) -> datetime:
    """One answered chat at `at`; returns `at`, the customer's last activity."""
    batch.add(
        Conversation,
        id=conversation_id,
        customer_id=customer_id,
        channel="wechat",
        started_at=at,
        last_message_at=at,
        ended_at=at,
    )
    batch.add(
        Interaction,
        conversation_id=conversation_id,
        customer_id=customer_id,
        channel="wechat",
        speaker="customer",
        text=None,
        intent="order_status",
        confidence=0.91,
        handled_by="bot",
        agent_id=None,
        occurred_at=at,
    )
    batch.add(
        SurveyResponse,
        conversation_id=conversation_id,
        trigger="end_of_chat",
        channel="wechat",
        status="answered",
        customer_id=customer_id,
        agent_id=None,
        csat=csat,
        nps=nps,
        comment=None,
        themes=[],
        asked_at=at,
        answered_at=at,
    )
    return at
