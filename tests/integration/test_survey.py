"""Surveys end to end over REST: completed, botched and skipped, and what the CRM keeps."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from crm_store.customers import create_customer
from crm_store.identities import link_identity
from crm_store.models import SurveyResponse
from crm_store.segments import list_tags
from crm_store.surveys import record_survey_response
from crm_store.tickets import list_tickets
from tests.integration.system import System
from tests.integration.test_care import crm, said

pytestmark = pytest.mark.integration


def survey_rows(system: System, sender: str) -> list[SurveyResponse]:
    with crm(system) as session:
        query = select(SurveyResponse).where(SurveyResponse.conversation_id == f"rest:{sender}")
        rows = list(session.scalars(query))
        session.expunge_all()
    return rows


def a_member(system: System, last_survey_days_ago: int | None = None) -> tuple[str, int]:
    """A member known to the REST back end by a user id (the sender), surveyed that long ago, if
    ever: the demo customers are shared with other tests, whose surveys would change what is
    due."""
    sender = f"u{uuid.uuid4().hex[:12]}"
    with crm(system) as session:
        member = create_customer(session, name="陈静", phone=f"136{uuid.uuid4().int % 10**8:08d}")
        link_identity(session, customer_id=member.id, kind="rest_user", value=sender)
        if last_survey_days_ago is not None:
            then = datetime.now(timezone.utc) - timedelta(days=last_survey_days_ago)
            record_survey_response(
                session,
                conversation_id=f"{sender}-earlier",
                trigger="end_of_chat",
                channel="web",
                csat=5,
                nps=10,
                customer_id=member.id,
                clock=lambda: then,
            )
    return sender, member.id


def test_a_member_completes_a_survey_as_a_detractor_and_gets_a_follow_up(system: System) -> None:
    sender, member_id = a_member(system, last_survey_days_ago=30)  # CSAT due, NPS not (90 days)
    system.say(sender, "帮我查下积分")
    assert said(system.say(sender, "好的，再见"), "utter_ask_survey_csat")
    assert said(system.say(sender, "2分吧"), "utter_ask_survey_comment")
    [row] = survey_rows(system, sender)  # stored and followed up before the survey ends
    assert (row.status, row.csat) == ("partial", 2)
    with crm(system) as session:
        assert any("survey" in t.subject for t in list_tickets(session, customer_id=member_id))
    replies = system.say(sender, "快递太慢了，等了一个星期")

    assert said(replies, "utter_survey_detractor")
    [row] = survey_rows(system, sender)
    assert (row.status, row.csat, row.nps, row.trigger) == ("answered", 2, None, "end_of_chat")
    assert "物流" in row.themes
    with crm(system) as session:
        assert any("survey" in t.subject for t in list_tickets(session, customer_id=member_id))
        assert "callback" in list_tags(session, customer_id=member_id)


def test_a_csat_is_kept_when_the_survey_is_left_or_skipped_after_it(system: System) -> None:
    """Issue 16: the CSAT is in the CRM as soon as it is given; "跳过" afterwards keeps it."""
    sender, _ = a_member(system)  # never surveyed: CSAT and NPS are due
    system.say(sender, "帮我查下积分")
    assert said(system.say(sender, "再见"), "utter_ask_survey_csat")
    assert said(system.say(sender, "4分"), "utter_ask_survey_nps")
    [row] = survey_rows(system, sender)  # a customer who walks away now leaves this row
    assert (row.status, row.csat, row.nps) == ("partial", 4, None)
    assert said(system.say(sender, "跳过"), "utter_survey_declined")
    [row] = survey_rows(system, sender)
    assert (row.status, row.csat, row.nps) == ("partial", 4, None)


def test_an_anonymous_sender_is_not_surveyed(system: System) -> None:
    sender = f"anon-{uuid.uuid4().hex}"  # nobody's identity: anyone could stuff the results
    system.say(sender, "你们开发票吗")
    replies = system.say(sender, "拜拜")
    assert replies and not said(replies, "utter_ask_survey_csat")
    assert survey_rows(system, sender) == []


def test_a_botched_survey_is_asked_again_twice_then_stored_as_incomplete(system: System) -> None:
    sender, _ = a_member(system, last_survey_days_ago=30)
    system.say(sender, "你们开发票吗")
    assert said(system.say(sender, "拜拜"), "utter_ask_survey_csat")
    assert said(system.say(sender, "六颗星"), "utter_survey_csat_hint")
    assert said(system.say(sender, "abc"), "utter_survey_csat_hint")
    assert said(system.say(sender, "随便"), "utter_survey_incomplete")
    [row] = survey_rows(system, sender)
    assert row.status == "asked" and row.csat is None


def test_a_skipped_survey_is_stored_as_declined(system: System) -> None:
    sender, _ = a_member(system, last_survey_days_ago=30)
    system.say(sender, "你们开发票吗")
    assert said(system.say(sender, "再见"), "utter_ask_survey_csat")
    assert said(system.say(sender, "跳过"), "utter_survey_declined")
    [row] = survey_rows(system, sender)
    assert row.status == "declined"


def test_a_follow_up_visit_from_the_scheduler_names_the_product(system: System) -> None:
    sender, _ = a_member(system)  # never surveyed: CSAT and NPS are due
    body = {"name": "EXTERNAL_survey", "entities": {"product": "电热水壶"}}
    conversation = f"rest:{sender}"  # where the member answers through the REST channel
    status, answer = system.post(f"/conversations/{conversation}/trigger_intent", body, token=True)

    assert status == 200, answer
    texts = [m.get("text", "") for m in answer["messages"]]
    assert any("电热水壶" in text for text in texts) and said(
        answer["messages"], "utter_ask_survey_csat"
    )
    assert said(system.say(sender, "5"), "utter_ask_survey_nps")
    assert said(system.say(sender, "打九分"), "utter_ask_survey_comment")
    assert said(system.say(sender, "没有"), "utter_survey_thanks")
    [row] = survey_rows(system, sender)
    assert (row.trigger, row.csat, row.nps, row.comment) == ("post_purchase", 5, 9, None)
