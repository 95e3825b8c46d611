"""Supervisors' pages: the quick-reply snippets agents share and the audit log."""

from __future__ import annotations

from sanic import Blueprint, Request, response
from sanic.response import HTTPResponse

from bot.console.auth import SUPERVISORS, refusal, staff
from crm_store.agent_notes import create_snippet, delete_snippet, list_snippets
from crm_store.audit import list_audit_entries
from crm_store.errors import Conflict, CrmError

admin_pages = Blueprint("console_admin")


@admin_pages.get("/snippets")
@staff(*SUPERVISORS)
async def snippets_page(request: Request) -> HTTPResponse:
    snippets = await request.app.ctx.desk.db(list_snippets)
    return request.app.ctx.render(request, "snippets.html", snippets=snippets)


@admin_pages.post("/snippets")
@staff(*SUPERVISORS)
async def add_snippet(request: Request) -> HTTPResponse:
    ctx, agent, form = request.app.ctx, request.ctx.agent, request.form or {}
    title, text = str(form.get("title") or ""), str(form.get("text") or "")
    try:
        await ctx.desk.db(
            lambda s: create_snippet(
                s, title=title, text=text, author_id=agent.id, clock=ctx.desk.clock
            )
        )
    except Conflict:
        return refusal(request, 409, "已有同名的快捷回复")
    except CrmError:
        return refusal(request, 400, "标题和内容都不能为空")
    return response.redirect("/snippets", status=303)


@admin_pages.post("/snippets/<snippet_id:int>/delete")
@staff(*SUPERVISORS)
async def remove_snippet(request: Request, snippet_id: int) -> HTTPResponse:
    ctx, agent = request.app.ctx, request.ctx.agent
    try:
        await ctx.desk.db(
            lambda s: delete_snippet(
                s, snippet_id=snippet_id, actor_id=agent.id, clock=ctx.desk.clock
            )
        )
    except CrmError:
        return refusal(request, 404, "找不到该快捷回复")
    return response.redirect("/snippets", status=303)


@admin_pages.get("/audit")
@staff(*SUPERVISORS)
async def audit_page(request: Request) -> HTTPResponse:
    entries = await request.app.ctx.desk.db(lambda s: list_audit_entries(s, limit=200))
    return request.app.ctx.render(request, "audit.html", entries=entries)
