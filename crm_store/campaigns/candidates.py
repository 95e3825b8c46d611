"""The columns every candidate query selects, for the planning pipeline (planning.py).

A candidate is one message a campaign would send: the customer's columns (id, name, channel,
time zone, quiet hours) plus `period` (one message per customer x campaign x period), `detail`
(the gift, offer or product it is about) and `rank` (the campaign's own order: lower first).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.sql import Select

from crm_store.models import Customer, Order, OrderItem
from crm_store.orders import VOID_STATUSES


def customer_columns() -> tuple[Any, ...]:
    return (
        Customer.id.label("customer_id"),
        Customer.name.label("name"),
        Customer.preferred_channel.label("channel"),
        Customer.timezone.label("timezone"),
        Customer.quiet_start.label("quiet_start"),
        Customer.quiet_end.label("quiet_end"),
    )


def candidate_columns(period: Any, detail: Any, rank: Any) -> tuple[Any, ...]:
    return (
        *customer_columns(),
        cast(period, String).label("period"),
        cast(detail, String).label("detail"),
        rank.label("rank"),
    )


def owned_items(*columns: Any) -> Select:
    """Order items of live orders with a warranty date, joined to their customer."""
    return (
        select(*columns)
        .select_from(OrderItem)
        .join(Order, Order.id == OrderItem.order_id)
        .join(Customer, Customer.id == Order.customer_id)
        .where(Order.status.not_in(VOID_STATUSES), OrderItem.warranty_ends_on.is_not(None))
    )
