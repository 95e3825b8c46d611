"""Builders and constants shared by the crm_store tests (a unique module name: pytest puts
every test directory on sys.path, so a plain `helpers` or `conftest` import could collide)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from crm_store.clock import Clock, utcnow
from crm_store.customers import Customer, create_customer
from crm_store.models import Base
from crm_store.orders import ProductInfo, upsert_product

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
NOW = datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai


def empty_all_tables(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))


def a_customer(
    session: Session, name: str = "王小明", clock: Clock = utcnow, **kwargs: object
) -> Customer:
    return create_customer(session, name=name, clock=clock, **kwargs)  # type: ignore[arg-type]


def an_air_fryer(session: Session) -> ProductInfo:
    return upsert_product(
        session,
        sku="AF-01",
        name="空气炸锅",
        category="厨房电器",
        price_cents=39_900,
        warranty_months=12,
    )
