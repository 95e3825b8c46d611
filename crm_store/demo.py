"""Deterministic demo data: a few fixed customers (see README.md) and N generated ones.

Rows are built per customer in Python from one seeded RNG, as tuples already in storage format,
and bulk-loaded chunk by chunk (COPY on PostgreSQL), so a million customers take minutes.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import random
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta
from typing import Any

from faker import Faker
from sqlalchemy import JSON, Column, Date, DateTime, Time, func, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from crm_store.analytics import refresh_customer_metrics
from crm_store.campaigns.planning import ensure_campaigns
from crm_store.clock import BUSINESS_TZ, Clock, as_utc, utcnow
from crm_store.customers import TIER_SPEND_THRESHOLDS
from crm_store.errors import Conflict
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
    Product,
    ShippingEvent,
    StaffUser,
    SurveyResponse,
    UtcDateTime,
)
from crm_store.offers import create_offer
from crm_store.orders import add_months
from crm_store.points import POINTS_VALID_DAYS, points_for_purchase
from crm_store.staff import hash_password
from crm_store.tickets import sla_due

Progress = Callable[[int, int], None]
Row = tuple[Any, ...]
# (table name, column names, rows) per table, tables in foreign-key order.
Chunk = list[tuple[str, list[str], list[Row]]]
CHUNK = 5_000
PIPELINE_MIN = 50_000  # customers; below this a worker process costs more than it saves

# sku: (name, category, price in cents, warranty months)
CATALOGUE: dict[str, tuple[str, str, int, int]] = {
    "AF-200": ("空气炸锅", "厨房电器", 39_900, 12),
    "RC-300": ("电饭煲", "厨房电器", 49_900, 24),
    "BL-500": ("破壁机", "厨房电器", 89_900, 24),
    "RV-700": ("扫地机器人", "清洁电器", 249_900, 12),
    "WP-600": ("净水器", "环境电器", 199_900, 36),
    "TB-100": ("电动牙刷", "个护电器", 19_900, 12),
    "HD-150": ("吹风机", "个护电器", 29_900, 12),
    "HM-120": ("加湿器", "环境电器", 25_900, 12),
    "KT-090": ("电热水壶", "厨房电器", 12_900, 12),
    "AP-800": ("空气净化器", "环境电器", 169_900, 24),
    "DW-900": ("洗碗机", "厨房电器", 399_900, 24),
    "CM-400": ("咖啡机", "厨房电器", 129_900, 12),
}
CHEAP = ["TB-100", "KT-090", "HD-150", "HM-120", "AF-200", "RC-300"]
EXPENSIVE = ["RV-700", "DW-900", "WP-600", "CM-400", "AP-800", "BL-500"]
PHONE_PREFIXES = ["139", "136", "150", "151", "186", "187", "188", "177", "199", "135"]
DOMAINS = ("qq.com", "163.com", "126.com", "sina.com", "foxmail.com")
INTENTS = (
    "order_status",
    "warranty_query",
    "points_balance",
    "return_request",
    "complaint",
    "product_usage",
    "greet",
    "goodbye",
)
THEMES = ["物流", "售后", "产品质量", "客服态度", "价格", "使用方法"]
PERSONAS = [
    ("frequent_cheap", 35),
    ("regular", 30),
    ("rare_expensive", 15),
    ("drifting", 12),
    ("prospect", 8),
]
# One entry per percent, so a persona is one uniform pick.
PERSONA_DRAW = tuple(persona for persona, weight in PERSONAS for _ in range(weight))
# persona: ((fewest, most) orders, days since the last order, days between orders, products)
ORDER_PLANS: dict[str, tuple[tuple[int, int], tuple[int, int], tuple[int, int], list[str]]] = {
    "frequent_cheap": ((4, 14), (0, 60), (20, 80), CHEAP),
    "regular": ((2, 6), (0, 150), (45, 160), CHEAP + EXPENSIVE),
    "rare_expensive": ((1, 2), (30, 400), (200, 400), EXPENSIVE),
    "drifting": ((3, 8), (240, 700), (25, 90), CHEAP + EXPENSIVE[:2]),
    "prospect": ((0, 0), (0, 0), (0, 0), CHEAP),
}
# Share of generated customers granting each consent category at sign-up.
CONSENT_SHARES = {"care": 0.95, "follow_up": 0.9, "survey": 0.85, "offer": 0.4}
BIRTHDAY_DAYS = 16_800  # birthdays from 1960-01-01 on
STAFF = [
    ("agent", "客服小张", "agent"),
    ("agent2", "客服小李", "agent"),
    ("supervisor", "主管王姐", "supervisor"),
    ("manager", "经理陈总", "manager"),
]
DEMO_STAFF_PASSWORD = "carebot-demo"

# The columns each table's rows fill, in tuple order; the others keep their defaults. The
# tables are in foreign-key order, which is also the order Batch declares them in.
COLUMNS: dict[str, tuple[str, ...]] = {
    "products": ("sku", "name", "category", "price_cents", "warranty_months"),
    "staff_users": ("username", "display_name", "role", "active", "password_hash", "created_at"),
    "customers": (
        "id",
        "name",
        "phone",
        "email",
        "birthday",
        "lunar_birth_month",
        "lunar_birth_day",
        "lunar_birth_leap",
        "celebrates_lunar_birthday",
        "tier",
        "points_balance",
        "preferred_channel",
        "timezone",
        "quiet_start",
        "quiet_end",
        "created_at",
        "last_active_at",
    ),
    "consents": ("customer_id", "category", "granted", "source", "updated_at"),
    "channel_identities": ("customer_id", "kind", "value", "created_at"),
    "orders": ("id", "customer_id", "status", "total_cents", "placed_at", "carrier"),
    "order_items": ("order_id", "sku", "quantity", "unit_price_cents", "warranty_ends_on"),
    "shipping_events": ("order_id", "status", "location", "occurred_at"),
    "points_ledger": (
        "customer_id",
        "kind",
        "delta",
        "balance_after",
        "reason",
        "order_id",
        "created_at",
        "expires_at",
    ),
    "conversations": (
        "id",
        "customer_id",
        "channel",
        "started_at",
        "last_message_at",
        "ended_at",
    ),
    "interactions": (
        "conversation_id",
        "customer_id",
        "channel",
        "speaker",
        "text",
        "intent",
        "confidence",
        "handled_by",
        "agent_id",
        "occurred_at",
    ),
    "survey_responses": (
        "conversation_id",
        "trigger",
        "channel",
        "status",
        "customer_id",
        "agent_id",
        "csat",
        "nps",
        "comment",
        "themes",
        "asked_at",
        "answered_at",
    ),
    "tickets": (
        "customer_id",
        "order_id",
        "conversation_id",
        "kind",
        "status",
        "priority",
        "owner_id",
        "subject",
        "description",
        "created_at",
        "updated_at",
        "sla_due_at",
        "resolved_at",
    ),
}


def tier_for_spend(yearly_cents: int) -> str:
    """Membership tier from the last twelve months' spend."""
    reached = [tier for tier, cents in TIER_SPEND_THRESHOLDS.items() if yearly_cents >= cents]
    return reached[-1]


@dataclass
class Batch:
    """Rows for one chunk, per table (fields named after the tables, in foreign-key order)."""

    products: list[Row] = field(default_factory=list)
    staff_users: list[Row] = field(default_factory=list)
    customers: list[Row] = field(default_factory=list)
    consents: list[Row] = field(default_factory=list)
    channel_identities: list[Row] = field(default_factory=list)
    orders: list[Row] = field(default_factory=list)
    order_items: list[Row] = field(default_factory=list)
    shipping_events: list[Row] = field(default_factory=list)
    points_ledger: list[Row] = field(default_factory=list)
    conversations: list[Row] = field(default_factory=list)
    interactions: list[Row] = field(default_factory=list)
    survey_responses: list[Row] = field(default_factory=list)
    tickets: list[Row] = field(default_factory=list)

    def add(self, model: Any, **row: Any) -> None:
        """One row by column name, converted to storage format (for the few hand-made rows)."""
        table = model.__table__
        values = (_stored(table.c[name], row[name]) for name in COLUMNS[table.name])
        getattr(self, table.name).append(tuple(values))

    def freeze(self) -> Chunk:
        """(table, columns, rows) for the tables with rows: plain tuples, cheap to pickle."""
        tables = (item.name for item in fields(self))
        return [
            (name, list(COLUMNS[name]), rows) for name in tables if (rows := getattr(self, name))
        ]


def stamp(value: datetime) -> str:
    """A naive UTC datetime in SQLAlchemy's own storage format (SQLite compares it as text)."""
    return value.isoformat(" ", "microseconds")


def _stored(column: Column, value: Any) -> Any:
    if value is None:
        return None
    kind = column.type
    if isinstance(kind, UtcDateTime | DateTime):
        return stamp(as_utc(value).replace(tzinfo=None) if value.tzinfo else value)
    if isinstance(kind, Time):
        return value.isoformat("microseconds")
    if isinstance(kind, Date):
        return value.isoformat()
    if isinstance(kind, JSON):
        return json.dumps(value)
    return value


QUIET_START, QUIET_END = time(22).isoformat("microseconds"), time(8).isoformat("microseconds")


def write_chunk(connection: Connection, chunk: Chunk) -> None:
    """COPY on PostgreSQL, a plain executemany on SQLite: the generic insert() spends most of
    its time processing each bound value, which the chunk has already done."""
    for table, columns, values in chunk:
        if connection.dialect.name == "postgresql":
            _copy(connection, table, columns, values)
        else:
            names, marks = ", ".join(columns), ", ".join("?" * len(columns))
            connection.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", values)


def _copy(connection: Connection, table: str, columns: list[str], values: list[Row]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(values)  # None becomes an unquoted empty field: NULL
    buffer.seek(0)
    cursor = connection.connection.cursor()
    try:
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
        cursor.copy_expert(sql, buffer)
    finally:
        cursor.close()


class Generator:
    """All the randomness of one seeding run; same seed, same rows.

    Hot paths draw with `random()` and index sequences themselves: `randint`, `choice`,
    `choices` and `sample` check their arguments on every call, which dominated generation.
    """

    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.random = self.rng.random
        self.now = now
        faker = Faker("zh_CN")
        faker.seed_instance(seed)
        self.names = [faker.name() for _ in range(4_000)]
        first = date(1960, 1, 1)
        self.birthdays = [(first + timedelta(days=d)).isoformat() for d in range(BIRTHDAY_DAYS + 1)]
        self.day_counters: dict[date, int] = {}
        self.day_prefixes: dict[date, str] = {}
        self.warranty_ends: dict[tuple[date, int], str] = {}
        self.reserved = {"DD202611020387"}

    def order_id(self, placed_at: datetime) -> str:
        """DD + order date + a per-day counter (spilling to the next day after 9,999)."""
        day = placed_at.date()
        while True:
            count = self.day_counters.get(day, 0) + 1
            self.day_counters[day] = count
            if count >= 10_000:
                day += timedelta(days=1)
                continue
            candidate = f"{self._day_prefix(day)}{count:04d}"
            if candidate not in self.reserved:
                return candidate

    def _day_prefix(self, day: date) -> str:
        prefix = self.day_prefixes.get(day)
        if prefix is None:
            prefix = self.day_prefixes[day] = f"DD{day:%Y%m%d}"
        return prefix

    def between(self, low: int, high: int) -> int:
        """random.randint without its argument checks."""
        return low + int(self.random() * (high - low + 1))

    def pick(self, items: Sequence[Any]) -> Any:
        """random.choice without its argument checks."""
        return items[int(self.random() * len(items))]

    def ago(self, days: int) -> datetime:
        """`days` days and a random minute of the day before now."""
        return self.now - timedelta(days=days, minutes=self.between(0, 1_439))

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

    def orders(self, batch: Batch, customer_id: int, persona: str) -> list[tuple[datetime, int]]:
        """Newest first, walking back from the last order by the persona's gaps."""
        (fewest, most), last_gap, gap, skus = ORDER_PLANS[persona]
        count = self.between(fewest, most)
        if not count:
            return []
        placed = self.ago(self.between(*last_gap))
        result = []
        for _ in range(count):
            result.append((placed, self.order(batch, customer_id, placed, skus)))
            placed -= timedelta(days=self.between(*gap), minutes=self.between(0, 1_439))
        return result

    def order(self, batch: Batch, customer_id: int, placed: datetime, skus: list[str]) -> int:
        """Writes one order with its items (and shipping events); the total that counts."""
        order_id, day = self.order_id(placed), placed.date()
        total = 0
        for sku in self.basket(skus):
            _, _, price, warranty = CATALOGUE[sku]
            quantity = 1 if self.random() < 0.9 else 2
            total += price * quantity
            ends = self.warranty_end(day, warranty)
            batch.order_items.append((order_id, sku, quantity, price, ends))
        status = self.order_status(placed)
        carrier = carrier_of(order_id, status)
        batch.orders.append((order_id, customer_id, status, total, stamp(placed), carrier))
        if status == "shipped":
            self.shipping(batch, order_id, placed)
        return 0 if status in ("cancelled", "refunded") else total

    def basket(self, skus: list[str]) -> tuple[str, ...]:
        """One product, or two different ones for 15% of orders."""
        if self.random() >= 0.15:
            return (self.pick(skus),)
        first, second = self.between(0, len(skus) - 1), self.between(0, len(skus) - 2)
        return (skus[first], skus[second + (second >= first)])

    def warranty_end(self, day: date, months: int) -> str:
        key = (day, months)
        ends = self.warranty_ends.get(key)
        if ends is None:
            ends = self.warranty_ends[key] = add_months(day, months).isoformat()
        return ends

    def shipping(self, batch: Batch, order_id: str, placed: datetime) -> None:
        for hours, event in ((2, "created"), (20, "picked_up"), (40, "in_transit")):
            at = placed + timedelta(hours=hours)
            if at < self.now:
                batch.shipping_events.append((order_id, event, "佛山", stamp(at)))

    def order_status(self, placed: datetime) -> str:
        age = (self.now - placed).days
        if self.random() < 0.03:
            return str(self.pick(("cancelled", "refunded")))
        if age < 2:
            return "paid"
        if age < 5:
            return "shipped"
        return "delivered" if age < 15 else "completed"

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

    def conversations(
        self, batch: Batch, customer_id: int, persona: str, created_at: datetime
    ) -> datetime | None:
        """Chats for 30% of customers, none before sign-up; the end of the last one."""
        last = None
        if self.random() >= 0.3:
            return None
        for number in range(self.between(1, 3)):
            started = self.ago(self.between(0, 540))
            if started < created_at:
                continue
            conversation_id = f"demo-{customer_id}-{number}"
            channel = self.pick(("web", "wechat"))
            ended = self.turns(batch, customer_id, conversation_id, channel, started)
            row = (
                conversation_id,
                customer_id,
                channel,
                stamp(started),
                stamp(ended),
                stamp(ended),
            )
            batch.conversations.append(row)
            self.survey(batch, customer_id, conversation_id, channel, persona, ended)
            last = max(last or ended, ended)
        return last

    def turns(
        self, batch: Batch, customer_id: int, conversation_id: str, channel: str, started: datetime
    ) -> datetime:
        at, rows = started, batch.interactions
        for _ in range(self.between(1, 3)):
            intent, confidence = self.pick(INTENTS), round(0.45 + self.random() * 0.54, 2)
            rows.append(
                (conversation_id, customer_id, channel, "customer", None, intent, confidence)
                + ("bot", None, stamp(at))
            )
            at += timedelta(seconds=self.between(1, 5))
            rows.append(
                (conversation_id, customer_id, channel, "bot", None, None, None)
                + ("bot", None, stamp(at))
            )
            at += timedelta(seconds=self.between(10, 120))
        return at

    def survey(
        self,
        batch: Batch,
        customer_id: int,
        conversation_id: str,
        channel: str,
        persona: str,
        asked_at: datetime,
    ) -> None:
        if self.random() >= 0.6:
            return
        answered = self.random() < 0.75
        unhappy = persona == "drifting" and self.random() < 0.5
        csat = self.pick((1, 2, 2, 3)) if unhappy else self.pick((3, 4, 4, 5, 5, 5))
        nps = self.between(0, 6) if unhappy else self.pick((6, 7, 8, 9, 9, 10, 10))
        themes = self.rng.sample(THEMES, self.between(0, 2)) if answered else []
        batch.survey_responses.append(
            (conversation_id, "end_of_chat", channel, "answered" if answered else "declined")
            + (customer_id, None, csat if answered else None, nps if answered else None, None)
            + (json.dumps(themes), stamp(asked_at), stamp(asked_at + timedelta(minutes=1)))
        )

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


def demo_phone(customer_id: int) -> str:
    """Unique per id: the 8-digit body is a bijection of id // 10 (48271 is coprime to 10**8)."""
    body = (customer_id // 10 * 48_271 + 1_234_567) % 10**8
    return f"{PHONE_PREFIXES[customer_id % 10]}{body:08d}"


FIXED_CUSTOMERS = 3
CARRIERS = ("顺丰速运", "京东物流", "中通快递")
UNSHIPPED_STATUSES = ("pending", "paid", "cancelled")


def carrier_of(order_id: str, status: str) -> str | None:
    """A carrier for every order that left the warehouse, fixed by the order id (not the random
    stream, so adding it left the rest of the generated data unchanged)."""
    if status in UNSHIPPED_STATUSES:
        return None
    return CARRIERS[zlib.crc32(order_id.encode()) % len(CARRIERS)]


FIXED_SHIPPING = (
    (2, "created", "佛山"),
    (20, "picked_up", "佛山"),
    (40, "in_transit", "广州转运中心"),
)


def add_fixed_customers(batch: Batch, gen: Generator) -> None:
    """The documented demo customers (ids 1-3) that dialogue tests and demos rely on."""
    _demo_gold_member(batch, gen)
    _demo_drifting_lunar(batch, gen)
    _demo_newcomer(batch, gen.now)
    _rest_users(batch, gen.now)


def _demo_gold_member(batch: Batch, gen: Generator) -> None:
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


def _demo_drifting_lunar(batch: Batch, gen: Generator) -> None:
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


def _reference_rows(batch: Batch, now: datetime) -> None:
    for sku, (name, category, price, warranty) in CATALOGUE.items():
        batch.add(
            Product,
            sku=sku,
            name=name,
            category=category,
            price_cents=price,
            warranty_months=warranty,
        )
    for username, display_name, role in STAFF:
        batch.add(
            StaffUser,
            username=username,
            display_name=display_name,
            role=role,
            active=True,
            password_hash=hash_password(DEMO_STAFF_PASSWORD),
            created_at=now,
        )


def customer_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(Customer.__table__)))


def seed(
    engine: Engine,
    *,
    customers: int,
    seed: int = 42,
    progress: Progress | None = None,
    clock: Clock = utcnow,
) -> int:
    """Fill an empty CRM database with `customers` customers (the 3 fixed ones included);
    the number written. Conflict if the database already has customers."""
    if customer_count(engine) > 0:
        raise Conflict("the CRM database already has customers; demo data goes into an empty one")
    return _seed_empty(engine, customers, seed, progress, clock)


def _seed_empty(
    engine: Engine, customers: int, rng_seed: int, progress: Progress | None, clock: Clock
) -> int:
    total = max(customers, FIXED_CUSTOMERS)
    now = as_utc(clock()).replace(tzinfo=None)  # naive UTC: cheaper to generate and store
    produce = _in_a_worker if total - FIXED_CUSTOMERS >= PIPELINE_MIN else generate_chunks
    chunks = _reporting(produce(rng_seed, now, total), progress, total)
    if engine.dialect.name == "postgresql":
        _load_postgresql(engine, chunks)
    else:
        _load_sqlite(engine, chunks)
    _refresh_statistics(engine)
    _ensure_campaigns(engine, clock)
    _add_public_offers(engine, clock)
    _report(progress, total, total)
    return total


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


def _ensure_campaigns(engine: Engine, clock: Clock) -> None:
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


def _add_public_offers(engine: Engine, clock: Clock) -> None:
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


def _reporting(
    chunks: Iterator[tuple[int, Chunk]], progress: Progress | None, total: int
) -> Iterator[Chunk]:
    """The chunks, reporting each one written; the end is reported once the seed is complete
    (the keys and statistics after the last chunk take a while on a large database)."""
    for done, chunk in chunks:
        yield chunk
        if done < total:
            _report(progress, done, total)


def _load_sqlite(engine: Engine, chunks: Iterator[Chunk]) -> None:
    """A transaction per chunk keeps SQLite's write-ahead log small."""
    for chunk in chunks:
        with engine.begin() as connection:
            write_chunk(connection, chunk)


def _load_postgresql(engine: Engine, chunks: Iterator[Chunk]) -> None:
    """One transaction, with the keys and indexes of the generated tables built once at the end
    from all their rows instead of row by row (that was two thirds of the writing time). A
    failure rolls everything back, so no one ever sees the tables without their keys."""
    with engine.begin() as connection:
        with _keys_rebuilt(connection):
            for chunk in chunks:
                write_chunk(connection, chunk)
        _advance_sequences(connection)


# The tables that grow with the number of customers.
BULK_TABLES = [name for name in COLUMNS if name not in ("products", "staff_users")]
BUILD_MEMORY = "512MB"  # per sort while building an index or checking a foreign key
# (drop, create) statements, in dropping order: foreign keys into or out of the bulk tables,
# their plain indexes, then their primary keys and unique constraints. The definitions come from
# the catalog (no SQLAlchemy construct reads them), so they come back exactly as they were.
KEYS_DDL = text(
    """
    SELECT drop_ddl, create_ddl FROM (
        SELECT 1 AS step, conname::text AS name,
            format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname) AS drop_ddl,
            format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname,
                   pg_get_constraintdef(oid)) AS create_ddl
        FROM pg_constraint
        WHERE contype = 'f' AND (conrelid = ANY(CAST(:tables AS regclass[]))
                                 OR confrelid = ANY(CAST(:tables AS regclass[])))
        UNION ALL
        SELECT 2, indexrelid::regclass::text, format('DROP INDEX %s', indexrelid::regclass),
            pg_get_indexdef(indexrelid)
        FROM pg_index
        WHERE indrelid = ANY(CAST(:tables AS regclass[])) AND NOT EXISTS (
            SELECT 1 FROM pg_constraint
            WHERE conindid = indexrelid AND contype IN ('p', 'u', 'x'))
        UNION ALL
        SELECT 3, conname::text,
            format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname),
            format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname,
                   pg_get_constraintdef(oid))
        FROM pg_constraint
        WHERE contype IN ('p', 'u') AND conrelid = ANY(CAST(:tables AS regclass[]))
    ) AS ddl
    ORDER BY step, name
    """
)


@contextmanager
def _keys_rebuilt(connection: Connection) -> Iterator[None]:
    """Drops the bulk tables' keys, indexes and foreign keys; re-creates them on leaving."""
    statements = connection.execute(KEYS_DDL, {"tables": BULK_TABLES}).all()
    for drop, _ in statements:
        connection.exec_driver_sql(drop)
    yield
    for setting in ("maintenance_work_mem", "work_mem"):
        connection.execute(select(func.set_config(setting, BUILD_MEMORY, True)))
    for _, create in reversed(statements):
        connection.exec_driver_sql(create)


def generate_chunks(rng_seed: int, now: datetime, total: int) -> Iterator[tuple[int, Chunk]]:
    """(customers done, rows) chunk by chunk; the same arguments give the same rows."""
    gen = Generator(rng_seed, now)
    first = Batch()
    _reference_rows(first, now)
    add_fixed_customers(first, gen)
    yield FIXED_CUSTOMERS, first.freeze()
    for start in range(FIXED_CUSTOMERS + 1, total + 1, CHUNK):
        stop = min(start + CHUNK, total + 1)
        batch = Batch()
        for customer_id in range(start, stop):
            gen.customer(batch, customer_id)
        yield stop - 1, batch.freeze()


def _in_a_worker(rng_seed: int, now: datetime, total: int) -> Iterator[tuple[int, Chunk]]:
    """generate_chunks() in another process, so generating and writing use both cores."""
    context = multiprocessing.get_context("spawn")  # no fork of open connections or threads
    queue: Any = context.Queue(maxsize=4)
    worker = context.Process(target=_produce, args=(rng_seed, now, total, queue), daemon=True)
    worker.start()
    try:
        while (item := queue.get(timeout=600)) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        worker.join(timeout=5)
        if worker.is_alive():
            worker.terminate()


def _produce(rng_seed: int, now: datetime, total: int, queue: Any) -> None:
    try:
        for item in generate_chunks(rng_seed, now, total):
            queue.put(item)
        queue.put(None)
    except BaseException as error:  # handed to the parent, which raises it
        queue.put(error)


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def _advance_sequences(connection: Connection) -> None:
    """PostgreSQL sequences do not see explicit ids; move the customers' one past them."""
    top = connection.scalar(select(func.max(Customer.__table__.c.id)))
    sequence = func.pg_get_serial_sequence("customers", "id")
    connection.execute(select(func.setval(sequence, top)))


def _refresh_statistics(engine: Engine) -> None:
    """Bulk-loaded tables have no planner statistics yet; without them PostgreSQL plans the
    analytics for 200-row tables. ANALYZE has no SQLAlchemy construct."""
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA analysis_limit = 1000")  # sample, do not scan
        connection.exec_driver_sql("ANALYZE")


def ensure_demo_data(
    engine: Engine, *, customers: int = 2_000, seed: int = 42, clock: Clock = utcnow
) -> int:
    """Seed only an empty database (for `make run` on every start); the number written."""
    if customer_count(engine) > 0:
        return 0
    written = _seed_empty(engine, customers, seed, None, clock)
    with Session(engine, future=True) as session, session.begin():
        refresh_customer_metrics(session, clock=clock)  # the win-back and follow-up campaigns
    return written
