"""Generated customers: a persona each (how often and what they buy), a profile, channel
identities, consents, a points ledger, and now and then a ticket; their orders and chats come
from `orders.py` and `chats.py`."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from faker import Faker

from crm_store.clock import BUSINESS_TZ
from crm_store.customers import TIER_SPEND_THRESHOLDS
from crm_store.demo.chats import ChatRows
from crm_store.demo.orders import OrderRows
from crm_store.demo.tables import Batch, Row, stamp
from crm_store.models import CATEGORIES
from crm_store.points import POINTS_VALID_DAYS, points_for_purchase
from crm_store.tickets import sla_due

PHONE_PREFIXES = ["139", "136", "150", "151", "186", "187", "188", "177", "199", "135"]
DOMAINS = ("qq.com", "163.com", "126.com", "sina.com", "foxmail.com")
PERSONAS = [
    ("frequent_cheap", 35),
    ("regular", 30),
    ("rare_expensive", 15),
    ("drifting", 12),
    ("prospect", 8),
]
# One entry per percent, so a persona is one uniform pick.
PERSONA_DRAW = tuple(persona for persona, weight in PERSONAS for _ in range(weight))
# Share of generated customers granting each consent category at sign-up.
CONSENT_SHARES = {"care": 0.95, "follow_up": 0.9, "survey": 0.85, "offer": 0.4}
BIRTHDAY_DAYS = 16_800  # birthdays from 1960-01-01 on

QUIET_START, QUIET_END = time(22).isoformat("microseconds"), time(8).isoformat("microseconds")


def tier_for_spend(yearly_cents: int) -> str:
    """Membership tier from the last twelve months' spend."""
    reached = [tier for tier, cents in TIER_SPEND_THRESHOLDS.items() if yearly_cents >= cents]
    return reached[-1]


def demo_phone(customer_id: int) -> str:
    """Unique per id: the 8-digit body is a bijection of id // 10 (48271 is coprime to 10**8)."""
    body = (customer_id // 10 * 48_271 + 1_234_567) % 10**8
    return f"{PHONE_PREFIXES[customer_id % 10]}{body:08d}"


class Generator(OrderRows, ChatRows):
    """The generated customers of one seeding run, one `customer()` call each."""

    def __init__(self, seed: int, now: datetime) -> None:
        super().__init__(seed, now)
        faker = Faker("zh_CN")
        faker.seed_instance(seed)
        self.names = [faker.name() for _ in range(4_000)]
        first = date(1960, 1, 1)
        self.birthdays = [(first + timedelta(days=d)).isoformat() for d in range(BIRTHDAY_DAYS + 1)]

    def customer(self, batch: Batch, customer_id: int) -> None:
        now = self.now
        persona = self.pick(PERSONA_DRAW)
        orders = self.orders(batch, customer_id, persona)  # newest first
        first_seen = orders[-1][0] if orders else now
        days_before = self.between(0, 90) if orders else self.between(1, 1_100)
        created_at = first_seen - timedelta(days=days_before, minutes=self.between(0, 1_439))
        year_ago = now - timedelta(days=365)
        tier = tier_for_spend(sum(total for placed, total in orders if placed >= year_ago))
        balance = self.points(batch, customer_id, orders, tier)
        last_chat = self.conversations(batch, customer_id, persona, created_at)
        last_active = max(
            created_at, orders[0][0] if orders else created_at, last_chat or created_at
        )
        created = stamp(created_at)
        batch.customers.append(
            self.profile(customer_id, tier, balance, created, stamp(last_active))
        )
        self.identities(batch, customer_id, created)
        self.consents(batch, customer_id, created)
        if self.random() < 0.04 and orders:
            self.ticket(batch, customer_id, created_at)

    def profile(
        self, customer_id: int, tier: str, balance: int, created: str, last_active: str
    ) -> Row:
        lunar = self.random() < 0.1
        email = f"user{customer_id}@{self.pick(DOMAINS)}" if self.random() < 0.3 else None
        return (
            customer_id,
            self.pick(self.names),
            demo_phone(customer_id),
            email,
            self.birthdays[self.between(0, BIRTHDAY_DAYS)],
            self.between(1, 12) if lunar else None,
            self.between(1, 29) if lunar else None,
            False,
            lunar,
            tier,
            balance,
            "wechat" if self.random() < 0.65 else "web",
            BUSINESS_TZ.key,
            QUIET_START,
            QUIET_END,
            created,
            last_active,
        )

    def identities(self, batch: Batch, customer_id: int, created: str) -> None:
        rows, bits = batch.channel_identities, self.rng.getrandbits
        if self.random() < 0.7:
            openid = f"o_{customer_id:08x}{bits(32):08x}"
            rows.append((customer_id, "wechat_openid", openid, created))
            if self.random() < 0.5:
                unionid = f"u_{customer_id:08x}{bits(32):08x}"
                rows.append((customer_id, "wechat_unionid", unionid, created))
        if self.random() < 0.5:
            rows.append((customer_id, "web_user", f"w_{customer_id:08x}", created))

    def consents(self, batch: Batch, customer_id: int, created: str) -> None:
        """All four categories: campaign queries join on the rows (docs/crm_store.md)."""
        for category in CATEGORIES:
            granted = self.random() < CONSENT_SHARES[category]
            batch.consents.append((customer_id, category, granted, "signup", created))

    def points(
        self, batch: Batch, customer_id: int, orders: list[tuple[datetime, int]], tier: str
    ) -> int:
        """Earnings per order, oldest first, and now and then a redemption; the balance."""
        balance, rows = 0, batch.points_ledger
        for placed, total in reversed(orders):
            earned = points_for_purchase(total, tier)
            if earned > 0:
                balance += earned
                expires = stamp(placed + timedelta(days=POINTS_VALID_DAYS))
                row = (customer_id, "earn", earned, balance, "order", None, stamp(placed), expires)
                rows.append(row)
        if balance >= 200 and self.random() < 0.25:
            spent = self.between(1, balance // 100) * 100
            balance -= spent
            at = stamp(self.now - timedelta(days=self.between(1, 60)))
            rows.append((customer_id, "redeem", -spent, balance, "coupon", None, at, None))
        return balance

    def ticket(self, batch: Batch, customer_id: int, created_at: datetime) -> None:
        kind = self.pick(("complaint", "return", "refund"))
        priority = self.pick(("low", "normal", "normal", "high", "urgent"))
        opened = max(created_at, self.now - timedelta(days=self.between(0, 300)))
        resolved = opened < self.now - timedelta(days=7)
        batch.tickets.append(
            (customer_id, None, None, kind, "closed" if resolved else "open", priority, None)
            + ("售后问题", "演示数据", stamp(opened), stamp(opened))
            + (stamp(sla_due(opened, kind=kind, priority=priority)),)
            + (stamp(opened + timedelta(hours=20)) if resolved else None,)
        )
