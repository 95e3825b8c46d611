"""Deterministic demo data: a few fixed customers (see README.md) and N generated ones.

Rows are built per customer in Python from one seeded RNG and written with bulk INSERTs, one
transaction per chunk, so a million customers stay within minutes.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import random
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from faker import Faker
from sqlalchemy import JSON, Column, Date, DateTime, Table, Time, func, select
from sqlalchemy.engine import Connection, Engine

from crm_store.clock import Clock, as_utc, utcnow
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
    Ticket,
    UtcDateTime,
)
from crm_store.orders import add_months
from crm_store.points import POINTS_VALID_DAYS, points_for_purchase
from crm_store.staff import hash_password
from crm_store.tickets import sla_due

Progress = Callable[[int, int], None]
CHUNK = 2_000
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
INTENTS = [
    "order_status",
    "warranty_query",
    "points_balance",
    "return_request",
    "complaint",
    "product_usage",
    "greet",
    "goodbye",
]
THEMES = ["物流", "售后", "产品质量", "客服态度", "价格", "使用方法"]
PERSONAS = [
    ("frequent_cheap", 35),
    ("regular", 30),
    ("rare_expensive", 15),
    ("drifting", 12),
    ("prospect", 8),
]
# persona: ((fewest, most) orders, days since the last order, days between orders, products)
ORDER_PLANS: dict[str, tuple[tuple[int, int], tuple[int, int], tuple[int, int], list[str]]] = {
    "frequent_cheap": ((4, 14), (0, 60), (20, 80), CHEAP),
    "regular": ((2, 6), (0, 150), (45, 160), CHEAP + EXPENSIVE),
    "rare_expensive": ((1, 2), (30, 400), (200, 400), EXPENSIVE),
    "drifting": ((3, 8), (240, 700), (25, 90), CHEAP + EXPENSIVE[:2]),
    "prospect": ((0, 0), (0, 0), (0, 0), CHEAP),
}
STAFF = [
    ("agent", "客服小张", "agent"),
    ("agent2", "客服小李", "agent"),
    ("supervisor", "主管王姐", "supervisor"),
    ("manager", "经理陈总", "manager"),
]
DEMO_STAFF_PASSWORD = "carebot-demo"


def tier_for_spend(yearly_cents: int) -> str:
    """Membership tier from the last twelve months' spend."""
    for threshold, tier in ((2_000_000, "钻石"), (800_000, "金卡"), (200_000, "银卡")):
        if yearly_cents >= threshold:
            return tier
    return "普通"


@dataclass
class Batch:
    """Rows for one chunk, per table, in insertion order."""

    rows: dict[Any, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, model: Any, **row: Any) -> None:
        self.rows.setdefault(model.__table__, []).append(row)

    def freeze(self) -> Chunk:
        """Rows as tuples in storage format, tables in foreign-key order: cheap to pickle."""
        return [
            _as_tuples(table, self.rows[table]) for table in ORDERED_TABLES if self.rows.get(table)
        ]


# (table name, column names, rows) per table, in insertion order.
Chunk = list[tuple[str, list[str], list[tuple[Any, ...]]]]


def _as_tuples(
    table: Table, rows: list[dict[str, Any]]
) -> tuple[str, list[str], list[tuple[Any, ...]]]:
    """Convert values once, to the storage formats SQLAlchemy itself uses (naive UTC text)."""
    columns = list(rows[0])
    converters = [(i, _converter(table.c[name])) for i, name in enumerate(columns)]
    convert = [(i, function) for i, function in converters if function is not None]
    values = []
    for row in rows:
        line = [row[column] for column in columns]
        for i, function in convert:
            if line[i] is not None:
                line[i] = function(line[i])
        values.append(tuple(line))
    return table.name, columns, values


def write_chunk(connection: Connection, chunk: Chunk) -> None:
    """COPY on PostgreSQL, a plain executemany on SQLite: the generic insert() spends most of
    its time processing each bound value, which the chunk has already done."""
    for table, columns, values in chunk:
        if connection.dialect.name == "postgresql":
            _copy(connection, table, columns, values)
        else:
            names, marks = ", ".join(columns), ", ".join("?" * len(columns))
            connection.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", values)


def _converter(column: Column) -> Callable[[Any], Any] | None:
    kind = column.type
    if isinstance(kind, UtcDateTime | DateTime):
        return _datetime_text
    if isinstance(kind, Time):
        return _time_text
    if isinstance(kind, Date):
        return date.isoformat
    if isinstance(kind, JSON):
        return json.dumps
    return None


def _datetime_text(value: datetime) -> str:
    if value.tzinfo is not None:
        value = as_utc(value).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def _time_text(value: time) -> str:
    return value.isoformat("microseconds")


def _copy(
    connection: Connection, table: str, columns: list[str], values: list[tuple[Any, ...]]
) -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(values)  # None becomes an unquoted empty field: NULL
    buffer.seek(0)
    cursor = connection.connection.cursor()
    try:
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
        cursor.copy_expert(sql, buffer)
    finally:
        cursor.close()


ORDERED_TABLES = [
    m.__table__
    for m in (
        Product,
        StaffUser,
        Customer,
        Consent,
        ChannelIdentity,
        Order,
        OrderItem,
        ShippingEvent,
        PointsEntry,
        Conversation,
        Interaction,
        SurveyResponse,
        Ticket,
    )
]


class Generator:
    """All the randomness of one seeding run; same seed, same rows."""

    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now
        faker = Faker("zh_CN")
        faker.seed_instance(seed)
        self.names = [faker.name() for _ in range(4_000)]
        self.domains = ["qq.com", "163.com", "126.com", "sina.com", "foxmail.com"]
        self.day_counters: dict[date, int] = {}
        self.day_prefixes: dict[date, str] = {}
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
        """random.randint without its argument checks, which dominated generation time."""
        return low + int(self.rng.random() * (high - low + 1))

    def customer(self, batch: Batch, customer_id: int) -> None:
        rng, now = self.rng, self.now
        persona = rng.choices([p for p, _ in PERSONAS], [w for _, w in PERSONAS])[0]
        orders = self.orders(batch, customer_id, persona)
        first_seen = min((placed for placed, _ in orders), default=now)
        created_at = first_seen - timedelta(
            days=self.between(0, 90) if orders else self.between(1, 1_100),
            minutes=self.between(0, 1_439),
        )
        spend = sum(total for placed, total in orders if placed >= now - timedelta(days=365))
        tier = tier_for_spend(spend)
        balance = self.points(batch, customer_id, orders, tier)
        last_chat = self.conversations(batch, customer_id, persona, created_at)
        activity = [created_at, last_chat] + [placed for placed, _ in orders]
        batch.add(
            Customer,
            **self.profile(
                customer_id, tier, balance, created_at, max(a for a in activity if a is not None)
            ),
        )
        self.identities_and_consents(batch, customer_id, created_at)
        if rng.random() < 0.04 and orders:
            self.ticket(batch, customer_id, created_at)

    def profile(
        self, customer_id: int, tier: str, balance: int, created_at: datetime, last_active: datetime
    ) -> dict[str, Any]:
        rng = self.rng
        lunar = rng.random() < 0.1
        return {
            "id": customer_id,
            "name": rng.choice(self.names),
            "phone": demo_phone(customer_id),
            "email": f"user{customer_id}@{rng.choice(self.domains)}"
            if rng.random() < 0.3
            else None,
            "birthday": date(1960, 1, 1) + timedelta(days=self.between(0, 16_800)),
            "lunar_birth_month": self.between(1, 12) if lunar else None,
            "lunar_birth_day": self.between(1, 29) if lunar else None,
            "lunar_birth_leap": False,
            "celebrates_lunar_birthday": lunar,
            "tier": tier,
            "points_balance": balance,
            "preferred_channel": "wechat" if rng.random() < 0.65 else "web",
            "timezone": "Asia/Shanghai",
            "quiet_start": time(22),
            "quiet_end": time(8),
            "created_at": created_at,
            "last_active_at": last_active,
        }

    def identities_and_consents(self, batch: Batch, customer_id: int, created_at: datetime) -> None:
        rng = self.rng
        if rng.random() < 0.7:
            batch.add(
                ChannelIdentity,
                customer_id=customer_id,
                kind="wechat_openid",
                value=f"o_{customer_id:08x}{rng.getrandbits(32):08x}",
                created_at=created_at,
            )
            if rng.random() < 0.5:
                batch.add(
                    ChannelIdentity,
                    customer_id=customer_id,
                    kind="wechat_unionid",
                    value=f"u_{customer_id:08x}{rng.getrandbits(32):08x}",
                    created_at=created_at,
                )
        if rng.random() < 0.5:
            batch.add(
                ChannelIdentity,
                customer_id=customer_id,
                kind="web_user",
                value=f"w_{customer_id:08x}",
                created_at=created_at,
            )
        granted = {
            "care": rng.random() < 0.95,
            "follow_up": rng.random() < 0.9,
            "survey": rng.random() < 0.85,
            "offer": rng.random() < 0.4,
        }
        for category in CATEGORIES:
            batch.add(
                Consent,
                customer_id=customer_id,
                category=category,
                granted=granted[category],
                source="signup",
                updated_at=created_at,
            )

    def orders(self, batch: Batch, customer_id: int, persona: str) -> list[tuple[datetime, int]]:
        """Newest first, walking back from the last order by the persona's gaps."""
        (fewest, most), last_gap, gap, skus = ORDER_PLANS[persona]
        count, now = self.between(fewest, most), self.now
        placed = now - timedelta(days=self.between(*last_gap), minutes=self.between(0, 1_439))
        result = []
        for _ in range(count):
            result.append((placed, self.order(batch, customer_id, placed, skus)))
            placed -= timedelta(days=self.between(*gap), minutes=self.between(0, 1_439))
        return result

    def order(self, batch: Batch, customer_id: int, placed: datetime, skus: list[str]) -> int:
        rng = self.rng
        order_id = self.order_id(placed)
        total = 0
        for sku in rng.sample(skus, 2 if rng.random() < 0.15 else 1):
            _, _, price, warranty = CATALOGUE[sku]
            quantity = 1 if rng.random() < 0.9 else 2
            total += price * quantity
            batch.add(
                OrderItem,
                order_id=order_id,
                sku=sku,
                quantity=quantity,
                unit_price_cents=price,
                warranty_ends_on=add_months(placed.date(), warranty),
            )
        status = self.order_status(placed)
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
            for hours, event in ((2, "created"), (20, "picked_up"), (40, "in_transit")):
                if placed + timedelta(hours=hours) < self.now:
                    batch.add(
                        ShippingEvent,
                        order_id=order_id,
                        status=event,
                        location="佛山",
                        occurred_at=placed + timedelta(hours=hours),
                    )
        return 0 if status in ("cancelled", "refunded") else total

    def order_status(self, placed: datetime) -> str:
        age = (self.now - placed).days
        if self.rng.random() < 0.03:
            return self.rng.choice(["cancelled", "refunded"])
        if age < 2:
            return "paid"
        if age < 5:
            return "shipped"
        return "delivered" if age < 15 else "completed"

    def points(
        self, batch: Batch, customer_id: int, orders: list[tuple[datetime, int]], tier: str
    ) -> int:
        balance = 0
        for placed, total in sorted(orders):
            earned = points_for_purchase(total, tier)
            if earned > 0:
                balance += earned
                batch.add(
                    PointsEntry,
                    customer_id=customer_id,
                    kind="earn",
                    delta=earned,
                    balance_after=balance,
                    reason="order",
                    order_id=None,
                    created_at=placed,
                    expires_at=placed + timedelta(days=POINTS_VALID_DAYS),
                )
        if balance >= 200 and self.rng.random() < 0.25:
            spent = self.between(1, balance // 100) * 100
            balance -= spent
            batch.add(
                PointsEntry,
                customer_id=customer_id,
                kind="redeem",
                delta=-spent,
                balance_after=balance,
                reason="coupon",
                order_id=None,
                created_at=self.now - timedelta(days=self.between(1, 60)),
                expires_at=None,
            )
        return balance

    def conversations(
        self, batch: Batch, customer_id: int, persona: str, created_at: datetime
    ) -> datetime | None:
        rng, last = self.rng, None
        if rng.random() >= 0.3:
            return None
        for number in range(self.between(1, 3)):
            started = self.now - timedelta(
                days=self.between(0, 540), minutes=self.between(0, 1_439)
            )
            if started < created_at:
                continue
            conversation_id = f"demo-{customer_id}-{number}"
            channel = rng.choice(["web", "wechat"])
            ended = self.turns(batch, customer_id, conversation_id, channel, started)
            batch.add(
                Conversation,
                id=conversation_id,
                customer_id=customer_id,
                channel=channel,
                started_at=started,
                last_message_at=ended,
                ended_at=ended,
            )
            self.survey(batch, customer_id, conversation_id, channel, persona, ended)
            last = max(last or ended, ended)
        return last

    def turns(
        self, batch: Batch, customer_id: int, conversation_id: str, channel: str, started: datetime
    ) -> datetime:
        at = started
        for _ in range(self.between(1, 3)):
            batch.add(
                Interaction,
                conversation_id=conversation_id,
                customer_id=customer_id,
                channel=channel,
                speaker="customer",
                text=None,
                intent=self.rng.choice(INTENTS),
                confidence=round(self.rng.uniform(0.45, 0.99), 2),
                handled_by="bot",
                agent_id=None,
                occurred_at=at,
            )
            at += timedelta(seconds=self.between(1, 5))
            batch.add(
                Interaction,
                conversation_id=conversation_id,
                customer_id=customer_id,
                channel=channel,
                speaker="bot",
                text=None,
                intent=None,
                confidence=None,
                handled_by="bot",
                agent_id=None,
                occurred_at=at,
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
        rng = self.rng
        if rng.random() >= 0.6:
            return
        answered = rng.random() < 0.75
        unhappy = persona == "drifting" and rng.random() < 0.5
        csat = rng.choice([1, 2, 2, 3]) if unhappy else rng.choice([3, 4, 4, 5, 5, 5])
        nps = self.between(0, 6) if unhappy else rng.choice([6, 7, 8, 9, 9, 10, 10])
        batch.add(
            SurveyResponse,
            conversation_id=conversation_id,
            trigger="end_of_chat",
            channel=channel,
            status="answered" if answered else "declined",
            customer_id=customer_id,
            agent_id=None,
            csat=csat if answered else None,
            nps=nps if answered else None,
            comment=None,
            themes=rng.sample(THEMES, self.between(0, 2)) if answered else [],
            asked_at=asked_at,
            answered_at=asked_at + timedelta(minutes=1),
        )

    def ticket(self, batch: Batch, customer_id: int, created_at: datetime) -> None:
        rng = self.rng
        kind, priority = (
            rng.choice(["complaint", "return", "refund"]),
            rng.choice(["low", "normal", "normal", "high", "urgent"]),
        )
        opened = max(created_at, self.now - timedelta(days=self.between(0, 300)))
        resolved = opened < self.now - timedelta(days=7)
        batch.add(
            Ticket,
            customer_id=customer_id,
            order_id=None,
            conversation_id=None,
            kind=kind,
            status="closed" if resolved else "open",
            priority=priority,
            owner_id=None,
            subject="售后问题",
            description="演示数据",
            created_at=opened,
            updated_at=opened,
            sla_due_at=sla_due(opened, kind=kind, priority=priority),
            resolved_at=opened + timedelta(hours=20) if resolved else None,
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


def _demo_gold_member(batch: Batch, gen: Generator) -> None:
    """1 王小明: orders incl. DD202611020387, a warranty ending in 20 days, points."""
    now = gen.now
    _fixed_profile(
        batch,
        1,
        "王小明",
        "13800138000",
        "金卡",
        now - timedelta(days=900),
        birthday=date(1990, 11, 20),
        channel="wechat",
    )
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
    _fixed_points(batch, 1, now, [(old, 9_000), (robot, 3_700), (recent, 790)], redeemed=500)
    _fixed_chat(batch, 1, "demo-1-0", now - timedelta(days=30), csat=5, nps=10)


def _demo_drifting_lunar(batch: Batch, gen: Generator) -> None:
    """2 李娜: a lunar birthday, no order for 260 days, an unhappy survey: a win-back case."""
    now = gen.now
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
    )
    _identities(batch, 2, now, web_user="demo_lunar", wechat_openid="o_demo_lunar")
    _consents(batch, 2, now, offer=True)
    for days, skus in ((260, ["BL-500"]), (320, ["RC-300"]), (400, ["AP-800"])):
        placed = now - timedelta(days=days)
        _fixed_order(batch, 2, gen.order_id(placed), placed, skus, "completed")
    _fixed_points(batch, 2, now, [(now - timedelta(days=260), 899)], redeemed=0)
    _fixed_chat(batch, 2, "demo-2-0", now - timedelta(days=100), csat=2, nps=3)


def _demo_newcomer(batch: Batch, now: datetime) -> None:
    """3 张伟: signed up 3 days ago, no orders, no consent to offers."""
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
    _identities(batch, 3, now, wechat_openid="o_demo_new")
    _consents(batch, 3, now, offer=False)


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
) -> None:
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
        points_balance=0,
        preferred_channel=channel,
        timezone="Asia/Shanghai",
        quiet_start=time(22),
        quiet_end=time(8),
        created_at=created_at,
        last_active_at=None,
    )


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
) -> None:
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
    customer_row = batch.rows[Customer.__table__][-1]
    customer_row["points_balance"] = balance


def _fixed_chat(
    batch: Batch, customer_id: int, conversation_id: str, at: datetime, *, csat: int, nps: int
) -> None:
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
    for row in batch.rows[Customer.__table__]:
        if row["id"] == customer_id:
            row["last_active_at"] = at


def _reference_rows(batch: Batch, now: datetime) -> None:
    for sku, (name, category, price, warranty) in CATALOGUE.items():
        batch.rows.setdefault(Product.__table__, []).append(
            {
                "sku": sku,
                "name": name,
                "category": category,
                "price_cents": price,
                "warranty_months": warranty,
            }
        )
    for username, display_name, role in STAFF:
        batch.rows.setdefault(StaffUser.__table__, []).append(
            {
                "username": username,
                "display_name": display_name,
                "role": role,
                "active": True,
                "password_hash": hash_password(DEMO_STAFF_PASSWORD),
                "created_at": now,
            }
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
    for done, chunk in produce(rng_seed, now, total):
        with engine.begin() as connection:
            write_chunk(connection, chunk)
        _report(progress, done, total)
    _advance_sequences(engine)
    _refresh_statistics(engine)
    return total


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


def _advance_sequences(engine: Engine) -> None:
    """PostgreSQL sequences do not see explicit ids; move the customers' one past them."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
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
    return _seed_empty(engine, customers, seed, None, clock)
