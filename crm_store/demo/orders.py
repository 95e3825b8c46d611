"""Generated orders: per persona a number of orders walking back from the last one, each with
its items (and warranties), shipping events for the ones on their way, and a carrier."""

from __future__ import annotations

import zlib
from datetime import date, datetime, timedelta

from crm_store.demo.draws import Draws
from crm_store.demo.reference import CATALOGUE, CHEAP, EXPENSIVE
from crm_store.demo.tables import Batch, stamp
from crm_store.orders import add_months

# persona: ((fewest, most) orders, days since the last order, days between orders, products)
ORDER_PLANS: dict[str, tuple[tuple[int, int], tuple[int, int], tuple[int, int], list[str]]] = {
    "frequent_cheap": ((4, 14), (0, 60), (20, 80), CHEAP),
    "regular": ((2, 6), (0, 150), (45, 160), CHEAP + EXPENSIVE),
    "rare_expensive": ((1, 2), (30, 400), (200, 400), EXPENSIVE),
    "drifting": ((3, 8), (240, 700), (25, 90), CHEAP + EXPENSIVE[:2]),
    "prospect": ((0, 0), (0, 0), (0, 0), CHEAP),
}
CARRIERS = ("顺丰速运", "京东物流", "中通快递")
UNSHIPPED_STATUSES = ("pending", "paid", "cancelled")


def carrier_of(order_id: str, status: str) -> str | None:
    """A carrier for every order that left the warehouse, fixed by the order id (not the random
    stream, so adding it left the rest of the generated data unchanged)."""
    if status in UNSHIPPED_STATUSES:
        return None
    return CARRIERS[zlib.crc32(order_id.encode()) % len(CARRIERS)]


class OrderRows(Draws):
    """Orders, their items and shipping events; order ids are unique per seeding run."""

    def __init__(self, seed: int, now: datetime) -> None:
        super().__init__(seed, now)
        self.day_counters: dict[date, int] = {}
        self.day_prefixes: dict[date, str] = {}
        self.warranty_ends: dict[tuple[date, int], str] = {}
        self.reserved = {"DD202611020387"}  # the fixed gold member's order

    def order_id(self, placed_at: datetime) -> str:
        """DD + order date + a per-day counter (spilling to the next day after 9,999)."""
        day = placed_at.date()
        while True:
            count = self.day_counters.get(day, 0) + 1
            self.day_counters[day] = count
            if count >= 10_000:
                day += timedelta(days=1)
                continue
            candidate = f"{self._day_prefix(day)}{count:04d}"
            if candidate not in self.reserved:
                return candidate

    def _day_prefix(self, day: date) -> str:
        prefix = self.day_prefixes.get(day)
        if prefix is None:
            prefix = self.day_prefixes[day] = f"DD{day:%Y%m%d}"
        return prefix

    def orders(self, batch: Batch, customer_id: int, persona: str) -> list[tuple[datetime, int]]:
        """Newest first, walking back from the last order by the persona's gaps."""
        (fewest, most), last_gap, gap, skus = ORDER_PLANS[persona]
        count = self.between(fewest, most)
        if not count:
            return []
        placed = self.ago(self.between(*last_gap))
        result = []
        for _ in range(count):
            result.append((placed, self.order(batch, customer_id, placed, skus)))
            placed -= timedelta(days=self.between(*gap), minutes=self.between(0, 1_439))
        return result

    def order(self, batch: Batch, customer_id: int, placed: datetime, skus: list[str]) -> int:
        """Writes one order with its items (and shipping events); the total that counts."""
        order_id, day = self.order_id(placed), placed.date()
        total = 0
        for sku in self.basket(skus):
            _, _, price, warranty = CATALOGUE[sku]
            quantity = 1 if self.random() < 0.9 else 2
            total += price * quantity
            ends = self.warranty_end(day, warranty)
            batch.order_items.append((order_id, sku, quantity, price, ends))
        status = self.order_status(placed)
        carrier = carrier_of(order_id, status)
        batch.orders.append((order_id, customer_id, status, total, stamp(placed), carrier))
        if status == "shipped":
            self.shipping(batch, order_id, placed)
        return 0 if status in ("cancelled", "refunded") else total

    def basket(self, skus: list[str]) -> tuple[str, ...]:
        """One product, or two different ones for 15% of orders."""
        if self.random() >= 0.15:
            return (self.pick(skus),)
        first, second = self.between(0, len(skus) - 1), self.between(0, len(skus) - 2)
        return (skus[first], skus[second + (second >= first)])

    def warranty_end(self, day: date, months: int) -> str:
        key = (day, months)
        ends = self.warranty_ends.get(key)
        if ends is None:
            ends = self.warranty_ends[key] = add_months(day, months).isoformat()
        return ends

    def shipping(self, batch: Batch, order_id: str, placed: datetime) -> None:
        for hours, event in ((2, "created"), (20, "picked_up"), (40, "in_transit")):
            at = placed + timedelta(hours=hours)
            if at < self.now:
                batch.shipping_events.append((order_id, event, "佛山", stamp(at)))

    def order_status(self, placed: datetime) -> str:
        age = (self.now - placed).days
        if self.random() < 0.03:
            return str(self.pick(("cancelled", "refunded")))
        if age < 2:
            return "paid"
        if age < 5:
            return "shipped"
        return "delivered" if age < 15 else "completed"
