from __future__ import annotations

import pytest

from actions.rules.offers import (
    POINT_VALUE_CENTS,
    REFERENCE_BASKET_CENTS,
    eligible_offers,
    is_offerable,
    offer_worth_cents,
)
from crm_store.offers import Offer


def _offer(key: str, kind: str, value: int, min_spend: int = 0, active: bool = True) -> Offer:
    return Offer(
        id=hash(key) % 1000,
        key=key,
        name=key,
        kind=kind,
        value=value,
        min_spend_cents=min_spend,
        valid_days=30,
        active=active,
    )


@pytest.mark.parametrize(
    ("offer", "offerable"),
    [
        (_offer("ten_off", "amount_off", 1_000), True),
        (_offer("pct", "percent_off", 10), True),
        (_offer("pts", "points", 500), True),
        (_offer("old", "amount_off", 1_000, active=False), False),
        (_offer("free", "percent_off", 100), False),
        (_offer("zero", "amount_off", 0), False),
        (_offer("odd", "cashback", 500), False),
        (_offer("win_back_2026-H2_l3", "amount_off", 10_000, 50_000), False),  # one customer's
        (_offer("birthday_2026_gold", "amount_off", 5_000, 20_000), False),
    ],
)
def test_is_offerable(offer: Offer, offerable: bool) -> None:
    assert is_offerable(offer) is offerable


@pytest.mark.parametrize(
    ("offer", "basket", "worth"),
    [
        (_offer("a", "amount_off", 2_000), REFERENCE_BASKET_CENTS, 2_000),
        (_offer("a", "amount_off", 2_000), 1_000, 1_000),  # never more than the order
        (_offer("a", "amount_off", 10_000, min_spend=99_900), 1_000, 10_000),
        (_offer("p", "percent_off", 10), REFERENCE_BASKET_CENTS, 5_000),
        (_offer("p", "percent_off", 10), 249_900, 24_990),
        (_offer("p", "percent_off", 5, min_spend=200_000), 50_000, 10_000),
        (_offer("n", "points", 3_000), REFERENCE_BASKET_CENTS, 3_000 * POINT_VALUE_CENTS),
    ],
)
def test_offer_worth_cents(offer: Offer, basket: int, worth: int) -> None:
    assert offer_worth_cents(offer, basket) == worth


CATALOGUE = [
    _offer("win_back_20", "amount_off", 2_000),
    _offer("ten_percent", "percent_off", 10),
    _offer("double_points", "points", 1_000),
    _offer("big_spender", "amount_off", 5_000, min_spend=100_000),
    _offer("expired_50", "amount_off", 5_000, active=False),
    _offer("broken", "percent_off", 120),
]


@pytest.mark.parametrize(
    ("basket", "keys"),
    [
        # 500 元: 10% is 50 元, tied with 50 元 off 1000 元 (lower minimum spend first)
        (REFERENCE_BASKET_CENTS, ["ten_percent", "big_spender", "win_back_20", "double_points"]),
        # 100 元: 10% and 1,000 points are both worth 10 元, a tie broken by key
        (10_000, ["big_spender", "win_back_20", "double_points", "ten_percent"]),
        (300_000, ["ten_percent", "big_spender", "win_back_20", "double_points"]),
    ],
)
def test_eligible_offers_best_first(basket: int, keys: list[str]) -> None:
    assert [o.key for o in eligible_offers(CATALOGUE, basket_cents=basket)] == keys


def test_no_offers() -> None:
    assert eligible_offers([]) == []
    assert eligible_offers([_offer("old", "points", 100, active=False)]) == []
