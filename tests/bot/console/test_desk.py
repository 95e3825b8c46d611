"""Working a conversation in the console: claim, reply, notes, transfer, take-over, close, the
live list and the wait timeout; what Rasa is asked to do at each step (a stub Rasa here; the
real one in tests/integration/test_handoff.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from bot.cli import main
from bot.console.conversation import RESUME
from bot.console.transcript import transcript
from crm_store.audit import list_audit_entries
from crm_store.db import session_scope
from crm_store.handoffs import get_handoff
from crm_store.interactions import ensure_conversation
from crm_store.masking import alias
from crm_store.staff import authenticate_staff
from tests.bot.console.conftest import Console


def _actions(console: Console, handoff_id: int) -> list[str]:
    with session_scope(console.crm) as session:
        entries = list_audit_entries(session, entity="handoff", entity_id=handoff_id)
    return [entry.action for entry in reversed(entries)]


async def test_claim_reply_and_close(console: Console, browsers: Any) -> None:
    handoff = console.waiting("web-flow", customer_id=1)
    agent = await browsers("agent")
    status, page = await agent.get("/queue")
    assert status == 200 and "王**" in page and "接入" in page
    assert "王小明" not in page  # masked for agents (docs/personal-data.md)
    status, _, location = await agent.post(f"/handoffs/{handoff.id}/claim")
    assert (status, location) == (303, f"/handoffs/{handoff.id}")
    sender, events, channel = console.rasa.appended[0]
    assert (sender, channel) == ("web-flow", "webchat")
    assert events[0] == {"event": "pause"}
    assert events[1]["text"] == "您好，我是客服小张，接下来由我为您服务。"
    assert events[1]["metadata"]["handled_by"] == "agent"
    assert events[1]["metadata"]["agent_id"] == console.staff_id("agent")

    status, page = await agent.get(f"/handoffs/{handoff.id}")
    assert status == 200 and "金卡" in page and "最近订单" in page and "发送" in page
    assert (await agent.post(f"/handoffs/{handoff.id}/reply", {"text": "  "}))[0] == 400
    assert (await agent.post(f"/handoffs/{handoff.id}/reply", {"text": "请稍等，我查一下"}))[
        0
    ] == 303
    assert console.rasa.appended[-1][1][0]["text"] == "请稍等，我查一下"

    console.rasa.trackers["web-flow"].append({"event": "user", "text": "好的", "timestamp": 1.0})
    status, body = await agent.get(f"/api/handoffs/{handoff.id}/transcript?after=nonsense")
    assert status == 200 and len(json.loads(body)["lines"]) == 4
    status, body = await agent.get(f"/api/handoffs/{handoff.id}/transcript?after=1")
    lines = json.loads(body)["lines"]
    assert [(line["speaker"], line["text"]) for line in lines] == [
        ("agent", "请稍等，我查一下"),
        ("customer", "好的"),
    ]

    status, _, location = await agent.post(f"/handoffs/{handoff.id}/close", {"outcome": "resolved"})
    assert (status, location) == (303, "/queue")
    assert console.rasa.appended[-1] == ("web-flow", RESUME, "webchat")
    assert console.rasa.triggered == [("web-flow", "EXTERNAL_handoff_closed", "webchat")]
    with session_scope(console.crm) as session:
        closed = get_handoff(session, handoff_id=handoff.id)
    assert (closed.state, closed.outcome) == ("closed", "resolved")
    assert _actions(console, handoff.id) == ["claim_handoff", "reply", "close_handoff"]


async def test_two_agents_claim_at_once_one_wins(console: Console, browsers: Any) -> None:
    first, second = await browsers("agent"), await browsers("agent2")
    for n in range(3):
        handoff = console.waiting(f"web-race-{n}")
        results = await asyncio.gather(
            first.post(f"/handoffs/{handoff.id}/claim"),
            second.post(f"/handoffs/{handoff.id}/claim"),
        )
        assert sorted(status for status, _, _ in results) == [303, 409]
    assert len(console.rasa.appended) == 3  # only the winners greeted their customer


async def test_others_conversations_stay_private(console: Console, browsers: Any) -> None:
    handoff = console.waiting("web-private")
    agent, other = await browsers("agent"), await browsers("agent2")
    await agent.post(f"/handoffs/{handoff.id}/claim")
    assert (await other.get(f"/handoffs/{handoff.id}"))[0] == 403
    assert (await other.get(f"/api/handoffs/{handoff.id}/transcript"))[0] == 403
    assert (await other.post(f"/handoffs/{handoff.id}/reply", {"text": "hi"}))[0] == 403
    close = await other.post(f"/handoffs/{handoff.id}/close", {"outcome": "resolved"})
    assert close[0] == 409
    assert (await agent.post(f"/handoffs/{handoff.id}/close", {"outcome": "bogus"}))[0] == 400
    assert (await agent.get("/handoffs/424242"))[0] == 404


async def test_notes_and_snippets(console: Console, browsers: Any) -> None:
    handoff = console.waiting("web-notes")
    supervisor, agent = await browsers("supervisor"), await browsers("agent")
    await supervisor.post("/snippets", {"title": "问候", "text": "您好，请问有什么可以帮您？"})
    assert (await supervisor.post("/snippets", {"title": "问候", "text": "again"}))[0] == 409
    await agent.post(f"/handoffs/{handoff.id}/claim")
    assert (await agent.post(f"/handoffs/{handoff.id}/notes", {"text": "客户很急"}))[0] == 303
    _status, page = await agent.get(f"/handoffs/{handoff.id}")
    assert "客户很急" in page and 'data-text="您好，请问有什么可以帮您？"' in page
    notes_sent = [
        e for _, events, _ in console.rasa.appended for e in events if "客户很急" in str(e)
    ]
    assert notes_sent == []  # a note never reaches the customer
    assert "add_note" in _actions(console, handoff.id)


async def test_transfer_and_take_over(console: Console, browsers: Any) -> None:
    handoff = console.waiting("web-move")
    agent, other = await browsers("agent"), await browsers("agent2")
    supervisor = await browsers("supervisor")
    await agent.post(f"/handoffs/{handoff.id}/claim")
    to = {"to_agent": str(console.staff_id("agent2"))}
    assert (await agent.post(f"/handoffs/{handoff.id}/transfer", to))[0] == 303
    assert console.rasa.appended[-1][1][1]["text"].startswith(
        "您好，我是客服小李，您的问题已转交给我"
    )
    assert (await agent.post(f"/handoffs/{handoff.id}/transfer", to))[0] == 409
    _status, page = await supervisor.get("/queue")
    assert "全部进行中的会话" in page and "客服小李" in page
    assert (await supervisor.post(f"/handoffs/{handoff.id}/takeover"))[0] == 303
    boss = console.staff_id("supervisor")
    with session_scope(console.crm) as session:
        assert get_handoff(session, handoff_id=handoff.id).agent_id == boss
    assert (await other.post(f"/handoffs/{handoff.id}/reply", {"text": "x"}))[0] == 403
    assert _actions(console, handoff.id) == [
        "claim_handoff",
        "transfer_handoff",
        "take_over_handoff",
    ]


async def test_an_agent_picks_a_live_conversation(console: Console, browsers: Any) -> None:
    with session_scope(console.crm) as session:
        ensure_conversation(
            session, conversation_id="o_live", channel="wechat", clock=console.clock
        )
    agent = await browsers("agent")
    status, page = await agent.get("/live")
    assert status == 200 and alias("o_live") in page and "o_live" not in page
    status, _, location = await agent.post(f"/conversations/{alias('o_live')}/pick")
    assert status == 303 and location.startswith("/handoffs/")
    sender, events, channel = console.rasa.appended[-1]
    assert (sender, channel, events[0]) == ("o_live", "wechat", {"event": "pause"})
    assert (await agent.post("/conversations/nobody/pick"))[0] == 404


async def test_agents_see_personal_fields_masked_a_supervisor_reveals_one(
    console: Console, browsers: Any
) -> None:
    session_id = "web-" + "5e" * 16
    handoff = console.waiting(session_id, customer_id=1)
    console.rasa.trackers[session_id] = [
        {"event": "user", "text": "我的新号码是13912345678", "timestamp": 1.0}
    ]
    agent, supervisor = await browsers("agent"), await browsers("supervisor")
    status, page = await agent.get(f"/handoffs/{handoff.id}")
    assert status == 200 and "138****8000" in page and "13800138000" not in page
    assert session_id not in page and alias(session_id) in page
    assert "/customers/1/reveal" not in page
    status, transcript = await agent.get(f"/api/handoffs/{handoff.id}/transcript")
    assert "139****5678" in transcript and "13912345678" not in transcript
    assert (await agent.post("/customers/1/reveal", {"field": "phone"}))[0] == 403
    status, page = await supervisor.get(f"/handoffs/{handoff.id}")
    assert "/customers/1/reveal" in page and "13800138000" not in page
    status, body, _ = await supervisor.post("/customers/1/reveal", {"field": "phone"})
    assert (status, json.loads(body)) == (200, {"field": "phone", "value": "13800138000"})
    assert (await supervisor.post("/customers/1/reveal", {"field": "password_hash"}))[0] == 400
    with session_scope(console.crm) as session:
        [entry] = list_audit_entries(session, entity="customer", entity_id=1, limit=1)
    assert (entry.action, entry.changes) == ("reveal_field", {"field": "phone"})
    assert entry.actor == f"staff:{console.staff_id('supervisor')}"


async def test_nobody_picks_up_in_time(console: Console) -> None:
    waiting = console.waiting("web-slow")
    desk = console.app.ctx.desk
    assert await desk.tell_timeouts(timedelta(minutes=5)) == 0
    console.clock.advance(timedelta(minutes=6))
    assert await desk.tell_timeouts(timedelta(minutes=5)) == 1
    assert await desk.tell_timeouts(timedelta(minutes=5)) == 0  # told once
    assert console.rasa.appended == [("web-slow", RESUME, "webchat")]
    assert console.rasa.triggered == [("web-slow", "EXTERNAL_handoff_timeout", "webchat")]
    with session_scope(console.crm) as session:
        assert get_handoff(session, handoff_id=waiting.id).state == "waiting"


def test_the_transcript_marks_who_spoke() -> None:
    events = [
        {"event": "user", "text": "转人工", "timestamp": 0},
        {"event": "bot", "text": "正在为您转接", "data": {"buttons": [{"title": "好"}]}},
        {"event": "pause"},
        {"event": "action", "name": "action_listen"},
        {"event": "pause"},
        {"event": "user", "text": "EXTERNAL: EXTERNAL_handoff_timeout"},
        {"event": "bot", "text": "您好", "metadata": {"handled_by": "agent", "agent_name": "小张"}},
        {"event": "slot", "name": "x", "value": 1},
    ]
    lines = transcript(events)
    assert [(line.speaker, line.text, line.who) for line in lines] == [
        ("customer", "转人工", None),
        ("bot", "正在为您转接 [好]", None),
        ("system", "paused", None),
        ("agent", "您好", "小张"),
    ]
    assert [line.index for line in transcript(events, after=2)] == [6]


def test_users_add(console: Console, monkeypatch: Any, capsys: Any) -> None:
    import io

    monkeypatch.setenv("CAREBOT_DATABASE_URL", str(console.crm.url))
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert main(["users", "add", "zhao", "--name", "客服小赵", "--password-stdin"]) == 0
    assert "zhao (agent)" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "add", "qian", "--password-stdin"]) == 1
    with session_scope(console.crm) as session:
        member = authenticate_staff(session, username="zhao", password="a-long-password")
        assert member is not None and member.display_name == "客服小赵"
        entries = list_audit_entries(session, entity="staff_user", entity_id=member.id)
    assert [e.action for e in entries] == ["create_staff_user"]


async def test_rasa_down_is_told_to_the_agent(console: Console, browsers: Any) -> None:
    """The claim stands (the agent can write once Rasa is back); the agent is told why the
    customer has not been greeted, and a reply is refused rather than lost silently."""
    from bot.rasa_api import RasaError

    async def unreachable(*args: Any) -> None:
        raise RasaError("Rasa is unreachable")

    handoff = console.waiting("web-down")
    agent = await browsers("agent")
    console.rasa.append = unreachable  # type: ignore[method-assign]
    status, page, _ = await agent.post(f"/handoffs/{handoff.id}/claim")
    assert status == 502 and "消息服务暂时不可用" in page
    status, page, _ = await agent.post(f"/handoffs/{handoff.id}/reply", {"text": "在吗"})
    assert status == 502 and "消息未发出" in page
    assert _actions(console, handoff.id) == ["claim_handoff"]  # no reply was recorded
