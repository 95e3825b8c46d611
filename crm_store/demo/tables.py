"""The demo's rows in storage format, per table, and how a chunk of them is written.

Rows are tuples already in the database's storage format, so writing a chunk is COPY on
PostgreSQL and a plain executemany on SQLite, with no per-value processing.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Date, DateTime, Time
from sqlalchemy.engine import Connection

from crm_store.clock import as_utc
from crm_store.models import UtcDateTime

Row = tuple[Any, ...]
# (table name, column names, rows) per table, tables in foreign-key order.
Chunk = list[tuple[str, list[str], list[Row]]]

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
# The tables that grow with the number of customers.
BULK_TABLES = [name for name in COLUMNS if name not in ("products", "staff_users")]


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
