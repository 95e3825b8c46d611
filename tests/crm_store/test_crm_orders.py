from __future__ import annotations

from datetime import date, timedelta
from functools import partial

import pytest
from crm_helpers import a_customer, an_air_fryer, empty_all_tables, run_concurrently
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from crm_store import orders
from crm_store.clock import ManualClock
from crm_store.db import session_scope
from crm_store.errors import Conflict, InvalidInput, NotFound
from crm_store.orders import (
    NewItem,
    ProductInfo,
    add_months,
    add_shipping_event,
    create_order,
    find_order,
    get_order,
    list_orders,
    list_products,
    list_warranties,
    list_warranties_ending,
    set_order_status,
    spend_since,
    upsert_product,
)


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2026, 11, 2), 24, date(2028, 11, 2)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
    ],
)
def test_add_months_clamps_to_month_end(start: date, months: int, end: date) -> None:
    assert add_months(start, months) == end


def test_create_order_totals_items_and_sets_warranty(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session)
    an_air_fryer(session)
    upsert_product(
        session,
        sku="KT-01",
        name="电热水壶",
        category="厨房电器",
        price_cents=12_900,
        warranty_months=6,
    )
    order = create_order(
        session,
        customer_id=customer.id,
        order_id="DD202611020387",
        clock=clock,
        items=[NewItem("AF-01"), NewItem("KT-01", quantity=2, unit_price_cents=9_900)],
    )
    assert order.total_cents == 39_900 + 2 * 9_900
    assert [(i.name, i.warranty_ends_on) for i in order.items] == [
        ("空气炸锅", date(2027, 11, 2)),
        ("电热水壶", date(2027, 5, 2)),
    ]
    assert get_order(session, order_id="dd202611020387 ") == order


def test_order_ids_are_unique_and_well_formed(session: Session) -> None:
    customer = a_customer(session)
    an_air_fryer(session)
    create_order(
        session, customer_id=customer.id, order_id="DD202611020387", items=[NewItem("AF-01")]
    )
    with pytest.raises(Conflict):
        create_order(
            session, customer_id=customer.id, order_id="DD202611020387", items=[NewItem("AF-01")]
        )
    with pytest.raises(InvalidInput):
        create_order(session, customer_id=customer.id, order_id="123", items=[NewItem("AF-01")])
    generated = create_order(session, customer_id=customer.id, items=[NewItem("AF-01")])
    assert generated.id.startswith("DD") and len(generated.id) == 14


@pytest.mark.parametrize(
    "item", [NewItem("AF-01", quantity=0), NewItem("AF-01", unit_price_cents=-1)]
)
def test_create_order_rejects_bad_items(session: Session, item: NewItem) -> None:
    customer = a_customer(session)
    an_air_fryer(session)
    with pytest.raises(InvalidInput):
        create_order(session, customer_id=customer.id, items=[item])


def test_create_order_needs_known_customer_and_product(session: Session) -> None:
    an_air_fryer(session)
    with pytest.raises(NotFound):
        create_order(session, customer_id=999_999, items=[NewItem("AF-01")])
    customer = a_customer(session)
    with pytest.raises(NotFound):
        create_order(session, customer_id=customer.id, items=[NewItem("NOPE")])
    with pytest.raises(InvalidInput):
        create_order(session, customer_id=customer.id, items=[])


def test_shipping_events_and_status(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session)
    an_air_fryer(session)
    order = create_order(session, customer_id=customer.id, items=[NewItem("AF-01")], clock=clock)
    clock.advance(timedelta(hours=5))
    add_shipping_event(session, order_id=order.id, status="picked_up", location="佛山", clock=clock)
    shipped = set_order_status(session, order_id=order.id, status="shipped")
    assert shipped.status == "shipped"
    assert [(s.status, s.location) for s in shipped.shipments] == [("picked_up", "佛山")]
    with pytest.raises(InvalidInput):
        add_shipping_event(session, order_id=order.id, status="lost in space")
    with pytest.raises(NotFound):
        set_order_status(session, order_id="DD000000000000", status="paid")
    assert find_order(session, order_id="DD000000000000") is None


def test_list_orders_newest_first(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session)
    an_air_fryer(session)
    old = create_order(session, customer_id=customer.id, items=[NewItem("AF-01")], clock=clock)
    clock.advance(timedelta(days=3))
    new = create_order(session, customer_id=customer.id, items=[NewItem("AF-01")], clock=clock)
    assert [o.id for o in list_orders(session, customer_id=customer.id)] == [new.id, old.id]


def test_warranties_running_and_ending(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session)
    an_air_fryer(session)
    order = create_order(session, customer_id=customer.id, items=[NewItem("AF-01")], clock=clock)
    ends = date(2027, 11, 2)
    assert [
        w.ends_on
        for w in list_warranties(session, customer_id=customer.id, active_on=date(2027, 11, 1))
    ] == [ends]
    assert list_warranties(session, customer_id=customer.id, active_on=date(2027, 11, 3)) == []
    ending = list_warranties_ending(session, start=ends - timedelta(days=30), end=ends)
    assert [(c, w.order_id) for c, w in ending] == [(customer.id, order.id)]
    set_order_status(session, order_id=order.id, status="refunded")
    assert list_warranties(session, customer_id=customer.id) == []


def test_the_carrier_is_kept_on_the_order(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session)
    an_air_fryer(session)
    order = create_order(session, customer_id=customer.id, items=[NewItem("AF-01")], clock=clock)
    assert order.carrier is None
    add_shipping_event(session, order_id=order.id, status="picked_up", carrier="顺丰速运")
    shipped = add_shipping_event(session, order_id=order.id, status="in_transit")
    assert shipped.carrier == "顺丰速运" and len(shipped.shipments) == 2


def test_spend_since_counts_only_real_orders_in_the_window(
    session: Session, clock: ManualClock
) -> None:
    customer = a_customer(session)
    an_air_fryer(session)
    create_order(session, customer_id=customer.id, items=[NewItem("AF-01")], clock=clock)
    start = clock.advance(timedelta(days=10))
    kept = create_order(session, customer_id=customer.id, items=[NewItem("AF-01")], clock=clock)
    void = create_order(session, customer_id=customer.id, items=[NewItem("AF-01")], clock=clock)
    set_order_status(session, order_id=void.id, status="cancelled")
    assert spend_since(session, customer_id=customer.id, since=start) == kept.total_cents


def test_a_generated_order_id_that_clashes_is_drawn_again(
    session: Session, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    an_air_fryer(session)
    customer = a_customer(session)
    day = f"{clock():%Y%m%d}"
    draws = iter([f"DD{day}0001", f"DD{day}0001", f"DD{day}0002"])
    monkeypatch.setattr(orders, "new_order_id", lambda placed_at: next(draws))
    first = create_order(session, customer_id=customer.id, items=[NewItem("AF-01")], clock=clock)
    second = create_order(session, customer_id=customer.id, items=[NewItem("AF-01")], clock=clock)
    assert (first.id, second.id) == (f"DD{day}0001", f"DD{day}0002")
    assert second.items[0].sku == "AF-01"
    with pytest.raises(Conflict):  # an id the caller chose is never replaced
        create_order(session, customer_id=customer.id, items=[NewItem("AF-01")], order_id=first.id)


def test_two_writers_adding_the_same_new_product_at_once_both_succeed(engine: Engine) -> None:
    def add(price: int) -> ProductInfo:
        with session_scope(engine) as session:
            return upsert_product(
                session,
                sku="NEW-1",
                name="新品",
                category="厨房电器",
                price_cents=price,
                warranty_months=12,
            )

    try:
        first, second = run_concurrently(partial(add, 100), partial(add, 200))
        with session_scope(engine) as session:
            stored = [p for p in list_products(session) if p.sku == "NEW-1"]
        assert first.sku == second.sku == "NEW-1" and len(stored) == 1
        assert stored[0].price_cents in (100, 200)  # the later writer's price
    finally:
        empty_all_tables(engine)
