"""Analytics on a hand-built book of customers; every expected figure is worked out below."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from crm_helpers import NOW, an_air_fryer
from sqlalchemy.orm import Session

from crm_store.analytics import (
    RFM_RULES,
    get_customer_metrics,
    lifecycle_stage_counts,
    list_churn_risks,
    refresh_customer_metrics,
    refresh_segment,
    rfm_segment,
    rfm_segment_counts,
)
from crm_store.clock import fixed
from crm_store.customers import create_customer
from crm_store.errors import NotFound
from crm_store.interactions import log_interaction
from crm_store.orders import NewItem, create_order
from crm_store.segments import create_segment, list_segment_members
from crm_store.surveys import record_survey_answer, record_survey_response


def days_ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


def _customer(session: Session, name: str, created_days_ago: int = 800) -> int:
    return create_customer(session, name=name, clock=fixed(days_ago(created_days_ago))).id


def _orders(
    session: Session, customer_id: int, days: list[int], cents: int, status: str = "paid"
) -> None:
    for day in days:
        create_order(
            session,
            customer_id=customer_id,
            status=status,
            clock=fixed(days_ago(day)),
            items=[NewItem("AF-01", unit_price_cents=cents)],
        )


@pytest.fixture
def book(session: Session) -> dict[str, int]:
    """A..E buy, P never bought, N signed up 10 days ago; ids ascend A to N."""
    an_air_fryer(session)
    ids = {name: _customer(session, name) for name in "ABCDEP"}
    ids["N"] = _customer(session, "N", created_days_ago=10)
    _orders(session, ids["A"], [5, 40, 100, 150, 200], 10_000)
    _orders(session, ids["B"], [20, 300], 50_000)
    _orders(session, ids["C"], [60], 5_000)
    _orders(session, ids["C"], [1], 999_999, status="cancelled")  # never counts
    _orders(session, ids["D"], [200, 400, 500, 600], 20_000)
    _orders(session, ids["E"], [400], 300_000)
    # B chatted 4 times 200 days ago and once 30 days ago: turn drop 1 - 1 * 3 / 4 = 0.25.
    for n, day in enumerate([200, 200, 200, 200, 30]):
        log_interaction(
            session,
            conversation_id=f"b{n}",
            channel="web",
            speaker="customer",
            customer_id=ids["B"],
            clock=fixed(days_ago(day)),
        )
    record_survey_answer(  # a survey left after a CSAT of 2 is negative feedback too
        session,
        conversation_id="b4",
        trigger="end_of_chat",
        channel="web",
        csat=2,
        customer_id=ids["B"],
        clock=fixed(days_ago(10)),
    )
    record_survey_response(
        session,
        conversation_id="a-old",
        trigger="end_of_chat",
        channel="web",
        csat=1,
        customer_id=ids["A"],
        clock=fixed(days_ago(100)),
    )  # too old
    assert refresh_customer_metrics(session, clock=fixed(NOW)) == 7
    return ids


def test_every_score_pair_has_a_segment() -> None:
    names = {rfm_segment(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert names == {rule[0] for rule in RFM_RULES}
    assert rfm_segment(None, None) == "prospect"


# Recency ranks E(400d) D(200d) C(60d) B(20d) A(5d); frequency C(1) E(1, later id) B(2) D(4) A(5);
# monetary C(5,000) A(50,000) D(80,000) B(100,000) E(300,000).
EXPECTED_RFM = {
    "A": (5, 5, 2, "champions"),
    "B": (4, 3, 4, "loyal"),
    "C": (3, 1, 1, "about_to_sleep"),
    "D": (2, 4, 3, "at_risk"),
    "E": (1, 2, 5, "lost"),
    "P": (None, None, None, "prospect"),
    "N": (None, None, None, "prospect"),
}
# churn = 100 * (0.4 recency + 0.3 order drop + 0.15 turn drop + 0.15 negative feedback)
# A: 0. B: 0.15*0.25 + 0.15 = 18.75 -> 19. C: 0.4*0.25 = 10. D: 0.4*0.75 + 0.3*1 = 60.
# E: 0.4*1 + 0.3*1 = 70. P: recency from sign-up, 0.4*1 = 40. N: 0.
# clv = monetary + spend_365 * 3 * (1 - churn/100)
EXPECTED = {
    "A": (0, 50_000 + 50_000 * 3, "loyal"),
    "B": (19, 100_000 + 243_000, "maintaining"),
    "C": (10, 5_000 + 13_500, "converting"),
    "D": (60, 80_000 + 24_000, "churning"),
    "E": (70, 300_000, "churning"),
    "P": (40, 0, "converting"),
    "N": (0, 0, "new"),
}


@pytest.mark.parametrize("name", list("ABCDEPN"))
def test_metrics_match_hand_computed_values(
    session: Session, book: dict[str, int], name: str
) -> None:
    metrics = get_customer_metrics(session, customer_id=book[name])
    assert (metrics.r_score, metrics.f_score, metrics.m_score, metrics.rfm_segment) == EXPECTED_RFM[
        name
    ]
    assert (metrics.churn_risk, metrics.clv_cents, metrics.lifecycle_stage) == EXPECTED[name]


def test_frequency_and_monetary_ignore_cancelled_orders(
    session: Session, book: dict[str, int]
) -> None:
    metrics = get_customer_metrics(session, customer_id=book["C"])
    assert (metrics.frequency, metrics.monetary_cents) == (1, 5_000)
    assert metrics.last_order_at == days_ago(60)


def test_counts_and_churn_list(session: Session, book: dict[str, int]) -> None:
    assert rfm_segment_counts(session) == {
        "champions": 1,
        "loyal": 1,
        "about_to_sleep": 1,
        "at_risk": 1,
        "lost": 1,
        "prospect": 2,
    }
    assert lifecycle_stage_counts(session) == {
        "loyal": 1,
        "maintaining": 1,
        "converting": 2,
        "churning": 2,
        "new": 1,
    }
    assert [m.customer_id for m in list_churn_risks(session, min_risk=60)] == [book["E"], book["D"]]


def test_refresh_segment_materialises_members(session: Session, book: dict[str, int]) -> None:
    create_segment(session, key="win_back", name="挽回")
    assert (
        refresh_segment(session, key="win_back", rfm_segments=("at_risk", "lost"), clock=fixed(NOW))
        == 2
    )
    assert list_segment_members(session, key="win_back") == sorted([book["D"], book["E"]])
    assert refresh_segment(session, key="win_back", lifecycle_stages=("new",)) == 1
    with pytest.raises(NotFound):
        refresh_segment(session, key="nope")


def test_refresh_replaces_old_metrics(session: Session, book: dict[str, int]) -> None:
    _orders(session, book["E"], [1], 10_000)
    refresh_customer_metrics(session, clock=fixed(NOW))
    assert get_customer_metrics(session, customer_id=book["E"]).frequency == 2
    with pytest.raises(NotFound):
        get_customer_metrics(session, customer_id=999_999)
