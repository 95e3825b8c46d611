"""When a parcel should arrive (the carrier's usual transit time after it left the warehouse),
and which order "my order" means."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from crm_store.orders import Order

# Working days a carrier usually needs inside mainland China; unknown carriers get the slowest.
TRANSIT_DAYS = {"顺丰速运": 2, "京东物流": 2, "中通快递": 3}
DEFAULT_TRANSIT_DAYS = 4


def usual_arrival(carrier: str | None, shipped_on: date) -> date:
    """The day the carrier usually delivers a parcel that left the warehouse on `shipped_on`."""
    return shipped_on + timedelta(days=TRANSIT_DAYS.get(carrier or "", DEFAULT_TRANSIT_DAYS))


def expected_delivery(carrier: str | None, shipped_at: datetime, today: date) -> date:
    """The day the parcel should arrive; never in the past while it is still on its way."""
    return max(usual_arrival(carrier, shipped_at.date()), today)


def running_late(carrier: str | None, shipped_on: date, today: date) -> bool:
    """Past the carrier's usual day and not delivered: the customer is told so, with that day,
    instead of an "expected today" that no record says."""
    return usual_arrival(carrier, shipped_on) < today


def arrived(order: Order) -> bool:
    """Whether the carrier's latest scan is the delivery, whatever the order's status says yet."""
    return bool(order.shipments) and order.shipments[-1].status == "delivered"


def in_transit(order: Order) -> bool:
    return order.status == "shipped" and not arrived(order)


def obvious_order(orders: Sequence[Order]) -> Order | None:
    """The order "where is my order" can only mean: the one order on its way, or, with none on
    its way, the customer's only order. None when the customer has to choose."""
    moving = [order for order in orders if in_transit(order)]
    if len(moving) == 1:
        return moving[0]
    if not moving and len(orders) == 1:
        return orders[0]
    return None


_ORDER_ID = re.compile(r"(?<![A-Za-z0-9])DD\d{12}(?!\d)", re.IGNORECASE)


def order_ids_in(text: str) -> list[str]:
    """The order ids a message names (DD + 12 digits, full-width digits and lower case too), in
    the order they appear, each once."""
    found = [m.group(0).upper() for m in _ORDER_ID.finditer(unicodedata.normalize("NFKC", text))]
    return list(dict.fromkeys(found))
