"""The manager dashboard: four pages of figures (surveys, care campaigns, bot, customers).

Every figure comes from crm_store.dashboard's `read_figure`, as in `carebot report`, and every table
exports through the same `to_csv` (bot/reports/render.py), so the console, the CSV and the command
line agree to the digit.
The filter lives in the query string (shareable URLs); days are whole days in the business time zone
(crm_store.clock.BUSINESS_TZ), the command line's default --tz. Charts are drawn in the browser by
Apache ECharts (from node_modules, no CDN) from the chart data embedded in the page;
/api/dashboard/<figure> answers a figure's rows as JSON. Only managers (and admins) may read any of
it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sanic import Blueprint, Request, response
from sanic.response import HTTPResponse
from sqlalchemy.orm import Session

from bot.console.auth import MANAGERS, staff
from bot.console.labels import (
    COLUMN_HEADINGS,
    FIGURE_TITLES,
    SEGMENT_NAMES,
    STAGES,
    VALUE_NAMES,
)
from bot.reports.options import NEEDS_TZ, OPTIONS
from bot.reports.render import columns as export_columns
from bot.reports.render import to_csv, to_json
from bot.settings import PROJECT_DIR
from crm_store.audit import record_audit
from crm_store.clock import BUSINESS_TZ
from crm_store.dashboard import (
    CUSTOMER_TEXT,
    FIGURES,
    DashboardFilter,
    day_window,
    mask_rows,
    read_figure,
)
from crm_store.dashboard.surveys import survey_comments
from crm_store.errors import InvalidInput
from crm_store.staff import list_staff_users

DEFAULT_DAYS = 90
DIMENSIONS = ("channel", "tier", "segment", "stage", "agent")
ECHARTS = PROJECT_DIR / "node_modules" / "echarts" / "dist" / "echarts.min.js"
ECHARTS_PATH = "/dashboard/assets/echarts.min.js"


@dataclass(frozen=True)
class View:
    title: str
    figures: tuple[str, ...]
    charts: tuple[str, ...] = ()


VIEWS: dict[str, View] = {
    "surveys": View(
        "满意度调查",
        ("survey-trend", "survey-breakdown", "survey-scores", "themes", "comments", "follow-ups"),
        ("trend", "breakdown", "scores", "themes"),
    ),
    "campaigns": View(
        "关怀活动", ("campaigns", "campaign-reasons", "win-back"), ("campaigns", "win_back")
    ),
    "bot": View(
        "机器人表现",
        ("bot", "handoff-reasons", "misunderstood", "agents"),
        ("handoff_reasons", "misunderstood", "agents"),
    ),
    "customers": View("客户分析", ("funnel", "segments"), ("funnel", "segments", "revenue")),
}


@dataclass(frozen=True)
class Query:
    """The dashboard's query string, checked: the filter, each figure's options, the days."""

    first: date
    last: date
    filter: DashboardFilter
    values: dict[str, str] = field(default_factory=dict)  # what was given, for links and forms

    def link(self, **changes: Any) -> str:
        values = {**self.values, **{k: str(v) for k, v in changes.items() if v is not None}}
        return urlencode({k: v for k, v in values.items() if v})


def _text(args: Mapping[str, Any], name: str) -> str | None:
    value = args.get(name)
    text = str(value).strip() if value is not None else ""
    return text or None


def _day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise InvalidInput(f"{what}应为 YYYY-MM-DD 格式的日期：{text}") from error


def parse_query(args: Mapping[str, Any], today: date) -> Query:
    """The filter from the query string; without dates, the last DEFAULT_DAYS days to today."""
    first_text, last_text = _text(args, "from"), _text(args, "to")
    last = _day(last_text, "结束日期") if last_text else today
    first = _day(first_text, "开始日期") if first_text else last - timedelta(days=DEFAULT_DAYS - 1)
    since, until = day_window(first, last, tz=BUSINESS_TZ.key)
    dimensions = {name: _text(args, name) for name in DIMENSIONS}
    f = DashboardFilter(since=since, until=until, **dimensions)
    values = {name: value for name, value in dimensions.items() if value}
    values |= {"from": first.isoformat(), "to": last.isoformat()}
    for options in OPTIONS.values():
        for _, dest, _ in options:
            if (value := _text(args, dest)) is not None:
                values[dest] = value
    return Query(first, last, f, values)


def figure_options(name: str, query: Query, clock: Callable[[], datetime]) -> dict[str, Any]:
    """A figure's options beyond the filter, as `carebot report` passes them (its defaults)."""
    options: dict[str, Any] = {}
    for _, dest, spec in OPTIONS.get(name, []):
        given = query.values.get(dest)
        value = spec.get("default") if given is None else _option(dest, given, spec)
        if value is not None:
            options[dest] = value
    if name in NEEDS_TZ:
        options["tz"] = BUSINESS_TZ.key
    if name == "follow-ups":
        options["clock"] = clock
    return options


def _option(dest: str, given: str, spec: dict[str, Any]) -> Any:
    if "choices" in spec and given not in spec["choices"]:
        raise InvalidInput(f"{dest} 只能是 {'、'.join(spec['choices'])} 之一：{given}")
    if spec.get("type") is int:
        try:
            return max(1, int(given))
        except ValueError as error:
            raise InvalidInput(f"{dest} 应为整数：{given}") from error
    return given


def business_today(clock: Callable[[], datetime]) -> date:
    return clock().astimezone(BUSINESS_TZ).date()


# Charts: what the page's script hands to ECharts (series of plain numbers per category) ------


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def _series(name: str, data: list[Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "data": data, **extra}


def _chart(title: str, kind: str, categories: list[str], *series: dict[str, Any]) -> dict[str, Any]:
    return {"title": title, "kind": kind, "categories": categories, "series": list(series)}


def trend_chart(rows: list[Any]) -> dict[str, Any]:
    return _chart(
        "满意度趋势",
        "line",
        [row.group for row in rows],
        _series("NPS", [row.nps for row in rows]),
        _series("满意率 %", [_percent(row.csat_satisfied_share) for row in rows]),
        _series("回复率 %", [_percent(row.response_rate) for row in rows]),
    )


def breakdown_chart(rows: list[Any]) -> dict[str, Any]:
    return _chart(
        "分组对比",
        "bar",
        [named("group", row.group) if row.group else "全部" for row in rows],
        _series("NPS", [row.nps for row in rows]),
        _series("满意率 %", [_percent(row.csat_satisfied_share) for row in rows]),
    )


def scores_chart(rows: list[Any]) -> dict[str, Any]:
    scores = [str(score) for score in range(11)]
    answers = {(row.question, str(row.score)): row.answers for row in rows}
    return _chart(
        "评分分布",
        "bar",
        scores,
        _series("CSAT（1-5）", [answers.get(("csat", s)) for s in scores]),
        _series("NPS（0-10）", [answers.get(("nps", s)) for s in scores]),
    )


def themes_chart(rows: list[Any]) -> dict[str, Any]:
    return _chart(
        "热门主题与上期对比",
        "bar",
        [row.theme for row in rows],
        _series("本期", [row.mentions for row in rows]),
        _series("上期", [row.previous_mentions for row in rows]),
    )


def campaigns_chart(rows: list[Any]) -> dict[str, Any]:
    names = ("planned", "sent", "delivered", "deferred", "failed", "replies", "opt_outs")
    return _chart(
        "各活动发送情况",
        "bar",
        [row.name for row in rows],
        *(_series(COLUMN_HEADINGS[name], [getattr(row, name) for row in rows]) for name in names),
    )


def win_back_chart(rows: list[Any]) -> dict[str, Any]:
    return _chart(
        "挽回活动：回流率（试验组对比对照组）",
        "bar",
        [row.campaign for row in rows],
        _series("试验组 %", [_percent(row.treated_rate) for row in rows]),
        _series("对照组 %", [_percent(row.control_rate) for row in rows]),
    )


def handoff_reasons_chart(rows: list[Any]) -> dict[str, Any]:
    return _chart(
        "转人工原因",
        "pie",
        [row.reason for row in rows],
        _series("转人工", [row.handoffs for row in rows]),
    )


def misunderstood_chart(rows: list[Any]) -> dict[str, Any]:
    return _chart(
        "未理解的高频消息",
        "hbar",
        [row.text for row in rows],
        _series("次数", [row.turns for row in rows]),
    )


def agents_chart(rows: list[Any]) -> dict[str, Any]:
    seconds = [row.average_handling_seconds for row in rows]
    minutes = [None if value is None else round(value / 60, 1) for value in seconds]
    return _chart(
        "客服平均处理时长（分钟）",
        "bar",
        [row.agent for row in rows],
        _series("平均处理时长", minutes),
        _series("已结束会话", [row.handoffs_closed for row in rows]),
    )


def funnel_chart(rows: list[Any]) -> dict[str, Any]:
    return _chart(
        "生命周期漏斗",
        "funnel",
        [named("stage", row.stage) for row in rows],
        _series("客户数", [row.customers for row in rows]),
    )


def segments_chart(rows: list[Any]) -> dict[str, Any]:
    return _chart(
        "RFM 分层客户数",
        "bar",
        [named("segment", row.segment) for row in rows],
        _series("客户数", [row.customers for row in rows]),
    )


def revenue_chart(rows: list[Any]) -> dict[str, Any]:
    return _chart(
        "RFM 分层收入（元）",
        "bar",
        [named("segment", row.segment) for row in rows],
        _series("收入", [round(row.revenue_cents / 100, 2) for row in rows]),
    )


CHARTS: dict[str, tuple[str, Callable[[list[Any]], dict[str, Any]]]] = {
    "trend": ("survey-trend", trend_chart),
    "breakdown": ("survey-breakdown", breakdown_chart),
    "scores": ("survey-scores", scores_chart),
    "themes": ("themes", themes_chart),
    "campaigns": ("campaigns", campaigns_chart),
    "win_back": ("win-back", win_back_chart),
    "handoff_reasons": ("handoff-reasons", handoff_reasons_chart),
    "misunderstood": ("misunderstood", misunderstood_chart),
    "agents": ("agents", agents_chart),
    "funnel": ("funnel", funnel_chart),
    "segments": ("segments", segments_chart),
    "revenue": ("segments", revenue_chart),
}

# Tables: each figure's columns with Chinese headings (bot/console/labels.py) ----------------


def named(column: str, value: str) -> str:
    return VALUE_NAMES.get(column, {}).get(value, value)


SHARES = ("rate", "share", "uplift", "uplift_low", "uplift_high")


def cell(name: str, value: Any) -> str:
    """A value as the table shows it: shares as percentages, money in yuan, times in the
    business zone, codes in Chinese (the CSV keeps the raw values)."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, tuple):
        return "、".join(str(item) for item in value)
    if isinstance(value, float) and (name.endswith(SHARES[:2]) or name in SHARES):
        return f"{value * 100:.2f}%"
    if isinstance(value, int) and name.endswith("_cents"):
        return f"{value / 100:,.2f}"
    return named(name, str(value))


def table(name: str, rows: list[Any]) -> dict[str, Any]:
    columns = export_columns(FIGURES[name].row_type)
    return {
        "name": name,
        "title": FIGURE_TITLES[name],
        "headings": [COLUMN_HEADINGS.get(column, column) for column in columns],
        "rows": [[cell(column, getattr(row, column)) for column in columns] for row in rows],
    }


# Reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    rows: dict[str, list[Any]]
    comments_total: int
    agents: list[str]


def read_page(session: Session, view: View, query: Query, clock: Callable[[], datetime]) -> Page:
    """Every figure of a page in one transaction, one after another (docs/benchmarks.md)."""
    rows: dict[str, list[Any]] = {}
    total = 0
    for name in view.figures:
        if name == "comments":  # the page as the figure reads it, with the count of all pages
            found = survey_comments(session, query.filter, **figure_options(name, query, clock))
            rows[name], total = mask_rows(name, found.rows), found.total
        else:
            rows[name] = read_rows(session, name, query, clock)
    agents = [member.username for member in list_staff_users(session)]
    return Page(rows, total, agents)


def read_rows(
    session: Session,
    name: str,
    query: Query,
    clock: Callable[[], datetime],
    full_for: int | None = None,
) -> list[Any]:
    """A figure's rows; customers' words in full only for `full_for` (a manager's staff id),
    and then on the audit log."""
    if full_for is not None:
        record_audit(
            session,
            actor=f"staff:{full_for}",
            action="export_unmasked",
            entity="dashboard",
            entity_id=name,
            changes={"filter": dict(query.values)},
            clock=clock,
        )
    options = figure_options(name, query, clock)
    return read_figure(session, name, query.filter, full=full_for is not None, **options)


def _refused(request: Request, message: str, status: int = 400) -> HTTPResponse:
    return request.app.ctx.render(
        request, "error.html", status=status, message=f"筛选条件无效：{message}"
    )


def dashboard_blueprint() -> Blueprint:
    blueprint = Blueprint("console_dashboard")

    @blueprint.get("/dashboard")
    @staff(*MANAGERS)
    async def dashboard(request: Request) -> HTTPResponse:
        return await show_view(request, "surveys")

    @blueprint.get("/dashboard/<view:str>")
    @staff(*MANAGERS)
    async def dashboard_view(request: Request, view: str) -> HTTPResponse:
        return await show_view(request, view)

    @blueprint.get("/dashboard/export/<figure:str>")
    @staff(*MANAGERS)
    async def export(request: Request, figure: str) -> HTTPResponse:
        """One table as CSV for Excel: the same function as `carebot report --format csv`;
        `?full=1` exports customers' words unmasked (audited)."""
        rows = await figure_rows(request, figure, full=request.args.get("full") == "1")
        if isinstance(rows, HTTPResponse):
            return rows
        body = to_csv(rows, FIGURES[figure].row_type).encode("utf-8")
        disposition = f'attachment; filename="carebot-{figure}.csv"'
        return response.raw(
            body,
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": disposition},
        )

    @blueprint.get("/api/dashboard/<figure:str>")
    @staff(*MANAGERS)
    async def figure_json(request: Request, figure: str) -> HTTPResponse:
        """One figure's rows, as `carebot report --format json` prints them."""
        rows = await figure_rows(request, figure)
        if isinstance(rows, HTTPResponse):
            return rows
        return response.text(to_json(rows), content_type="application/json; charset=utf-8")

    @blueprint.get(ECHARTS_PATH)
    @staff(*MANAGERS)
    async def echarts(request: Request) -> HTTPResponse:
        return await response.file(ECHARTS, mime_type="application/javascript")

    return blueprint


async def figure_rows(
    request: Request, figure: str, full: bool = False
) -> list[Any] | HTTPResponse:
    if figure not in FIGURES:
        return request.app.ctx.render(request, "error.html", status=404, message="没有这个图表")
    desk = request.app.ctx.desk
    full_for = request.ctx.agent.id if full and figure in CUSTOMER_TEXT else None
    try:
        query = parse_query(request.args, business_today(desk.clock))
        return list(await desk.db(lambda s: read_rows(s, figure, query, desk.clock, full_for)))
    except InvalidInput as error:
        return _refused(request, str(error))


async def show_view(request: Request, name: str) -> HTTPResponse:
    view = VIEWS.get(name)
    if view is None:
        return request.app.ctx.render(request, "error.html", status=404, message="没有这个页面")
    desk = request.app.ctx.desk
    try:
        query = parse_query(request.args, business_today(desk.clock))
        page = await desk.db(lambda s: read_page(s, view, query, desk.clock))
    except InvalidInput as error:
        return _refused(request, str(error))
    return request.app.ctx.render(request, "dashboard.html", **page_values(name, page, query))


def page_values(name: str, page: Page, query: Query) -> dict[str, Any]:
    """What dashboard.html shows of a page's figures: its charts, tables and filter form."""
    view = VIEWS[name]
    charts = {key: CHARTS[key][1](page.rows[CHARTS[key][0]]) for key in view.charts}
    return {
        "views": VIEWS,
        "current": name,
        "view": view,
        "query": query,
        "charts": charts,
        "charts_json": script_json(charts),
        "tables": [table(figure, page.rows[figure]) for figure in view.figures],
        "bot": page.rows["bot"][0] if "bot" in page.rows else None,
        "comments_total": page.comments_total,
        "agents": page.agents,
        "choices": choices(),
    }


def script_json(value: Any) -> str:
    """JSON to put inside a <script> element: no "<" in it, so no customer's text can close the
    element or open a comment there (in JSON a "<" can only be inside a string)."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def choices() -> dict[str, Any]:
    """The filter form's options (values as the query layer names them)."""
    from crm_store.dashboard import BREAKDOWNS, SEGMENTS
    from crm_store.models import CHANNELS, LIFECYCLE_STAGES, POLARITIES, TIERS

    return {
        "channel": CHANNELS,
        "tier": TIERS,
        "segment": SEGMENTS,
        "stage": LIFECYCLE_STAGES,
        "by": BREAKDOWNS,
        "polarity": POLARITIES,
        "stages": STAGES,
        "segment_names": SEGMENT_NAMES,
    }
