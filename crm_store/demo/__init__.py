"""Deterministic demo data: a few fixed customers (see README.md) and N generated ones.

Rows are built per customer in Python from one seeded RNG, as tuples already in storage format,
and bulk-loaded chunk by chunk (COPY on PostgreSQL), so a million customers take minutes.

One module per part of what it generates: `reference.py` (products, staff), `customers.py`
(generated customers, with `orders.py` and `chats.py` for their orders and their chats and
surveys), `fixed.py` (the three documented customers), `campaigns.py` (the demo's campaigns and
offers); `tables.py` holds the rows' storage format and writing, `seeding.py` puts it together.
Callers use this package: `demo.seed`, `demo.ensure_demo_data`, `demo.DEMO_OFFERS`, ...
"""

from __future__ import annotations

from crm_store.demo.campaigns import DEMO_DAILY_CAPS, DEMO_OFFERS
from crm_store.demo.customers import Generator, demo_phone, tier_for_spend
from crm_store.demo.fixed import DEMO_REST_USERS, FIXED_CUSTOMERS, add_fixed_customers
from crm_store.demo.orders import carrier_of
from crm_store.demo.reference import CATALOGUE, DEMO_STAFF_PASSWORD, STAFF
from crm_store.demo.seeding import (
    CHUNK,
    PIPELINE_MIN,
    Progress,
    customer_count,
    ensure_demo_data,
    generate_chunks,
    seed,
)
from crm_store.demo.tables import BULK_TABLES, COLUMNS, Batch, Chunk, Row, stamp, write_chunk

__all__ = [
    "BULK_TABLES",
    "CATALOGUE",
    "CHUNK",
    "COLUMNS",
    "DEMO_DAILY_CAPS",
    "DEMO_OFFERS",
    "DEMO_REST_USERS",
    "DEMO_STAFF_PASSWORD",
    "FIXED_CUSTOMERS",
    "PIPELINE_MIN",
    "STAFF",
    "Batch",
    "Chunk",
    "Generator",
    "Progress",
    "Row",
    "add_fixed_customers",
    "carrier_of",
    "customer_count",
    "demo_phone",
    "ensure_demo_data",
    "generate_chunks",
    "seed",
    "stamp",
    "tier_for_spend",
    "write_chunk",
]
