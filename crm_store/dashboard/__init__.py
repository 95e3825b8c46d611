"""The manager dashboard's figures: one query function per figure, shared by the staff console,
`carebot report` and the CSV export. Each takes a session and a DashboardFilter and returns typed
rows (frozen dataclasses); FIGURES names them for the command line and the console. The survey
report (`survey_report.py`) reads the same survey figures. Rendering them is bot/reports/'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_store.dashboard.bot import (
    AgentHandling,
    BotFigures,
    HandoffReason,
    Misunderstood,
    agent_handling,
    bot_performance,
    handoff_reasons,
    misunderstood_messages,
)
from crm_store.dashboard.campaigns import (
    CampaignFigures,
    CampaignReason,
    WinBackFigures,
    campaign_reasons,
    campaign_results,
    win_back_results,
)
from crm_store.dashboard.customers import (
    SegmentFigures,
    StageFigures,
    lifecycle_funnel,
    rfm_segments,
)
from crm_store.dashboard.filters import BOT, SEGMENTS, DashboardFilter, day_window
from crm_store.dashboard.surveys import (
    BREAKDOWNS,
    PERIODS,
    Comment,
    FollowUp,
    ScoreCount,
    SurveyFigures,
    ThemeMovement,
    detractor_follow_ups,
    score_distribution,
    survey_breakdown,
    survey_comments,
    survey_trend,
    theme_movement,
)
from crm_store.masking import mask_text


@dataclass(frozen=True)
class Figure:
    name: str
    help: str
    row_type: type
    read: Callable[..., list[Any]]  # (session, filter, **options) -> rows


def _one(read: Callable[..., Any]) -> Callable[..., list[Any]]:
    return lambda session, f, **options: [read(session, f, **options)]


def _comment_rows(session: Session, f: DashboardFilter, **options: Any) -> list[Comment]:
    return survey_comments(session, f, **options).rows


FIGURES: dict[str, Figure] = {
    figure.name: figure
    for figure in (
        Figure(
            "survey-trend",
            "CSAT, NPS and response rate per week or month",
            SurveyFigures,
            survey_trend,
        ),
        Figure(
            "survey-breakdown",
            "survey figures overall or by a dimension",
            SurveyFigures,
            survey_breakdown,
        ),
        Figure(
            "survey-scores",
            "how many answers gave each CSAT and NPS score",
            ScoreCount,
            score_distribution,
        ),
        Figure(
            "comments", "verbatim comments with themes and polarity (paged)", Comment, _comment_rows
        ),
        Figure(
            "themes", "top survey themes against the period before", ThemeMovement, theme_movement
        ),
        Figure(
            "follow-ups",
            "open detractor follow-up tickets and their SLA",
            FollowUp,
            detractor_follow_ups,
        ),
        Figure(
            "campaigns",
            "care messages per campaign by state, replies, opt-outs",
            CampaignFigures,
            campaign_results,
        ),
        Figure(
            "campaign-reasons",
            "why care messages failed, were skipped or deferred",
            CampaignReason,
            campaign_reasons,
        ),
        Figure(
            "win-back",
            "win-back offers and reactivation uplift with 95% CI",
            WinBackFigures,
            win_back_results,
        ),
        Figure(
            "bot",
            "conversations, containment, handoff, fallback, handling time",
            BotFigures,
            _one(bot_performance),
        ),
        Figure(
            "handoff-reasons", "why conversations went to a human", HandoffReason, handoff_reasons
        ),
        Figure(
            "misunderstood",
            "the most frequent messages the bot fell back on",
            Misunderstood,
            misunderstood_messages,
        ),
        Figure(
            "agents",
            "handoffs closed and average handling time per agent",
            AgentHandling,
            agent_handling,
        ),
        Figure(
            "funnel", "customers and revenue per lifecycle stage", StageFigures, lifecycle_funnel
        ),
        Figure(
            "segments", "customers, revenue and CLV per RFM segment", SegmentFigures, rfm_segments
        ),
    )
}


# Fields of a figure's rows that hold what customers typed: masked unless asked for in full.
CUSTOMER_TEXT = {"comments": ("text",), "misunderstood": ("text",), "follow-ups": ("comment",)}


def mask_rows(name: str, rows: list[Any]) -> list[Any]:
    """The rows with phones, e-mail addresses and the like in customers' words masked
    (docs/personal-data.md): verbatims are shown, exported and printed masked by default."""
    fields = CUSTOMER_TEXT.get(name, ())
    if not fields:
        return rows
    return [
        replace(row, **{n: mask_text(v) for n in fields if isinstance(v := getattr(row, n), str)})
        for row in rows
    ]


def read_figure(
    session: Session, name: str, f: DashboardFilter, *, full: bool = False, **options: Any
) -> list[Any]:
    """The rows of one figure by its name (the command line's and the console's entry point);
    customers' words masked unless `full` (which the callers audit).

    On PostgreSQL, just-in-time compilation is off for the transaction: it costs 50-100 ms per
    statement that scans a few hundred thousand rows, more than it saves on reads this short.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.set_config("jit", "off", True)))
    rows = FIGURES[name].read(session, f, **options)
    return rows if full else mask_rows(name, rows)


__all__ = [
    "BOT",
    "BREAKDOWNS",
    "CUSTOMER_TEXT",
    "FIGURES",
    "PERIODS",
    "SEGMENTS",
    "DashboardFilter",
    "Figure",
    "day_window",
    "mask_rows",
    "read_figure",
]
