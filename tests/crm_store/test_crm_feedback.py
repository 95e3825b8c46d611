from __future__ import annotations

import pytest
from crm_helpers import a_customer
from sqlalchemy.orm import Session

from crm_store.clock import ManualClock
from crm_store.errors import InvalidInput
from crm_store.feedback import list_feedback, record_feedback


def test_feedback_is_kept_with_its_themes_and_polarity(
    session: Session, clock: ManualClock
) -> None:
    customer = a_customer(session)
    kept = record_feedback(
        session,
        conversation_id="web-1",
        channel="web",
        text="快递太慢了，不过东西质量不错",
        themes=["物流", "质量"],
        polarity="negative",
        customer_id=customer.id,
        clock=clock,
    )
    assert list_feedback(session) == [kept]
    assert kept.themes == ("物流", "质量") and kept.customer_id == customer.id


@pytest.mark.parametrize(
    ("channel", "text", "polarity"),
    [("fax", "好", "positive"), ("web", "   ", "positive"), ("web", "好", "happy")],
)
def test_bad_feedback_is_refused(session: Session, channel: str, text: str, polarity: str) -> None:
    with pytest.raises(InvalidInput):
        record_feedback(
            session, conversation_id="c", channel=channel, text=text, themes=[], polarity=polarity
        )
