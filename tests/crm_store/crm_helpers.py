"""Builders and constants shared by the crm_store tests (a unique module name: pytest puts
every test directory on sys.path, so a plain `helpers` or `conftest` import could collide)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TypeVar

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from crm_store.clock import Clock, utcnow
from crm_store.customers import Customer, create_customer
from crm_store.models import Base
from crm_store.orders import ProductInfo, upsert_product

T = TypeVar("T")

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


def run_concurrently(*calls: Callable[[], T], timeout: float = 60) -> list[T]:
    """Run each call in its own thread, released together by a barrier so they collide.

    Each call must open its own session: the point is real concurrent transactions. The first
    error a thread raised is raised here, after every thread has finished.
    """
    barrier = threading.Barrier(len(calls))
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], T]) -> None:
        try:
            barrier.wait(timeout)
            results[index] = call()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a concurrent call hung"
    if errors:
        raise errors[0]
    return [results[index] for index in range(len(calls))]
