from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from crm_helpers import NOW, empty_all_tables
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Engine

from crm_store import demo
from crm_store.clock import fixed
from crm_store.customers import get_consents
from crm_store.db import session_scope
from crm_store.demo import customer_count, demo_phone, ensure_demo_data, seed, tier_for_spend
from crm_store.errors import Conflict
from crm_store.identities import find_customer_by_identity
from crm_store.models import Customer, Order, PointsEntry
from crm_store.orders import get_order, list_warranties
from crm_store.points import reconcile_points
from crm_store.staff import authenticate_staff


@pytest.fixture
def empty_engine(engine: Engine) -> Engine:
    yield engine
    empty_all_tables(engine)


def test_tier_for_spend() -> None:
    assert [tier_for_spend(c) for c in (0, 200_000, 800_000, 2_000_000)] == [
        "普通",
        "银卡",
        "金卡",
        "钻石",
    ]


def test_demo_phones_are_unique_mobile_numbers() -> None:
    phones = {demo_phone(i) for i in range(1, 50_001)}
    assert len(phones) == 50_000 and all(len(p) == 11 and p[0] == "1" for p in phones)


def test_seed_writes_the_documented_demo_customers(empty_engine: Engine) -> None:
    reports: list[tuple[int, int]] = []
    written = seed(
        empty_engine, customers=120, progress=lambda d, t: reports.append((d, t)), clock=fixed(NOW)
    )
    assert written == 120 and reports[-1] == (120, 120)
    with session_scope(empty_engine) as session:
        demo = find_customer_by_identity(session, kind="web_user", value="demo")
        assert demo == find_customer_by_identity(
            session, kind="wechat_openid", value="o_demo_openid"
        )
        assert (demo.id, demo.name, demo.tier, demo.phone) == (1, "王小明", "金卡", "13800138000")
        assert demo.points_balance == reconcile_points(session, customer_id=1) == 12_990
        order = get_order(session, order_id="DD202611020387")
        assert (order.customer_id, [i.name for i in order.items]) == (1, ["空气炸锅", "电热水壶"])
        soon = NOW.date() + timedelta(days=20)
        assert soon in [
            w.ends_on for w in list_warranties(session, customer_id=1, active_on=NOW.date())
        ]
        lunar = find_customer_by_identity(session, kind="web_user", value="demo_lunar")
        assert lunar.celebrates_lunar_birthday and (
            lunar.lunar_birthday.month,
            lunar.lunar_birthday.day,
        ) == (8, 15)
        new = find_customer_by_identity(session, kind="wechat_openid", value="o_demo_new")
        assert get_consents(session, customer_id=new.id)["offer"] is False
        assert authenticate_staff(session, username="agent", password="carebot-demo") is not None


def test_seed_is_deterministic_and_only_fills_an_empty_database(empty_engine: Engine) -> None:
    seed(empty_engine, customers=150, seed=7, clock=fixed(NOW))
    first = _digest(empty_engine)
    with pytest.raises(Conflict):
        seed(empty_engine, customers=10, clock=fixed(NOW))
    assert ensure_demo_data(empty_engine, customers=10, clock=fixed(NOW)) == 0
    empty_all_tables(empty_engine)
    assert ensure_demo_data(empty_engine, customers=150, seed=7, clock=fixed(NOW)) == 150
    assert _digest(empty_engine) == first
    with session_scope(empty_engine) as session:  # the sequence moved past the explicit ids
        from crm_helpers import a_customer

        assert a_customer(session).id == 151


def test_a_worker_process_generates_the_same_rows(
    empty_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(empty_engine, customers=60, seed=3, clock=fixed(NOW))
    inline = _digest(empty_engine)
    empty_all_tables(empty_engine)
    monkeypatch.setattr(demo.seeding, "PIPELINE_MIN", 0)
    seed(empty_engine, customers=60, seed=3, clock=fixed(NOW))
    assert _digest(empty_engine) == inline


def test_seeding_leaves_the_schema_as_migrated(empty_engine: Engine) -> None:
    before = _schema(empty_engine)
    seed(empty_engine, customers=50, clock=fixed(NOW))
    assert _schema(empty_engine) == before


def test_a_failed_seed_keeps_every_key_and_postgresql_keeps_no_rows(
    empty_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL seeds in one transaction (without keys until the end): a failure leaves
    nothing. SQLite commits chunk by chunk and never drops its keys: the chunks before the
    failure stay."""
    before = _schema(empty_engine)
    written: list[demo.Chunk] = []

    def write_twice_then_fail(connection: object, chunk: demo.Chunk) -> None:
        if len(written) == 2:
            raise RuntimeError("disk full")
        written.append(chunk)
        real_write(connection, chunk)

    real_write = demo.write_chunk
    monkeypatch.setattr(demo.seeding, "CHUNK", 20)
    monkeypatch.setattr(demo.seeding, "write_chunk", write_twice_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        seed(empty_engine, customers=100, clock=fixed(NOW))
    assert _schema(empty_engine) == before
    if empty_engine.dialect.name == "postgresql":
        assert customer_count(empty_engine) == 0
    else:
        assert 0 < customer_count(empty_engine) < 100


def test_generated_ledgers_match_balances(empty_engine: Engine) -> None:
    seed(empty_engine, customers=300, clock=fixed(NOW))
    ledger = (
        select(PointsEntry.customer_id, func.sum(PointsEntry.delta).label("total"))
        .group_by(PointsEntry.customer_id)
        .subquery()
    )
    with empty_engine.connect() as connection:
        mismatches = connection.scalar(
            select(func.count())
            .select_from(Customer)
            .join(ledger, ledger.c.customer_id == Customer.id, isouter=True)
            .where(Customer.points_balance != func.coalesce(ledger.c.total, 0))
        )
        orders = connection.scalar(select(func.count()).select_from(Order))
    assert mismatches == 0
    assert 3 * 300 < orders < 8 * 300  # about five orders per customer on average


def _digest(engine: Engine) -> str:
    with engine.connect() as connection:
        rows = connection.execute(
            select(Customer.id, Customer.name, Customer.tier, Customer.points_balance).order_by(
                Customer.id
            )
        ).all()
        orders = connection.execute(select(Order.id, Order.total_cents).order_by(Order.id)).all()
    return hashlib.sha256(repr((rows, orders)).encode()).hexdigest()


def _schema(engine: Engine) -> dict[str, list[object]]:
    """Keys, indexes and foreign keys per table, and on PostgreSQL which are not validated."""
    inspector = inspect(engine)
    schema: dict[str, list[object]] = {
        table: [
            _stable(inspector.get_pk_constraint(table)),
            sorted(map(_stable, inspector.get_foreign_keys(table))),
            sorted(map(_stable, inspector.get_indexes(table))),
            sorted(map(_stable, inspector.get_unique_constraints(table))),
        ]
        for table in inspector.get_table_names()
        if not table.startswith("sqlite_stat")  # ANALYZE's statistics
    }
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            query = text("SELECT conname FROM pg_constraint WHERE NOT convalidated")
            schema["not validated"] = list(connection.scalars(query))
    return schema


def _stable(item: object) -> str:
    """Comparable text (a partial index's WHERE clause is an object without equality)."""
    return json.dumps(item, default=str, sort_keys=True)
