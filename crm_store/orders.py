"""Products with warranty terms, orders with items, shipping events."""

from __future__ import annotations

import calendar
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from crm_store._unique import try_insert
from crm_store.clock import Clock, utcnow
from crm_store.errors import Conflict, InvalidInput, NotFound
from crm_store.models import ORDER_STATUSES, SHIPPING_STATUSES, OrderItem, Product, ShippingEvent
from crm_store.models import Customer as CustomerRow
from crm_store.models import Order as OrderRow
from crm_store.validation import (
    check_choice,
    check_non_negative,
    check_order_id,
    check_positive,
    check_text,
)

# Orders in these states never count as revenue.
VOID_STATUSES = ("cancelled", "refunded")


@dataclass(frozen=True)
class ProductInfo:
    sku: str
    name: str
    category: str
    price_cents: int
    warranty_months: int


@dataclass(frozen=True)
class NewItem:
    sku: str
    quantity: int = 1
    unit_price_cents: int | None = None  # None: the catalogue price


@dataclass(frozen=True)
class Item:
    sku: str
    name: str
    quantity: int
    unit_price_cents: int
    warranty_ends_on: date | None


@dataclass(frozen=True)
class Shipment:
    status: str
    location: str | None
    occurred_at: datetime


@dataclass(frozen=True)
class Order:
    id: str
    customer_id: int
    status: str
    total_cents: int
    placed_at: datetime
    items: tuple[Item, ...]
    shipments: tuple[Shipment, ...]
    carrier: str | None = None


@dataclass(frozen=True)
class Warranty:
    order_id: str
    sku: str
    product_name: str
    placed_at: datetime
    ends_on: date


def add_months(day: date, months: int) -> date:
    """Calendar months later, clamped to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


GENERATED_ID_ATTEMPTS = 10  # 10,000 numbers a day: a busy day's draws can clash


def new_order_id(placed_at: datetime, rng: random.Random | None = None) -> str:
    """DD + yyyymmdd + 4 random digits, the format of the shop's own order numbers."""
    suffix = (rng or random.SystemRandom()).randrange(10_000)
    return f"DD{placed_at:%Y%m%d}{suffix:04d}"


def upsert_product(
    session: Session,
    *,
    sku: str,
    name: str,
    category: str,
    price_cents: int,
    warranty_months: int,
) -> ProductInfo:
    """Create the product, or update it. Two writers adding the same new SKU at once: the
    second finds the first's row and updates it instead of failing."""
    sku = check_text(sku, "sku", 32)
    values = {
        "name": check_text(name, "name", 64),
        "category": check_text(category, "category", 32),
        "price_cents": check_non_negative(price_cents, "price"),
        "warranty_months": check_non_negative(warranty_months, "warranty months"),
    }
    row = session.get(Product, sku)
    if row is None and try_insert(session, Product(sku=sku, **values)):
        return _product(session.get(Product, sku))
    row = row or session.get(Product, sku, populate_existing=True)
    for field, value in values.items():
        setattr(row, field, value)
    session.flush()
    return _product(row)


def _product(row: Product) -> ProductInfo:
    return ProductInfo(row.sku, row.name, row.category, row.price_cents, row.warranty_months)


def get_product(session: Session, *, sku: str) -> ProductInfo:
    row = session.get(Product, sku)
    if row is None:
        raise NotFound(f"no product {sku}")
    return _product(row)


def list_products(session: Session) -> list[ProductInfo]:
    return [_product(row) for row in session.scalars(select(Product).order_by(Product.sku))]


def create_order(
    session: Session,
    *,
    customer_id: int,
    items: Sequence[NewItem],
    order_id: str | None = None,
    status: str = "paid",
    clock: Clock = utcnow,
) -> Order:
    """An order placed now; item warranties run from the order date."""
    placed_at = clock()
    if not items:
        raise InvalidInput("an order needs at least one item")
    if session.get(CustomerRow, customer_id) is None:
        raise NotFound(f"no customer {customer_id}")
    lines = [_order_item(session, item, placed_at.date()) for item in items]
    row = OrderRow(
        id=check_order_id(order_id) if order_id else new_order_id(placed_at),
        customer_id=customer_id,
        status=check_choice(status, ORDER_STATUSES, "order status"),
        total_cents=sum(line.quantity * line.unit_price_cents for line in lines),
        placed_at=placed_at,
    )
    for _ in range(GENERATED_ID_ATTEMPTS):
        if try_insert(session, row):
            break
        if order_id:  # the caller's id is taken
            raise Conflict(f"order {row.id} already exists")
        row = _with_id(row, new_order_id(placed_at))  # a generated id clashed: draw again
    else:
        raise Conflict(f"no free order id on {placed_at:%Y-%m-%d}")
    for line in lines:
        line.order_id = row.id
    session.add_all(lines)
    session.flush()
    return get_order(session, order_id=row.id)


def _with_id(row: OrderRow, order_id: str) -> OrderRow:
    return OrderRow(
        id=order_id,
        customer_id=row.customer_id,
        status=row.status,
        total_cents=row.total_cents,
        placed_at=row.placed_at,
    )


def _order_item(session: Session, item: NewItem, placed_on: date) -> OrderItem:
    product = get_product(session, sku=item.sku)
    price = product.price_cents if item.unit_price_cents is None else item.unit_price_cents
    return OrderItem(
        sku=product.sku,
        quantity=check_positive(item.quantity, "quantity"),
        unit_price_cents=check_non_negative(price, "unit price"),
        warranty_ends_on=add_months(placed_on, product.warranty_months),
    )


def get_order(session: Session, *, order_id: str) -> Order:
    order = find_order(session, order_id=order_id)
    if order is None:
        raise NotFound(f"no order {order_id}")
    return order


def find_order(session: Session, *, order_id: str) -> Order | None:
    row = session.get(OrderRow, order_id.strip().upper())
    return _order(session, row) if row else None


def _order(session: Session, row: OrderRow) -> Order:
    items = session.execute(
        select(OrderItem, Product.name)
        .join(Product, Product.sku == OrderItem.sku)
        .where(OrderItem.order_id == row.id)
        .order_by(OrderItem.id)
    )
    events = session.scalars(
        select(ShippingEvent)
        .where(ShippingEvent.order_id == row.id)
        .order_by(ShippingEvent.occurred_at, ShippingEvent.id)
    )
    return Order(
        id=row.id,
        customer_id=row.customer_id,
        status=row.status,
        total_cents=row.total_cents,
        placed_at=row.placed_at,
        items=tuple(
            Item(i.sku, name, i.quantity, i.unit_price_cents, i.warranty_ends_on)
            for i, name in items
        ),
        shipments=tuple(Shipment(e.status, e.location, e.occurred_at) for e in events),
        carrier=row.carrier,
    )


def list_orders(session: Session, *, customer_id: int, limit: int = 20) -> list[Order]:
    """Newest first."""
    query = (
        select(OrderRow)
        .where(OrderRow.customer_id == customer_id)
        .order_by(OrderRow.placed_at.desc(), OrderRow.id.desc())
        .limit(limit)
    )
    return [_order(session, row) for row in session.scalars(query).all()]


def set_order_status(session: Session, *, order_id: str, status: str) -> Order:
    check_choice(status, ORDER_STATUSES, "order status")
    result = session.execute(update(OrderRow).where(OrderRow.id == order_id).values(status=status))
    if result.rowcount == 0:
        raise NotFound(f"no order {order_id}")
    return get_order(session, order_id=order_id)


def add_shipping_event(
    session: Session,
    *,
    order_id: str,
    status: str,
    location: str | None = None,
    carrier: str | None = None,
    clock: Clock = utcnow,
) -> Order:
    """Appends a shipping event; `carrier` (the first time it is known) is kept on the order."""
    row = session.get(OrderRow, order_id)
    if row is None:
        raise NotFound(f"no order {order_id}")
    if carrier is not None:
        row.carrier = check_text(carrier, "carrier", 32)
    session.add(
        ShippingEvent(
            order_id=order_id,
            status=check_choice(status, SHIPPING_STATUSES, "shipping status"),
            location=location,
            occurred_at=clock(),
        )
    )
    session.flush()
    return get_order(session, order_id=order_id)


def list_warranties(
    session: Session, *, customer_id: int, active_on: date | None = None
) -> list[Warranty]:
    """The customer's item warranties, soonest ending first; only those running on `active_on`."""
    query = _warranty_query().where(OrderRow.customer_id == customer_id)
    if active_on is not None:
        query = query.where(OrderItem.warranty_ends_on >= active_on)
    return [_warranty(row) for row in session.execute(query)]


def list_warranties_ending(
    session: Session, *, start: date, end: date, limit: int = 1000
) -> list[tuple[int, Warranty]]:
    """(customer_id, warranty) for warranties ending in [start, end], for care reminders."""
    query = _warranty_query().where(OrderItem.warranty_ends_on.between(start, end)).limit(limit)
    return [(row.customer_id, _warranty(row)) for row in session.execute(query)]


def _warranty_query() -> Any:
    return (
        select(
            OrderRow.customer_id,
            OrderRow.id.label("order_id"),
            OrderRow.placed_at,
            OrderItem.sku,
            OrderItem.warranty_ends_on,
            Product.name,
        )
        .join(OrderItem, OrderItem.order_id == OrderRow.id)
        .join(Product, Product.sku == OrderItem.sku)
        .where(OrderRow.status.not_in(VOID_STATUSES), OrderItem.warranty_ends_on.is_not(None))
        .order_by(OrderItem.warranty_ends_on, OrderRow.id)
    )


def _warranty(row: Any) -> Warranty:
    return Warranty(
        order_id=row.order_id,
        sku=row.sku,
        product_name=row.name,
        placed_at=row.placed_at,
        ends_on=row.warranty_ends_on,
    )


def spend_since(session: Session, *, customer_id: int, since: datetime) -> int:
    """What the customer spent since `since`, in cents; cancelled and refunded orders excluded."""
    query = select(func.coalesce(func.sum(OrderRow.total_cents), 0)).where(
        OrderRow.customer_id == customer_id,
        OrderRow.placed_at >= since,
        OrderRow.status.not_in(VOID_STATUSES),
    )
    return int(session.scalar(query))
