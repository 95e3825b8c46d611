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
    complete_survey,
    decline_survey,
    find_survey_response,
    list_survey_responses,
    nps_score,
    record_survey_answer,
    record_survey_response,
    survey_summary,
)

WHERE = {"trigger": "end_of_chat", "channel": "web"}


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


def test_each_answer_is_stored_as_it_is_given(session: Session, clock: ManualClock) -> None:
    """Issue 16: a survey left after the CSAT keeps it; the row says what was answered."""
    customer = a_customer(session)
    asked = ask_survey(session, conversation_id="p1", customer_id=customer.id, clock=clock, **WHERE)
    assert (asked.status, asked.csat, asked.answered_at) == ("asked", None, None)

    clock.advance(timedelta(minutes=1))
    after_csat = record_survey_answer(session, conversation_id="p1", csat=2, clock=clock, **WHERE)
    assert (after_csat.id, after_csat.status, after_csat.csat, after_csat.nps) == (
        asked.id,
        "partial",
        2,
        None,
    )
    assert after_csat.answered_at == clock() and after_csat.customer_id == customer.id
    assert find_survey_response(session, conversation_id="p1", trigger="end_of_chat") == after_csat

    clock.advance(timedelta(minutes=1))
    after_nps = record_survey_answer(session, conversation_id="p1", nps=6, clock=clock, **WHERE)
    assert (after_nps.status, after_nps.csat, after_nps.nps) == ("partial", 2, 6)
    commented = record_survey_answer(
        session,
        conversation_id="p1",
        comment="物流太慢",
        themes=["物流"],
        polarity="negative",
        clock=clock,
        **WHERE,
    )
    assert (commented.csat, commented.nps, commented.comment) == (2, 6, "物流太慢")
    assert (commented.themes, commented.polarity, commented.status) == (
        ("物流",),
        "negative",
        "partial",
    )

    clock.advance(timedelta(minutes=1))
    done = complete_survey(session, conversation_id="p1", clock=clock, **WHERE)
    assert (done.status, done.csat, done.nps, done.comment) == ("answered", 2, 6, "物流太慢")
    assert done.answered_at == clock()


def test_a_repeated_answer_changes_nothing_and_a_correction_is_kept_until_the_end(
    session: Session, clock: ManualClock
) -> None:
    first = record_survey_answer(session, conversation_id="p2", csat=4, clock=clock, **WHERE)
    clock.advance(timedelta(minutes=1))
    again = record_survey_answer(session, conversation_id="p2", csat=4, clock=clock, **WHERE)
    assert again == first  # a repeated validation: not even the time moves
    corrected = record_survey_answer(session, conversation_id="p2", csat=2, clock=clock, **WHERE)
    assert (corrected.csat, corrected.answered_at) == (2, clock())
    done = complete_survey(session, conversation_id="p2", clock=clock, **WHERE)
    assert complete_survey(session, conversation_id="p2", clock=clock, **WHERE) == done
    late = record_survey_answer(session, conversation_id="p2", csat=5, nps=9, clock=clock, **WHERE)
    assert late == done and (late.csat, late.nps) == (2, None)  # finished: stays as it was


def test_a_survey_declined_after_an_answer_keeps_it_as_partial(session: Session) -> None:
    record_survey_answer(session, conversation_id="p3", csat=1, **WHERE)
    declined = decline_survey(session, conversation_id="p3", **WHERE)
    assert (declined.status, declined.csat) == ("partial", 1)
    assert decline_survey(session, conversation_id="p4", **WHERE).status == "declined"
    assert record_survey_answer(session, conversation_id="p4", csat=3, **WHERE).csat is None


def test_a_survey_that_ends_without_an_answer_stays_asked(session: Session) -> None:
    ask_survey(session, conversation_id="p5", **WHERE)
    assert complete_survey(session, conversation_id="p5", **WHERE).status == "asked"


@pytest.mark.parametrize(
    "answer",
    [{}, {"comment": "   "}, {"csat": 6}, {"nps": -1}, {"csat": 3, "polarity": "angry"}],
)
def test_an_answer_needs_something_valid(session: Session, answer: dict) -> None:
    ask_survey(session, conversation_id="p6", **WHERE)
    with pytest.raises(InvalidInput):
        record_survey_answer(session, conversation_id="p6", **WHERE, **answer)
    row = find_survey_response(session, conversation_id="p6", trigger="end_of_chat")
    assert row is not None and row.status == "asked"


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
    assert (summary.partial, summary.no_reply) == (0, 1)
    assert summary.csat_average == 3.5
    assert summary.nps == 25.0  # 2 promoters, 1 detractor, 4 answers

    record_survey_answer(session, conversation_id="s11", csat=1, clock=clock, **WHERE)
    record_survey_answer(session, conversation_id="s12", csat=5, clock=clock, **WHERE)
    decline_survey(session, conversation_id="s12", clock=clock, **WHERE)
    summary = survey_summary(session, since=since, until=since + timedelta(days=1))
    counts = (summary.answered, summary.partial, summary.declined, summary.no_reply)
    assert counts == (4, 2, 1, 1) and sum(counts) == summary.asked == 8
    assert summary.csat_average == 3.33  # (5 + 4 + 2 + 3 + 1 + 5) / 6: partial answers count


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
