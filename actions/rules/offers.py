"""Which offers to show a customer, best for them first.

crm_store's `Offer` has no targeting columns (no tier, segment, start or end date): `valid_days`
is the lifetime of a coupon once issued, and `active` is the only on/off switch. So eligibility
is decided by the offer itself, its `active` flag, `kind` and `value`, and is the same for every
customer; tier and segment cannot narrow it until the table grows such columns.

Ranking uses what an offer is worth in cents on an order big enough to use it:

| kind        | worth                                                           |
| ----------- | --------------------------------------------------------------- |
| amount_off  | value (cents)                                                   |
| percent_off | value % of max(basket_cents, min_spend_cents)                   |
| points      | value x POINT_VALUE_CENTS                                       |

then the lower minimum spend, then the key, so the order is stable.
"""

from __future__ import annotations

from collections.abc import Sequence

from crm_store.campaigns.rules import is_campaign_offer
from crm_store.models import OFFER_KINDS
from crm_store.offers import Offer

# What one point is worth when redeemed: 100 points = 1 元. crm_store keeps no exchange rate;
# earning is 1 point per 元 (x tier multiplier), so a point is worth about 1% of a 元 spent.
POINT_VALUE_CENTS = 1
# The order a percentage is valued on when the caller knows no basket: 500 元, between the
# catalogue's small appliances (129-899 元) and its large ones.
REFERENCE_BASKET_CENTS = 50_000


def is_offerable(offer: Offer) -> bool:
    """Active, of a known kind, with a value that kind allows (a percentage is 1-99), and not a
    campaign's personal offer."""
    if not offer.active or offer.kind not in OFFER_KINDS or offer.value <= 0:
        return False
    if is_campaign_offer(offer.key):  # a win-back or birthday coupon is one customer's own
        return False
    return offer.kind != "percent_off" or offer.value < 100


def offer_worth_cents(offer: Offer, basket_cents: int = REFERENCE_BASKET_CENTS) -> int:
    """What the offer saves on an order of `basket_cents`, raised to its minimum spend."""
    if offer.kind == "points":
        return offer.value * POINT_VALUE_CENTS
    basket = max(basket_cents, offer.min_spend_cents)
    if offer.kind == "percent_off":
        return basket * offer.value // 100
    return min(offer.value, basket)


def eligible_offers(
    offers: Sequence[Offer], *, basket_cents: int = REFERENCE_BASKET_CENTS
) -> list[Offer]:
    """The offerable ones, most valuable first (see the module docstring)."""
    return sorted(
        (offer for offer in offers if is_offerable(offer)),
        key=lambda o: (-offer_worth_cents(o, basket_cents), o.min_spend_cents, o.key),
    )
