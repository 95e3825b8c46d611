"""Issue 15: erasure, export, retention and consent history, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from crm_helpers import a_customer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_store.agent_notes import add_note
from crm_store.audit import list_audit_entries, record_audit
from crm_store.campaigns import create_campaign
from crm_store.clock import ManualClock
from crm_store.customers import get_consents, get_customer, set_consent, update_customer
from crm_store.dashboard import FIGURES, DashboardFilter, read_figure
from crm_store.deliveries import find_delivery, record_delivery
from crm_store.feedback import record_feedback
from crm_store.handoffs import request_handoff
from crm_store.identities import link_identity
from crm_store.interactions import ensure_conversation, log_interaction
from crm_store.login_codes import issue_login_code
from crm_store.models import Base, ConsentChange, Interaction, LoginCode, WebChatMessage
from crm_store.outbox import enqueue_care_message
from crm_store.personal_data import (
    ERASED_TEXT,
    RetentionPolicy,
    apply_retention,
    erasure_targets,
    export_customer,
    forget_conversation,
    forget_customer,
)
from crm_store.staff import create_staff_user
from crm_store.surveys import record_survey_response
from crm_store.tickets import open_ticket
from crm_store.webchat import store_message

PHONE = "13912345678"
OPENID = "o_forget_me_openid"
SESSION = "web-" + "ab" * 16
WORDS = {
    "turn": "我住在幸福路88号，电话13912345678",
    "survey": "送货员态度很好，赵女士很满意",
    "feedback": "赵女士说热水壶漏水",
    "ticket": "赵女士的热水壶漏水投诉",
    "note": "赵女士要求下午回电",
    "mailbox": "幸福路88号的快递到了吗",
}
NAME = "赵秀英"
# Verbatims are the member's words: they go. Everything else must read the same.
VERBATIM_FIGURES = {"comments", "misunderstood", "follow-ups"}


def a_member_who_chatted(session: Session, clock: ManualClock) -> int:
    """A member who chats on WeChat and on the web (anonymous, then identified by a code),
    answers a survey, gives feedback, opens a ticket and is handed to an agent."""
    customer = a_customer(session, name=NAME, phone=PHONE, email="zhao@example.com", clock=clock)
    link_identity(session, customer_id=customer.id, kind="wechat_openid", value=OPENID)
    link_identity(session, customer_id=customer.id, kind="web_session", value=SESSION)
    set_consent(
        session,
        customer_id=customer.id,
        category="offer",
        granted=True,
        source="chat",
        channel="wechat",
        clock=clock,
    )
    for conversation, channel in ((OPENID, "wechat"), (SESSION, "web")):
        ensure_conversation(
            session,
            conversation_id=conversation,
            channel=channel,
            customer_id=customer.id,
            clock=clock,
        )
        log_interaction(
            session,
            conversation_id=conversation,
            channel=channel,
            speaker="customer",
            text=WORDS["turn"],
            intent="nlu_fallback",
            customer_id=customer.id,
            event_key=f"{conversation}:user:1796286377.93",  # as the event broker keys it
            clock=clock,
        )
        log_interaction(
            session,
            conversation_id=conversation,
            channel=channel,
            speaker="bot",
            text=f"{NAME}您好",
            customer_id=customer.id,
            clock=clock,
        )
    record_survey_response(
        session,
        conversation_id=OPENID,
        trigger="end_of_chat",
        channel="wechat",
        csat=2,
        nps=3,
        comment=WORDS["survey"],
        themes=["物流"],
        polarity="negative",
        customer_id=customer.id,
        clock=clock,
    )
    record_feedback(
        session,
        conversation_id=OPENID,
        channel="wechat",
        text=WORDS["feedback"],
        themes=["质量"],
        polarity="negative",
        customer_id=customer.id,
        clock=clock,
    )
    open_ticket(
        session,
        customer_id=customer.id,
        kind="complaint",
        subject=WORDS["ticket"],
        description=WORDS["ticket"],
        conversation_id=OPENID,
        clock=clock,
    )
    handoff = request_handoff(
        session,
        conversation_id=SESSION,
        channel="web",
        reason="customer_request",
        customer_id=customer.id,
        clock=clock,
    )
    agent = create_staff_user(session, username="agent_x", display_name="客服", role="agent")
    add_note(session, handoff_id=handoff.id, author_id=agent.id, text=WORDS["note"], clock=clock)
    store_message(
        session, session_id=SESSION, sender="user", payload={"text": WORDS["mailbox"]}, clock=clock
    )
    issue_login_code(
        session,
        phone=PHONE,
        client=SESSION,
        customer_id=customer.id,
        code="482913",
        valid_for=timedelta(minutes=5),
        attempts=3,
        clock=clock,
    )
    for phone in ("13912345679", PHONE):
        update_customer(session, customer_id=customer.id, phone=phone, actor="staff:1", clock=clock)
    session.flush()
    return customer.id


def everything_stored(session: Session) -> str:
    """Every row of every table as text."""
    rows = []
    for table in Base.metadata.sorted_tables:
        rows += [repr(tuple(row)) for row in session.execute(select(table))]
    return json.dumps(rows, ensure_ascii=False)


def dashboard(session: Session, clock: ManualClock) -> dict[str, Any]:
    window = DashboardFilter(since=clock() - timedelta(days=30), until=clock() + timedelta(days=1))
    return {
        name: read_figure(session, name, window) for name in FIGURES if name not in VERBATIM_FIGURES
    }


def test_forget_erases_every_trace_and_keeps_the_dashboard(
    session: Session, clock: ManualClock
) -> None:
    customer_id = a_member_who_chatted(session, clock)
    before = dashboard(session, clock)
    stored = everything_stored(session)
    assert NAME in stored and PHONE in stored and OPENID in stored and WORDS["turn"] in stored

    targets = erasure_targets(session, customer_id=customer_id)
    assert {OPENID, SESSION} <= targets.sender_ids and targets.openids == {OPENID}
    result = forget_customer(session, customer_id=customer_id, actor="cli:dpo", clock=clock)
    session.flush()

    stored = everything_stored(session)
    for trace in (NAME, PHONE, OPENID, SESSION, "zhao@example.com", *WORDS.values(), "幸福路"):
        assert trace not in stored, trace
    assert dashboard(session, clock) == before
    assert get_customer(session, customer_id=customer_id).erased_at is not None
    assert not any(get_consents(session, customer_id=customer_id).values())
    assert result.counts["conversations"] == 2 and result.counts["channel_identities"] == 2
    entries = list_audit_entries(session, entity="customer", entity_id=customer_id)
    erasure = [entry for entry in entries if entry.action == "forget_customer"]
    assert [entry.actor for entry in erasure] == ["cli:dpo"]
    assert all(entry.changes == {"erased": True} for entry in entries if entry not in erasure)


def test_forget_keeps_the_consent_history_and_the_scores(
    session: Session, clock: ManualClock
) -> None:
    customer_id = a_member_who_chatted(session, clock)
    history = session.scalar(select(func.count()).select_from(ConsentChange))
    forget_customer(session, customer_id=customer_id, actor="cli:dpo", clock=clock)
    assert session.scalar(select(func.count()).select_from(ConsentChange)) == history
    survey = export_customer(session, customer_id=customer_id)["surveys"][0]
    assert (survey["csat"], survey["nps"], survey["themes"]) == (2, 3, ["物流"])
    assert survey["comment"] == ERASED_TEXT


def test_forgetting_twice_is_harmless(session: Session, clock: ManualClock) -> None:
    customer_id = a_member_who_chatted(session, clock)
    forget_customer(session, customer_id=customer_id, actor="cli:dpo", clock=clock)
    again = forget_customer(session, customer_id=customer_id, actor="cli:dpo", clock=clock)
    assert again.counts["conversations"] == 2  # renamed again: still no one's id
    assert again.counts["channel_identities"] == 0


def test_export_holds_everything_and_round_trips_as_json(
    session: Session, clock: ManualClock
) -> None:
    customer_id = a_member_who_chatted(session, clock)
    document = export_customer(session, customer_id=customer_id)
    assert json.loads(json.dumps(document, ensure_ascii=False)) == document
    assert document["customer"]["name"] == NAME and document["customer"]["phone"] == PHONE
    assert {i["value"] for i in document["identities"]} == {OPENID, SESSION}
    turns = [t["text"] for c in document["conversations"] for t in c["turns"]]
    assert turns.count(WORDS["turn"]) == 2
    assert document["surveys"][0]["comment"] == WORDS["survey"]
    assert document["feedback"][0]["text"] == WORDS["feedback"]
    assert document["tickets"][0]["subject"] == WORDS["ticket"]
    assert document["handoffs"][0]["notes"][0]["text"] == WORDS["note"]
    consents = {(c["category"], c["granted"], c["channel"]) for c in document["consent_history"]}
    assert ("offer", True, "wechat") in consents and ("offer", False, "web") in consents
    for section in ("orders", "order_items", "points_ledger", "coupons", "care_messages"):
        assert document[section] == []


def test_forget_renames_the_conversation_a_care_message_was_delivered_to(
    session: Session, clock: ManualClock
) -> None:
    """A delivery record (issue 18) names the conversation, a channel identity: erasure gives
    it the conversation's new anonymous id, and the export lists it before."""
    customer_id = a_member_who_chatted(session, clock)
    create_campaign(session, key="tips", name="养护贴士", kind="care_tip", category="care")
    message, _ = enqueue_care_message(
        session,
        customer_id=customer_id,
        campaign_key="tips",
        period="2026-11",
        channel="wechat",
        clock=clock,
    )
    record_delivery(
        session, care_message_id=message.id, conversation_id=OPENID, channel="wechat", clock=clock
    )
    [exported] = export_customer(session, customer_id=customer_id)["care_deliveries"]
    assert (exported["care_message_id"], exported["conversation_id"]) == (message.id, OPENID)
    forget_customer(session, customer_id=customer_id, actor="cli:dpo", clock=clock)
    session.flush()
    delivery = find_delivery(session, care_message_id=message.id)
    assert delivery is not None and delivery.conversation_id.startswith("erased:")
    assert OPENID not in everything_stored(session)


def test_retention_anonymises_old_turns_and_deletes_old_mail_and_codes(
    session: Session, clock: ManualClock
) -> None:
    customer_id = a_member_who_chatted(session, clock)
    before = dashboard(session, clock)
    policy = RetentionPolicy(interaction_text_days=90, mailbox_days=30, login_code_days=2)
    assert apply_retention(session, policy=policy, clock=clock) == {
        "interaction_texts": 0,
        "webchat_messages": 0,
        "login_codes": 0,
    }
    clock.advance(timedelta(days=31))
    counts = apply_retention(session, policy=policy, clock=clock)
    assert counts == {"interaction_texts": 0, "webchat_messages": 1, "login_codes": 1}
    assert session.scalar(select(func.count()).select_from(WebChatMessage)) == 0
    assert session.scalar(select(func.count()).select_from(LoginCode)) == 0
    clock.advance(timedelta(days=60))
    assert apply_retention(session, policy=policy, clock=clock)["interaction_texts"] == 4
    texts = session.scalars(select(Interaction.text).where(Interaction.customer_id == customer_id))
    assert set(texts) == {None}
    clock.advance(timedelta(days=-91))
    assert dashboard(session, clock) == before  # counts read rows, not their text


def test_retention_periods_come_from_the_environment() -> None:
    policy = RetentionPolicy.from_env(
        {"CAREBOT_RETENTION_MAILBOX_DAYS": "7", "CAREBOT_RETENTION_LOGIN_CODE_DAYS": "3"}
    )
    assert (policy.mailbox_days, policy.login_code_days) == (7, 3)
    assert policy.interaction_text_days == RetentionPolicy().interaction_text_days


def test_consent_history_keeps_every_change_with_its_channel(
    session: Session, clock: ManualClock
) -> None:
    customer = a_customer(session, preferred_channel="wechat", clock=clock)
    for granted, channel in ((False, "wechat"), (True, "web")):
        clock.advance(timedelta(hours=1))
        set_consent(
            session,
            customer_id=customer.id,
            category="care",
            granted=granted,
            source="chat",
            channel=channel,
            clock=clock,
        )
    changes = session.execute(
        select(ConsentChange.granted, ConsentChange.channel, ConsentChange.source)
        .where(ConsentChange.customer_id == customer.id, ConsentChange.category == "care")
        .order_by(ConsentChange.changed_at)
    ).all()
    assert [tuple(change) for change in changes] == [
        (True, "wechat", "signup"),
        (False, "wechat", "chat"),
        (True, "web", "chat"),
    ]


def test_the_audit_log_stores_phones_masked(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session, phone="13800138000", clock=clock)
    update_customer(session, customer_id=customer.id, phone="13900139000", actor="staff:1")
    record_audit(
        session,
        actor="x",
        action="note",
        entity="customer",
        entity_id=1,
        changes={"t": "138 0013 8000"},
    )
    stored = json.dumps(
        [entry.changes for entry in list_audit_entries(session)], ensure_ascii=False
    )
    assert "13800138000" not in stored and "13900139000" not in stored
    assert "138****8000" in stored and "139****9000" in stored


def test_an_unfollowed_openid_loses_its_history_and_the_member_the_rest(
    session: Session, clock: ManualClock
) -> None:
    customer_id = a_member_who_chatted(session, clock)
    before = dashboard(session, clock)
    counts = forget_conversation(session, conversation_id=OPENID, actor="wechat", clock=clock)
    assert counts["conversations"] == 1 and counts["interactions"] == 2
    stored = everything_stored(session)
    for trace in (WORDS["survey"], WORDS["feedback"], WORDS["ticket"]):  # all said on WeChat
        assert trace not in stored, trace
    assert f"'{OPENID}'" not in stored.replace(f"'wechat_openid', '{OPENID}'", "")
    assert WORDS["note"] in stored and WORDS["mailbox"] in stored  # the web chat stays
    assert get_customer(session, customer_id=customer_id).name == NAME
    assert dashboard(session, clock) == before
