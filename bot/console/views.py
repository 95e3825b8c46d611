"""The agents' pages: the queue, the conversation view, and the live list to pick from."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from sanic import Blueprint, Request, response
from sanic.response import HTTPResponse
from sqlalchemy.orm import Session

from bot.console.auth import AGENTS, HOME_BY_ROLE, SUPERVISORS, current_session, refusal, staff
from bot.console.card import customer_card
from bot.console.desk import Agent
from bot.console.labels import HANDOFF_OUTCOMES
from bot.console.transcript import Line, transcript
from bot.rasa_api import RasaError
from crm_store.agent_notes import add_note, list_notes, list_snippets
from crm_store.audit import record_audit
from crm_store.customers import get_customer
from crm_store.errors import Conflict, CrmError, InvalidInput, NotFound
from crm_store.handoff_queue import CONSOLE_OUTCOMES, QueueEntry, list_live, list_queue
from crm_store.handoffs import Handoff, get_handoff
from crm_store.interactions import list_conversations
from crm_store.masking import alias, mask_name, mask_text
from crm_store.staff import list_staff_users

desk_pages = Blueprint("console_desk")
LIVE_WINDOW = timedelta(minutes=30)
LIVE_LIMIT = 50


def entry_json(entry: QueueEntry) -> dict[str, Any]:
    handoff = entry.handoff
    return {
        "id": handoff.id,
        "conversation": alias(handoff.conversation_id),
        "customer": mask_name(entry.customer_name) or "匿名访客",
        "tier": entry.tier or "",
        "reason": handoff.reason,
        "channel": handoff.output_channel or "",
        "priority": handoff.priority,
        "waited_s": int(entry.waited.total_seconds()),
        "agent_id": handoff.agent_id,
        "state": handoff.state,
    }


def queue_state(session: Session, agent: Agent, clock: Any) -> dict[str, Any]:
    """The waiting queue, my conversations, and (for a supervisor) everyone's."""
    mine = list_live(session, agent_id=agent.id, clock=clock)
    everyone = list_live(session, clock=clock) if agent.supervises else []
    names = {member.id: member.display_name for member in list_staff_users(session)}
    return {
        "waiting": [entry_json(e) for e in list_queue(session, clock=clock)],
        "mine": [entry_json(e) for e in mine],
        "everyone": [
            entry_json(e) | {"agent": names.get(e.handoff.agent_id or 0, "")} for e in everyone
        ],
    }


def crm_refusal(request: Request, error: CrmError) -> HTTPResponse:
    status = 404 if isinstance(error, NotFound) else 409 if isinstance(error, Conflict) else 400
    messages = {404: "找不到该会话", 409: "该会话已被其他客服处理", 400: "输入有误"}
    return refusal(request, status, messages[status])


def back_to(request: Request, url: str, payload: dict[str, Any] | None = None) -> HTTPResponse:
    """A form post gets a redirect; a script (fetch with the CSRF header) gets JSON."""
    if request.headers.get("x-csrf-token"):
        return response.json({"ok": True, **(payload or {})})
    return response.redirect(url, status=303)


@desk_pages.get("/")
async def home(request: Request) -> HTTPResponse:
    """Each role's start page (the login page for anyone else)."""
    session = current_session(request)
    if session is None or not session.logged_in:
        return response.redirect("/login")
    return response.redirect(HOME_BY_ROLE.get(session.role or "", "/queue"))


@desk_pages.get("/queue")
@staff(*AGENTS)
async def queue_page(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    state = await ctx.desk.db(lambda s: queue_state(s, request.ctx.agent, ctx.desk.clock))
    return ctx.render(request, "queue.html", state=state)


@desk_pages.get("/api/queue")
@staff(*AGENTS)
async def queue_api(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    return response.json(
        await ctx.desk.db(lambda s: queue_state(s, request.ctx.agent, ctx.desk.clock))
    )


@desk_pages.post("/handoffs/<handoff_id:int>/claim")
@staff(*AGENTS)
async def claim(request: Request, handoff_id: int) -> HTTPResponse:
    claimed = request.app.ctx.desk.claim(handoff_id, request.ctx.agent)
    return await desk_step(request, claimed, "消息服务暂时不可用", f"/handoffs/{handoff_id}")


async def desk_step(
    request: Request, step: Awaitable[Any], rasa_failed: str, then: str
) -> HTTPResponse:
    """Run one desk step and go on to `then`: a CRM refusal shows its reason; an unreachable
    Rasa gives a 502 that says what did happen (`rasa_failed`) and why the customer was not told."""
    try:
        await step
    except CrmError as error:
        return crm_refusal(request, error)
    except RasaError as error:
        return refusal(request, 502, f"{rasa_failed}：{error}")
    return back_to(request, then)


async def visible_handoff(request: Request, handoff_id: int) -> Handoff | HTTPResponse:
    """The handoff if this agent may see it: waiting ones, their own, anything for supervisors."""
    try:
        handoff = await request.app.ctx.desk.db(lambda s: get_handoff(s, handoff_id=handoff_id))
    except NotFound as error:
        return crm_refusal(request, error)
    agent: Agent = request.ctx.agent
    if handoff.state == "waiting" or handoff.agent_id == agent.id or agent.supervises:
        return handoff
    return refusal(request, 403, "该会话由其他客服处理")


def holder_or_supervisor(agent: Agent, handoff: Handoff) -> bool:
    return handoff.state == "active" and (handoff.agent_id == agent.id or agent.supervises)


@desk_pages.get("/handoffs/<handoff_id:int>")
@staff(*AGENTS)
async def conversation_page(request: Request, handoff_id: int) -> HTTPResponse:
    handoff = await visible_handoff(request, handoff_id)
    if isinstance(handoff, HTTPResponse):
        return handoff
    ctx = request.app.ctx

    def load(session: Session) -> dict[str, Any]:
        return {
            "card": customer_card(session, customer_id=handoff.customer_id),
            "notes": list_notes(session, handoff_id=handoff_id),
            "snippets": list_snippets(session),
            "colleagues": [m for m in list_staff_users(session) if m.active and m.role in AGENTS],
        }

    page = await ctx.desk.db(load)
    return ctx.render(
        request,
        "conversation.html",
        handoff=handoff,
        mine=holder_or_supervisor(request.ctx.agent, handoff),
        outcomes=[(o, HANDOFF_OUTCOMES[o]) for o in CONSOLE_OUTCOMES],
        **page,
    )


def position(text: str | None) -> int:
    """The `after` of a transcript poll: an event position, -1 (from the start) if unreadable."""
    try:
        return max(int(text or "-1"), -1)
    except ValueError:
        return -1


@desk_pages.get("/api/handoffs/<handoff_id:int>/transcript")
@staff(*AGENTS)
async def transcript_api(request: Request, handoff_id: int) -> HTTPResponse:
    handoff = await visible_handoff(request, handoff_id)
    if isinstance(handoff, HTTPResponse):
        return handoff
    after = position(request.args.get("after"))
    try:
        events = await request.app.ctx.desk.rasa.events(
            handoff.sender_id or handoff.conversation_id
        )
    except RasaError as error:
        return response.json({"error": str(error)}, status=502)
    lines = [masked_line(line) for line in transcript(events, after)]
    return response.json({"state": handoff.state, "lines": lines})


def masked_line(line: Line) -> dict[str, Any]:
    """A transcript line for staff: phones and the like that the customer typed are masked."""
    return line.as_json() | {"text": mask_text(line.text)}


@desk_pages.post("/handoffs/<handoff_id:int>/reply")
@staff(*AGENTS)
async def reply(request: Request, handoff_id: int) -> HTTPResponse:
    ctx, agent = request.app.ctx, request.ctx.agent
    handoff = await ctx.desk.db(lambda s: get_handoff(s, handoff_id=handoff_id))
    if handoff.state != "active" or handoff.agent_id != agent.id:
        return refusal(request, 403, "只有接待该会话的客服可以回复")
    text = str((request.form or {}).get("text") or "")
    try:
        await ctx.desk.reply(handoff, agent, text)
    except InvalidInput as error:
        return crm_refusal(request, error)
    except RasaError as error:
        return refusal(request, 502, f"消息未发出：{error}")
    await ctx.desk.db(lambda s: _audit(s, agent, "reply", handoff_id, {"length": len(text)}, ctx))
    return back_to(request, f"/handoffs/{handoff_id}")


def _audit(
    session: Session, agent: Agent, action: str, handoff_id: int, changes: dict[str, Any], ctx: Any
) -> None:
    record_audit(
        session,
        actor=f"staff:{agent.id}",
        action=action,
        entity="handoff",
        entity_id=handoff_id,
        changes=changes,
        clock=ctx.desk.clock,
    )


@desk_pages.post("/handoffs/<handoff_id:int>/notes")
@staff(*AGENTS)
async def note(request: Request, handoff_id: int) -> HTTPResponse:
    handoff = await visible_handoff(request, handoff_id)
    if isinstance(handoff, HTTPResponse):
        return handoff
    ctx, agent = request.app.ctx, request.ctx.agent
    text = str((request.form or {}).get("text") or "")
    try:
        await ctx.desk.db(
            lambda s: add_note(
                s, handoff_id=handoff_id, author_id=agent.id, text=text, clock=ctx.desk.clock
            )
        )
    except CrmError as error:
        return crm_refusal(request, error)
    return back_to(request, f"/handoffs/{handoff_id}")


@desk_pages.post("/handoffs/<handoff_id:int>/close")
@staff(*AGENTS)
async def close(request: Request, handoff_id: int) -> HTTPResponse:
    outcome = str((request.form or {}).get("outcome") or "")
    closed = request.app.ctx.desk.close(handoff_id, request.ctx.agent, outcome)
    return await desk_step(request, closed, "会话已关闭，但未能通知机器人", "/queue")


@desk_pages.post("/handoffs/<handoff_id:int>/transfer")
@staff(*AGENTS)
async def transfer(request: Request, handoff_id: int) -> HTTPResponse:
    target = str((request.form or {}).get("to_agent") or "")
    if not target.isdigit():
        return refusal(request, 400, "请选择要转给的客服")
    moved = request.app.ctx.desk.transfer(handoff_id, request.ctx.agent, int(target))
    return await desk_step(request, moved, "已转接，但未能通知客户", "/queue")


@desk_pages.post("/handoffs/<handoff_id:int>/takeover")
@staff(*SUPERVISORS)
async def take_over(request: Request, handoff_id: int) -> HTTPResponse:
    taken = request.app.ctx.desk.take_over(handoff_id, request.ctx.agent)
    return await desk_step(request, taken, "已接管，但未能通知客户", f"/handoffs/{handoff_id}")


@desk_pages.get("/live")
@staff(*AGENTS)
async def live_page(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    since = ctx.desk.clock() - LIVE_WINDOW
    conversations = await ctx.desk.db(lambda s: list_conversations(s, limit=LIVE_LIMIT))
    recent = [c for c in conversations if c.last_message_at >= since]
    return ctx.render(request, "live.html", conversations=recent)


def recent_by_alias(session: Session, name: str) -> str:
    """The conversation id a live-list alias stands for (the list shows aliases only: a web
    session id would log its holder in); a name that is no alias is taken as an id."""
    for conversation in list_conversations(session, limit=LIVE_LIMIT):
        if alias(conversation.id) == name:
            return conversation.id
    return name


@desk_pages.post("/conversations/<conversation_id:str>/pick")
@staff(*AGENTS)
async def pick(request: Request, conversation_id: str) -> HTTPResponse:
    desk = request.app.ctx.desk
    conversation_id = await desk.db(lambda s: recent_by_alias(s, conversation_id))
    try:
        handoff = await desk.pick(conversation_id, request.ctx.agent)
    except CrmError as error:
        return crm_refusal(request, error)
    except RasaError as error:
        return refusal(request, 502, f"已接入，但未能通知客户：{error}")
    return back_to(request, f"/handoffs/{handoff.id}", {"handoff_id": handoff.id})


REVEALABLE = ("name", "phone", "email")


def reveal_field(session: Session, agent: Agent, customer_id: int, name: str, clock: Any) -> str:
    """One personal field of a customer in full, for a supervisor; the audit log says who saw
    which field of whom and when (not its value)."""
    customer = get_customer(session, customer_id=customer_id)
    record_audit(
        session,
        actor=f"staff:{agent.id}",
        action="reveal_field",
        entity="customer",
        entity_id=customer_id,
        changes={"field": name},
        clock=clock,
    )
    return str(getattr(customer, name) or "")


@desk_pages.post("/customers/<customer_id:int>/reveal")
@staff(*SUPERVISORS)
async def reveal(request: Request, customer_id: int) -> HTTPResponse:
    """Agents see personal fields masked; a supervisor may reveal one field at a time."""
    name = str((request.form or {}).get("field") or "")
    if name not in REVEALABLE:
        return refusal(request, 400, "无法显示该字段")
    desk, agent = request.app.ctx.desk, request.ctx.agent
    try:
        value = await desk.db(lambda s: reveal_field(s, agent, customer_id, name, desk.clock))
    except NotFound as error:
        return crm_refusal(request, error)
    return response.json({"field": name, "value": value})
