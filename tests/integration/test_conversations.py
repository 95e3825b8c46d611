"""Scripted customer conversations end to end (tests/conversations/*.yml): each runs on the
session's one running system, over the REST channel with its credential or through the WeChat
simulator, as a fresh sender (and, where it needs one, a fresh member); every step's replies
are matched against domain.yml's responses, and the CRM rows are checked as the script says."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
import uuid
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from crm_store.campaigns.rules import half_year_period
from crm_store.outbox import enqueue_care_message
from tests.care_helpers import a_win_back_coupon
from tests.conversations import crm
from tests.conversations.script import (
    SCRIPTS_DIR,
    Conversation,
    Reply,
    Step,
    fill,
    fill_all,
    load_conversations,
    reply_mismatch,
    rest_reply,
    wechat_reply,
)
from tests.integration.system import TOKEN, System

pytestmark = pytest.mark.integration

# Another directory of scripts (e.g. a pending/ one) with CAREBOT_TEST_CONVERSATIONS.
CONVERSATIONS = load_conversations(Path(os.environ.get("CAREBOT_TEST_CONVERSATIONS", SCRIPTS_DIR)))
REPLY_TIMEOUT_S = 25.0  # WeChat: the last customer-service message of a turn
QUIET_S = 1.0  # WeChat: no further message for this long after the expected ones
CODE_TIMEOUT_S = 10.0


@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=[c.id for c in CONVERSATIONS])
def test_conversation(system: System, conversation: Conversation) -> None:
    run = Run(system, conversation)
    for number, step in enumerate(conversation.steps, start=1):
        run.take(step, f"step {number} ({step.label()})")
    run.check_crm(conversation.crm, "after the conversation")


class Run:
    """One conversation on the running system: its sender, its member, its replies so far."""

    def __init__(self, system: System, conversation: Conversation) -> None:
        self.system = system
        self.conversation = conversation
        self.channel = conversation.channel
        self.database_url = f"sqlite:///{system.var_dir / 'crm.db'}"
        if self.channel == "wechat":
            self.sender = f"o_conv_{uuid.uuid4().hex[:16]}"
        else:
            self.sender = f"conv-{uuid.uuid4().hex[:16]}"
        self.conversation_id = crm.crm_conversation_id(self.channel, self.sender)
        self.log_start = system.log.stat().st_size
        self.shown: list[Reply] = []  # every reply so far
        self.wechat_seen = 0  # the simulator's last record id of this follower
        self.new_phone = crm.a_phone()
        self.other_phone: str | None = None  # another member's number, made when asked for
        now = crm.utcnow()
        with crm.crm_session(self.database_url) as session:
            crm.ensure_offers(session, conversation.offers)
            self.member = (
                crm.make_member(
                    session, conversation.member, channel=self.channel, sender=self.sender, now=now
                )
                if conversation.member is not None
                else None
            )

    # -- placeholders ------------------------------------------------------------------------

    def resolve(self, name: str) -> str:
        head, _, key = name.partition(".")
        values = {
            "sender": lambda: self.sender,
            "new_phone": lambda: self.new_phone,
            "new_masked_phone": lambda: crm.masked(self.new_phone),
            "new_code": lambda: self.sms_code(self.new_phone),
            "other_phone": self.another_members_phone,
            "other_code": lambda: self.sms_code(self.another_members_phone()),
        }
        if head in values:
            return values[head]()
        member = self.member
        assert member is not None, f"{{{name}}} needs a member"
        if head == "order":
            return member.orders[key]
        if head == "expiry":
            return crm.local_day(member.expiries[key])
        if head == "warranty":
            return crm.long_day(member.warranties[key])
        if head == "member_id":
            return str(member.id)
        if head == "coupon":  # the member's newest coupon
            with crm.crm_session(self.database_url) as session:
                coupons = crm.coupons_of(session, member.id)
            assert coupons, "{coupon}: the member has no coupon"
            return str(coupons[-1]["code"])
        member_values = {
            "name": lambda: member.name,
            "phone": lambda: member.phone,
            "masked_phone": lambda: crm.masked(member.phone),
            "code": lambda: self.sms_code(member.phone),
            "wrong_code": lambda: f"{(int(self.sms_code(member.phone)) + 1) % 10**6:06d}",
        }
        if head not in member_values:
            raise AssertionError(f"unknown placeholder {{{name}}}")
        return member_values[head]()

    def another_members_phone(self) -> str:
        """The number of a second member, made for this conversation the first time."""
        if self.other_phone is None:
            with crm.crm_session(self.database_url) as session:
                self.other_phone = crm.another_member(session).phone
        return self.other_phone

    def sms_code(self, phone: str) -> str:
        """The latest one-time code the SMS stub logged for `phone` in this conversation."""
        pattern = rf"one-time code (\d{{6}}) to {re.escape(crm.masked(phone))}"
        deadline = time.monotonic() + CODE_TIMEOUT_S
        while True:
            with self.system.log.open("rb") as log:
                log.seek(self.log_start)
                codes = re.findall(pattern, log.read().decode(errors="replace"))
            if codes:
                return str(codes[-1])
            if time.monotonic() > deadline:
                raise AssertionError(f"no one-time code for {crm.masked(phone)} in the log")
            time.sleep(0.2)

    # -- a step ------------------------------------------------------------------------------

    def take(self, step: Step, where: str) -> None:
        replies = self.act(step)
        self.shown += replies
        mismatch = reply_mismatch(step.replies, replies, self.channel)
        assert mismatch is None, f"{self.conversation.id}, {where}: {mismatch}"
        said = "\n".join(reply.text for reply in replies)
        for text in step.mentions:
            wanted = fill(text, self.resolve)
            assert wanted in said, f"{where}: {wanted!r} not in the replies:\n{said}"
        for text in step.absent:
            unwanted = fill(text, self.resolve)
            assert unwanted not in said, f"{where}: {unwanted!r} in the replies:\n{said}"
        if step.buttons is not None:
            shown = [title for reply in replies for title, _ in reply.buttons]
            wanted_buttons = [fill(title, self.resolve) for title in step.buttons]
            assert shown == wanted_buttons, f"{where}: buttons {shown}, not {wanted_buttons}"
        self.check_crm(step.crm, where)

    def act(self, step: Step) -> list[Reply]:
        if step.trigger is not None:
            return self.trigger(step.trigger, len(step.replies))
        if self.channel == "wechat":
            if step.event is not None:
                event, _, key = step.event.partition(" ")
                body = {"event": event, **({"key": key} if key else {})}
                return self.wechat("event", body, len(step.replies))
            assert step.say is not None
            return self.wechat("send", {"text": fill(step.say, self.resolve)}, len(step.replies))
        text = self.payload_of(step.click) if step.click is not None else step.say
        assert text is not None
        return [rest_reply(m) for m in self.system.say(self.sender, fill(text, self.resolve))]

    def payload_of(self, title: str) -> str:
        """The payload of the button `title` the bot showed, the latest first (a click on a
        button of an earlier message still sends its payload, as on the web page)."""
        for reply in reversed(self.shown):
            for shown, payload in reply.buttons:
                if shown == fill(title, self.resolve) and payload:
                    return payload
        shown_titles = [t for reply in self.shown for t, _ in reply.buttons]
        raise AssertionError(f"no button {title!r} to click; the bot showed {shown_titles}")

    # -- proactive messages ------------------------------------------------------------------

    def trigger(self, spec: Mapping[str, Any], expected: int) -> list[Reply]:
        """An EXTERNAL_ intent through Rasa's HTTP API (the scheduler's way): a care message of
        a campaign, the follow-up survey about a product, or an order's update."""
        name, entities = self.trigger_intent(spec)
        rasa_id = f"rest:{self.sender}" if self.channel == "rest" else self.sender
        path = f"/conversations/{rasa_id}/trigger_intent?token={TOKEN}"
        if self.channel == "wechat":
            path += "&output_channel=wechat"
            since = self.wechat_seen
            status, answer = self.rasa_post(path, {"name": name, "entities": entities})
            assert status == 200, answer
            return self.wechat_replies(since, expected)
        status, answer = self.rasa_post(path, {"name": name, "entities": entities})
        assert status == 200, answer
        return [rest_reply(m) for m in answer.get("messages") or []]

    def trigger_intent(self, spec: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        if "care" in spec:
            assert self.member is not None, "a care message goes to a member"
            campaign, period = str(spec["care"]), str(spec.get("period", "2026"))
            with crm.crm_session(self.database_url) as session:
                if campaign == "win_back":  # planned with the message, the day before
                    planned = crm.utcnow() - timedelta(days=1)
                    period = half_year_period(planned.date())
                    a_win_back_coupon(session, self.member.id, period, planned)
                message, _ = enqueue_care_message(
                    session,
                    customer_id=self.member.id,
                    campaign_key=campaign,
                    period=period,
                    channel="wechat" if self.channel == "wechat" else "web",
                    # not due for the running scheduler: this test delivers it
                    scheduled_at=crm.utcnow() + timedelta(days=30),
                )
            return "EXTERNAL_care_message", {"care_message_id": message.id}
        if "survey" in spec:
            return "EXTERNAL_survey", {"product": str(spec["survey"])}
        if "order_update" in spec:
            return "EXTERNAL_order_update", {
                "order_id": self.resolve(f"order.{spec['order_update']}")
            }
        raise AssertionError(f"unknown trigger {dict(spec)}")

    def rasa_post(self, path: str, body: Any) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.system.rasa_url + path,
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            return int(answer.status), json.loads(answer.read())

    # -- WeChat ------------------------------------------------------------------------------

    def sim(self, method: str, path: str, body: Any = None) -> Any:
        assert self.system.wechat_sim_url, "carebot run starts the simulator without a real OA"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.system.wechat_sim_url + path,
            data,
            {"Content-Type": "application/json"},
            method=method,
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())

    def wechat(self, what: str, body: Any, expected: int) -> list[Reply]:
        """The follower sends a message or an event; what the OA sent back (the passive reply,
        then customer-service messages), once the expected number came and nothing more does."""
        since = self.wechat_seen
        result = self.sim("POST", f"/sim/api/users/{self.sender}/{what}", body)
        assert not result["failed"], result
        return self.wechat_replies(since, expected)

    def wechat_replies(self, since: int, expected: int) -> list[Reply]:
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        records: list[dict[str, Any]] = []
        changed = time.monotonic()
        while time.monotonic() < deadline:
            log = self.sim("GET", f"/sim/api/log?openid={self.sender}&since={since}")
            if len(log) != len(records):
                records, changed = log, time.monotonic()
            sent = [r for r in records if r["sender"] == "bot" and r["content"]]
            if len(sent) >= expected and time.monotonic() - changed >= QUIET_S:
                break
            time.sleep(0.2)
        if records:
            self.wechat_seen = max(int(r["id"]) for r in records)
        sent = [r for r in records if r["sender"] == "bot" and r["content"]]
        refused = [r for r in sent if r["errcode"] != 0]
        assert not refused, f"WeChat refused the bot's messages: {refused}"
        return [wechat_reply(str(r["content"])) for r in sent]

    # -- the CRM -----------------------------------------------------------------------------

    def check_crm(self, expected: Mapping[str, Any], where: str) -> None:
        if not expected:
            return
        wanted = fill_all(dict(expected), self.resolve)
        if "interactions" in wanted:
            self.wait_for_interactions(wanted["interactions"])
        with crm.crm_session(self.database_url) as session:
            for kind, want in wanted.items():
                problem = self.crm_mismatch(session, kind, want)
                assert problem is None, f"{self.conversation.id}, {where}, crm {kind}: {problem}"

    def crm_mismatch(self, session: Any, kind: str, want: Any) -> str | None:
        conversation = self.conversation_id
        by_conversation = {
            "survey_responses": crm.survey_responses_of,
            "handoffs": crm.handoffs_of,
            "feedback": crm.feedback_of,
        }
        if kind in by_conversation:
            rows = [self.member_ids(row) for row in want]
            return crm.rows_mismatch(by_conversation[kind](session, conversation), rows)
        if kind == "interactions":
            problems = crm.row_mismatch(crm.interactions_of(session, conversation), want)
            return "; ".join(problems) or None
        if kind == "conversation":
            found = crm.conversation_of(session, conversation)
            if found is None:
                return "no conversation in the CRM"
            return "; ".join(crm.row_mismatch(found, self.member_ids(want))) or None
        member = self.member
        assert member is not None, f"crm {kind} needs a member"
        if kind == "tickets":
            return crm.rows_mismatch(crm.tickets_of(session, member.id), want)
        if kind == "coupons":
            return crm.rows_mismatch(crm.coupons_of(session, member.id), want)
        if kind == "points":
            actual = crm.points_of(session, member)
            problems = crm.row_mismatch(actual, {k: v for k, v in want.items() if k != "new"})
            if "new" in want:
                entries = crm.rows_mismatch(actual["new"], want["new"])
                problems += [f"new ledger entries: {entries}"] if entries else []
            return "; ".join(problems) or None
        if kind == "consents":
            return "; ".join(crm.row_mismatch(crm.consents_of(session, member.id), want)) or None
        if kind == "identities":
            have = crm.identities_of(session, member.id)
            missing = [identity for identity in want if identity not in have]
            return f"{missing} not among {have}" if missing else None
        if kind == "phone":
            phone = crm.phone_of(session, member.id)
            return None if phone == want else f"the phone is {phone}, not {want}"
        if kind == "audit":
            return crm.rows_mismatch(crm.audit_of(session, member.id), want)
        raise AssertionError(f"unknown crm check {kind}")

    def member_ids(self, want: Mapping[str, Any]) -> dict[str, Any]:
        """`customer_id: member` stands for this conversation's member's id."""
        resolved = dict(want)
        if resolved.get("customer_id") == "member":
            assert self.member is not None
            resolved["customer_id"] = self.member.id
        return resolved

    def wait_for_interactions(self, want: Mapping[str, Any]) -> None:
        """The turn log is written by the Rasa server's event broker, a moment after a reply."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with crm.crm_session(self.database_url) as session:
                found = crm.interactions_of(session, self.conversation_id)
            if not crm.row_mismatch(found, want):
                return
            time.sleep(0.3)
