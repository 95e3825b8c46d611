from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest
from crm_helpers import a_customer, empty_all_tables, run_concurrently
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from crm_store.clock import ManualClock
from crm_store.db import session_scope
from crm_store.errors import InvalidInput
from crm_store.surveys import (
    SurveyResponse,
    ask_survey,
    decline_survey,
    find_survey_response,
    list_survey_responses,
    nps_score,
    record_survey_response,
    survey_summary,
)


def test_nps_score() -> None:
    assert nps_score(promoters=6, detractors=2, answers=10) == 40.0
    assert nps_score(0, 0, 0) is None


def test_record_a_response_after_asking(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session)
    asked = ask_survey(
        session,
        conversation_id="c1",
        trigger="end_of_chat",
        channel="web",
        customer_id=customer.id,
        clock=clock,
    )
    clock.advance(timedelta(minutes=1))
    answered = record_survey_response(
        session,
        conversation_id="c1",
        trigger="end_of_chat",
        channel="web",
        csat=4,
        nps=9,
        comment="  很快  ",
        themes=["速度"],
        clock=clock,
    )
    assert answered.id == asked.id
    assert (answered.status, answered.csat, answered.nps, answered.comment, answered.themes) == (
        "answered",
        4,
        9,
        "很快",
        ("速度",),
    )
    assert answered.customer_id == customer.id and answered.answered_at == clock()


def test_a_repeated_submission_returns_the_existing_row(session: Session) -> None:
    first = record_survey_response(
        session, conversation_id="c2", trigger="after_handoff", channel="wechat", csat=5
    )
    again = record_survey_response(
        session, conversation_id="c2", trigger="after_handoff", channel="wechat", csat=1
    )
    assert again == first
    assert len(list_survey_responses(session)) == 1


def test_one_row_per_trigger_in_a_conversation(session: Session) -> None:
    record_survey_response(
        session, conversation_id="c3", trigger="end_of_chat", channel="web", csat=3
    )
    record_survey_response(
        session, conversation_id="c3", trigger="after_handoff", channel="web", csat=5
    )
    assert len(list_survey_responses(session)) == 2


def test_declined_surveys_are_kept_and_stay_declined(session: Session) -> None:
    declined = decline_survey(
        session, conversation_id="c4", trigger="post_purchase", channel="wechat"
    )
    assert declined.status == "declined"
    late = record_survey_response(
        session, conversation_id="c4", trigger="post_purchase", channel="wechat", csat=5
    )
    assert late == declined
    assert find_survey_response(session, conversation_id="c4", trigger="post_purchase") == declined


@pytest.mark.parametrize(
    "answers",
    [
        {"csat": 0},
        {"csat": 6},
        {"nps": 11},
        {"nps": -1},
        {},
        {"csat": 3, "themes": [""]},
        {"csat": 3, "trigger": "whenever"},
    ],
)
def test_invalid_answers_are_rejected(session: Session, answers: dict) -> None:
    with pytest.raises(InvalidInput):
        record_survey_response(
            session,
            **{"conversation_id": "c5", "trigger": "end_of_chat", "channel": "web", **answers},
        )
    assert find_survey_response(session, conversation_id="c5", trigger="end_of_chat") is None


def test_survey_summary(session: Session, clock: ManualClock) -> None:
    since = clock()
    for n, (csat, nps) in enumerate([(5, 10), (4, 9), (2, 3), (3, 7)]):
        record_survey_response(
            session,
            conversation_id=f"s{n}",
            trigger="end_of_chat",
            channel="web",
            csat=csat,
            nps=nps,
            clock=clock,
        )
    decline_survey(session, conversation_id="s9", trigger="end_of_chat", channel="web", clock=clock)
    ask_survey(session, conversation_id="s10", trigger="end_of_chat", channel="web", clock=clock)
    summary = survey_summary(session, since=since, until=since + timedelta(days=1))
    assert (summary.asked, summary.answered, summary.declined) == (6, 4, 1)
    assert summary.csat_average == 3.5
    assert summary.nps == 25.0  # 2 promoters, 1 detractor, 4 answers


def test_concurrent_submissions_store_one_answer(engine: Engine) -> None:
    """The same survey submitted twice at once (a retried webhook, two replicas): one row."""

    def submit(csat: int) -> SurveyResponse:
        with session_scope(engine) as session:
            return record_survey_response(
                session, conversation_id="race", trigger="end_of_chat", channel="web", csat=csat
            )

    try:
        first, second = run_concurrently(partial(submit, 5), partial(submit, 1))
        with session_scope(engine) as session:
            rows = [r for r in list_survey_responses(session) if r.conversation_id == "race"]
        assert first.id == second.id and len(rows) == 1
        assert rows[0].status == "answered" and rows[0].csat in (5, 1)
    finally:
        empty_all_tables(engine)


def test_a_comments_polarity_is_kept_and_checked(session: Session) -> None:
    answered = record_survey_response(
        session,
        conversation_id="c-polar",
        trigger="end_of_chat",
        channel="web",
        csat=5,
        comment="等了好久，不太满意",
        polarity="negative",
    )
    assert answered.polarity == "negative"  # what the words say, whatever the score
    no_comment = record_survey_response(
        session,
        conversation_id="c-none",
        trigger="end_of_chat",
        channel="web",
        csat=4,
        polarity="positive",
    )
    assert no_comment.polarity is None  # a polarity needs a comment to describe
    with pytest.raises(InvalidInput):
        record_survey_response(
            session,
            conversation_id="c-bad",
            trigger="end_of_chat",
            channel="web",
            csat=3,
            comment="还行",
            polarity="angry",
        )
