from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from actions.rules.orders import arrived, in_transit, obvious_order, running_late, usual_arrival
from crm_store.orders import Order, Shipment

AT = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)


def _order(number: int, status: str, *scans: str) -> Order:
    shipments = tuple(Shipment(scan, None, AT) for scan in scans)
    return Order(f"DD2026112000{number:02d}", 1, status, 9_900, AT, (), shipments)


MOVING = _order(1, "shipped", "picked_up", "in_transit")
ARRIVED = _order(2, "shipped", "picked_up", "delivered")
DONE = _order(3, "completed", "delivered")
PAID = _order(4, "paid")


def test_a_delivery_scan_means_arrived_whatever_the_status() -> None:
    assert arrived(ARRIVED) and not in_transit(ARRIVED)
    assert in_transit(MOVING) and not arrived(MOVING) and not arrived(PAID)


@pytest.mark.parametrize(
    ("orders", "obvious"),
    [
        ([DONE, MOVING, PAID], MOVING),  # the one parcel on its way
        ([MOVING, ARRIVED], MOVING),  # the other one is already there
        ([PAID], PAID),  # the only order
        ([MOVING, _order(5, "shipped", "picked_up")], None),  # two on their way: a choice
        ([DONE, PAID], None),  # none on its way and more than one: a choice
        ([], None),
    ],
)
def test_the_obvious_order(orders: list[Order], obvious: Order | None) -> None:
    assert obvious_order(orders) == obvious


@pytest.mark.parametrize(
    ("carrier", "today", "late"),
    [("中通快递", 23, False), ("中通快递", 24, True), ("顺丰速运", 22, False), (None, 25, True)],
)
def test_late_is_after_the_carriers_usual_day(carrier: str | None, today: int, late: bool) -> None:
    shipped = date(2026, 11, 20)
    assert running_late(carrier, shipped, date(2026, 11, today)) is late
    assert usual_arrival(carrier, shipped) >= shipped
