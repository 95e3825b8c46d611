"""Timings of demo seeding and of the analytics refresh, for `make bench` to record.

python -m crm_store.bench URL CUSTOMERS
"""

from __future__ import annotations

import sys
import time

from sqlalchemy import func, select

from crm_store.analytics import refresh_customer_metrics
from crm_store.db import make_engine, session_scope
from crm_store.demo import seed
from crm_store.migrate import upgrade
from crm_store.models import Order


def run(url: str, customers: int) -> dict[str, float]:
    """Seed an empty database at `url`, then refresh the metrics; seconds and row counts."""
    upgrade(url)
    engine = make_engine(url)
    started = time.perf_counter()
    seed(engine, customers=customers)
    seeded = time.perf_counter()
    with session_scope(engine) as session:
        rows = refresh_customer_metrics(session)
    analysed = time.perf_counter()
    with engine.connect() as connection:
        orders = connection.scalar(select(func.count()).select_from(Order))
    engine.dispose()
    return {
        "customers": rows,
        "orders": orders,
        "seed_seconds": round(seeded - started, 1),
        "analytics_seconds": round(analysed - seeded, 1),
    }


def main() -> None:
    url, customers = sys.argv[1], int(sys.argv[2])
    print(run(url, customers))


if __name__ == "__main__":
    main()
