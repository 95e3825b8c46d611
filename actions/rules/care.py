"""Rules for proactive care messages, as plain functions."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from crm_store.offers import Coupon, Offer
from crm_store.orders import Order

CARE_INTENT = "EXTERNAL_care_message"
ORDER_ID_LENGTH = 14  # DD + 12 digits


def care_message_id_of(entities: Iterable[dict[str, Any]]) -> int | None:
    for entity in entities:
        if entity.get("entity") == "care_message_id":
            try:
                return int(str(entity.get("value")))
            except ValueError:
                return None
    return None


def already_delivered(events: Sequence[dict[str, Any]], message_id: int) -> bool:
    """Whether an earlier trigger of this care message in the conversation was answered: the
    scheduler re-triggers after a crash between the send and its acknowledgement."""
    users = [index for index, event in enumerate(events) if event.get("event") == "user"]
    for position, index in enumerate(users[:-1]):  # the last one is the trigger handled now
        if _is_trigger_of(events[index], message_id):
            following = events[index + 1 : users[position + 1]]
            if any(event.get("event") == "bot" for event in following):
                return True
    return False


def _is_trigger_of(event: dict[str, Any], message_id: int) -> bool:
    parse = event.get("parse_data") or {}
    intent = (parse.get("intent") or {}).get("name")
    return intent == CARE_INTENT and care_message_id_of(parse.get("entities") or []) == message_id


def holiday_key(period: str) -> str:
    """'2026-spring_festival' -> 'spring_festival'."""
    return period.split("-", 1)[1] if "-" in period else period


def tip_family(period: str) -> str:
    """'AF-200-2026-11' -> 'af': the product family whose tip is sent."""
    sku = period[: -len("-2026-11")] if len(period) > len("-2026-11") else period
    return sku.split("-", 1)[0].lower()


def warranty_item(period: str) -> tuple[str, str]:
    """'DD202611020387-RV-700' -> ('DD202611020387', 'RV-700')."""
    return period[:ORDER_ID_LENGTH], period[ORDER_ID_LENGTH + 1 :]


def offer_value_parts(offer: Offer) -> tuple[str, dict[str, str]]:
    """Which value label (a domain response) describes the offer, and its placeholders."""
    if offer.kind == "percent_off":
        return "utter_label_offer_percent_off", {"discount": f"{(100 - offer.value) / 10:g}"}
    return "utter_label_offer_amount_off", {"yuan": f"{offer.value / 100:g}"}


_CODE = re.compile(r"(?<![A-Z0-9])[A-Z2-9]{10}(?![A-Z0-9])")
PAYABLE_ORDER_STATUSES = ("pending", "paid")


def codes_in(text: str) -> list[str]:
    """Candidate coupon codes a customer typed (checked against their own coupons later)."""
    return _CODE.findall(text.upper())


def order_for_coupon(orders: Iterable[Order], coupon: Coupon) -> Order | None:
    """The order a coupon can still take money off: not yet shipped, placed after it was issued."""
    for order in orders:
        if order.status in PAYABLE_ORDER_STATUSES and order.placed_at >= coupon.issued_at:
            return order
    return None


def choose_coupon(named: Sequence[str], coupons: Sequence[Coupon], now: datetime) -> Coupon | None:
    """The coupon the customer named (button or typed code), else their newest usable one. A
    code that is not one of theirs chooses nothing: it must not fall back to another coupon."""
    by_code = {coupon.code: coupon for coupon in coupons}
    for code in named:
        if code in by_code:
            return by_code[code]
    if named:
        return None
    usable = [c for c in coupons if c.status == "issued" and c.expires_at > now]
    return max(usable, key=lambda coupon: coupon.issued_at, default=None)
