"""Dashboard figures on a small CRM counted by hand (tests/crm_store/dashboard_fixture.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from dashboard_fixture import OCT, Ids, at, build
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crm_store.clock import fixed
from crm_store.customers import set_consent
from crm_store.dashboard import DashboardFilter, read_figure
from crm_store.dashboard.bot import (
    agent_handling,
    bot_performance,
    handoff_reasons,
    misunderstood_messages,
)
from crm_store.dashboard.campaigns import campaign_reasons, campaign_results, win_back_results
from crm_store.dashboard.customers import lifecycle_funnel, rfm_segments
from crm_store.dashboard.stats import uplift
from crm_store.dashboard.summaries import (
    record_care_responses,
    refresh_customer_summary,
    summary_is_current,
)
from crm_store.dashboard.surveys import (
    SurveyFigures,
    detractor_follow_ups,
    score_distribution,
    sla_state,
    survey_breakdown,
    survey_comments,
    survey_trend,
    theme_movement,
)
from crm_store.errors import InvalidInput
from crm_store.models import CareMessage, CustomerMetrics, SurveyResponse

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def ids(session: Session) -> Ids:
    return build(session)


def october(**dimensions: str) -> DashboardFilter:
    return DashboardFilter(since=OCT[0], until=OCT[1], **dimensions)


def figures(group: str | None, *counts: object) -> SurveyFigures:
    return SurveyFigures(group, *counts)  # type: ignore[arg-type]


# Surveys -------------------------------------------------------------------------------------


def test_october_overall_counts_six_surveys_four_answered(session: Session, ids: Ids) -> None:
    [overall] = survey_breakdown(session, october())
    # CSAT 5, 2, 4, 3: average 3.5, two of four 4+; NPS 10, 3, 8: one of each kind.
    assert overall == figures(None, 6, 4, 0, 1, 1, 0.6667, 4, 3.5, 0.5, 3, 1, 1, 1, 0.0)


def test_breakdown_by_channel_largest_first_ties_by_name(session: Session, ids: Ids) -> None:
    assert survey_breakdown(session, october(), by="channel") == [
        figures("web", 3, 2, 0, 1, 0, 0.6667, 2, 4.0, 0.5, 1, 1, 0, 0, 100.0),
        figures("wechat", 3, 2, 0, 0, 1, 0.6667, 2, 3.0, 0.5, 2, 0, 1, 1, -50.0),
    ]


@pytest.mark.parametrize(
    ("by", "asked"),
    [
        ("tier", {"普通": 3, "金卡": 2, "unknown": 1}),
        ("churn_band", {"high": 2, "low": 2, "medium": 1, "unknown": 1}),
        ("agent", {"bot": 4, "agent": 2}),
        ("segment", {"at_risk": 2, "champions": 2, "prospect": 1, "unknown": 1}),
        ("stage", {"churning": 2, "loyal": 2, "new": 1, "unknown": 1}),
    ],
)
def test_breakdowns_count_each_survey_once(
    session: Session, ids: Ids, by: str, asked: dict[str, int]
) -> None:
    rows = survey_breakdown(session, october(), by=by)
    assert [(row.group, row.asked) for row in rows] == list(asked.items())


def test_filters_narrow_through_the_customer_and_the_agent(session: Session, ids: Ids) -> None:
    [plain] = survey_breakdown(session, october(tier="普通"))
    assert plain == figures(None, 3, 3, 0, 0, 0, 1.0, 3, 3.0, 0.3333, 2, 0, 1, 1, -50.0)
    [bot] = survey_breakdown(session, october(agent="bot"))
    assert (bot.asked, bot.answered, bot.declined) == (4, 2, 1)
    [champions] = survey_breakdown(session, october(segment="champions", channel="web"))
    assert (champions.asked, champions.answered) == (2, 1)


def test_trend_by_week_in_utc_and_in_shanghai(session: Session, ids: Ids) -> None:
    utc = survey_trend(session, october(), period="week", tz="UTC")
    assert utc == [
        figures("2026-09-28", 3, 3, 0, 0, 0, 1.0, 3, 3.67, 0.6667, 3, 1, 1, 1, 0.0),
        figures("2026-10-05", 1, 0, 0, 1, 0, 0.0, 0, None, None, 0, 0, 0, 0, None),
        figures("2026-10-19", 2, 1, 0, 0, 1, 0.5, 1, 3.0, 0.0, 0, 0, 0, 0, None),
    ]
    # s3 was asked on Sunday 17:00 UTC, Monday 01:00 in Shanghai: the next week.
    shanghai = survey_trend(session, october(), period="week")
    assert [(row.group, row.asked) for row in shanghai] == [
        ("2026-09-28", 2),
        ("2026-10-05", 2),
        ("2026-10-19", 2),
    ]


def test_trend_by_month_sums_to_the_overall_figures(session: Session, ids: Ids) -> None:
    [month] = survey_trend(session, october(), period="month", tz="UTC")
    [overall] = survey_breakdown(session, october())
    assert month == figures("2026-10-01", *list(overall.__dict__.values())[1:])


def _left_midway(session: Session, ids: Ids) -> None:
    """Two surveys left midway (issue 16): one after a CSAT of 1 (web, week of 5 October), one
    after a CSAT of 4, an NPS of 9 and a comment (WeChat, week of 19 October)."""
    for key, asked, channel, csat, nps, comment, themes in (
        ("m1", at(10, 6), "web", 1, None, None, []),
        ("m2", at(10, 22), "wechat", 4, 9, "售后挺好", ["售后"]),
    ):
        session.add(
            SurveyResponse(
                conversation_id=f"survey-{key}",
                trigger="end_of_chat",
                channel=channel,
                status="partial",
                customer_id=ids.c1,
                csat=csat,
                nps=nps,
                comment=comment,
                themes=themes,
                asked_at=asked,
                answered_at=asked,
            )
        )
    session.flush()


def test_partial_answers_are_their_own_count_and_count_as_responses(
    session: Session, ids: Ids
) -> None:
    _left_midway(session, ids)
    [overall] = survey_breakdown(session, october())
    # CSAT 5, 2, 4, 3, 1, 4: 19 / 6, three of six 4+; NPS 10, 3, 8, 9: two promoters of four.
    assert overall == figures(None, 8, 4, 2, 1, 1, 0.75, 6, 3.17, 0.5, 4, 2, 1, 1, 25.0)
    outcomes = (overall.answered, overall.partial, overall.declined, overall.no_reply)
    assert sum(outcomes) == overall.asked
    by_channel = {row.group: row for row in survey_breakdown(session, october(), by="channel")}
    assert (by_channel["web"].partial, by_channel["web"].response_rate) == (1, 0.75)
    weeks = survey_trend(session, october(), period="week", tz="UTC")
    assert [(row.group, row.partial, row.response_rate) for row in weeks] == [
        ("2026-09-28", 0, 1.0),
        ("2026-10-05", 1, 0.5),  # s4 declined, m1 left after its CSAT
        ("2026-10-19", 1, 0.6667),
    ]
    [month] = survey_trend(session, october(), period="month", tz="UTC")
    assert month == figures("2026-10-01", *list(overall.__dict__.values())[1:])
    scores = score_distribution(session, october())
    assert [(r.score, r.answers) for r in scores if r.question == "csat"] == [
        (1, 1),
        (2, 1),
        (3, 1),
        (4, 2),
        (5, 1),
    ]
    themes = {row.theme: row.mentions for row in theme_movement(session, october())}
    assert themes["售后"] == 1  # the comment of a survey left midway is a mention too


def test_score_distribution_lists_every_score(session: Session, ids: Ids) -> None:
    rows = score_distribution(session, october())
    csat = {row.score: (row.answers, row.share) for row in rows if row.question == "csat"}
    nps = {row.score: row.answers for row in rows if row.question == "nps"}
    assert csat == {1: (0, 0.0), 2: (1, 0.25), 3: (1, 0.25), 4: (1, 0.25), 5: (1, 0.25)}
    assert nps == {n: 1 if n in (3, 8, 10) else 0 for n in range(11)}


def test_comments_newest_first_from_surveys_and_feedback(session: Session, ids: Ids) -> None:
    page = survey_comments(session, october())
    assert page.total == 4
    assert [(c.source, c.text, c.polarity) for c in page.rows] == [
        ("survey", "价格有点贵", "neutral"),
        ("feedback", "安装师傅很专业", "positive"),
        ("survey", "客服态度差，退货太慢", "negative"),
        ("survey", "物流很快，很满意", "positive"),
    ]
    assert page.rows[2].themes == ("客服态度", "退换货")
    assert page.rows[2].at == at(10, 2)


def test_a_comments_analysed_polarity_wins_over_its_scores(session: Session, ids: Ids) -> None:
    row = session.scalars(
        select(SurveyResponse).where(SurveyResponse.comment == "价格有点贵")
    ).one()
    row.polarity = "negative"  # as the survey action stores it since migration 0013
    session.flush()
    page = survey_comments(session, october())
    newest = page.rows[0]
    assert (newest.text, newest.polarity) == ("价格有点贵", "negative")
    negative = survey_comments(session, october(), polarity="negative")
    assert {c.text for c in negative.rows} == {"价格有点贵", "客服态度差，退货太慢"}


def test_comments_search_filter_and_pages(session: Session, ids: Ids) -> None:
    assert [c.id for c in survey_comments(session, october(), text="退货").rows] == [ids.s2]
    by_theme = survey_comments(session, october(), theme="物流")
    assert [c.text for c in by_theme.rows] == ["物流很快，很满意"]
    negative = survey_comments(session, october(), polarity="negative")
    assert [c.id for c in negative.rows] == [ids.s2]
    second = survey_comments(session, october(), page=2, page_size=2)
    assert (second.total, [c.text for c in second.rows]) == (
        4,
        ["客服态度差，退货太慢", "物流很快，很满意"],
    )
    past_the_end = survey_comments(session, october(), page=5, page_size=2)
    assert (past_the_end.total, past_the_end.rows) == (4, [])
    agent = survey_comments(session, october(agent="agent"))
    assert [c.text for c in agent.rows] == ["价格有点贵", "客服态度差，退货太慢"]


def test_comment_page_size_is_bounded(session: Session) -> None:
    with pytest.raises(InvalidInput):
        survey_comments(session, october(), page_size=1000)


def test_themes_move_against_september(session: Session, ids: Ids) -> None:
    rows = theme_movement(session, october())
    # October: one mention each; September (the 31 days before): 物流 twice, 价格 once.
    assert [(r.theme, r.mentions, r.previous_mentions, r.change, r.change_share) for r in rows] == [
        ("价格", 1, 1, 0, 0.0),
        ("客服态度", 1, 0, 1, None),
        ("物流", 1, 2, -1, -0.5),
        ("退换货", 1, 0, 1, None),
    ]


def test_themes_need_a_closed_range(session: Session) -> None:
    with pytest.raises(InvalidInput):
        theme_movement(session, DashboardFilter(since=OCT[0]))


def test_open_follow_ups_of_detractors_with_their_sla(session: Session, ids: Ids) -> None:
    [due_soon] = detractor_follow_ups(session, october(), clock=fixed(at(10, 3, 1)))
    assert (due_soon.ticket_id, due_soon.response_id, due_soon.sla_state) == (
        ids.ticket,
        ids.s2,
        "due_soon",
    )
    assert (due_soon.csat, due_soon.nps, due_soon.status) == (2, 3, "open")
    [late] = detractor_follow_ups(session, october(), clock=fixed(at(11, 2)))
    assert late.sla_state == "overdue"
    assert detractor_follow_ups(session, october(channel="web")) == []


def test_sla_state_boundaries() -> None:
    due = datetime(2026, 10, 3, 12, tzinfo=timezone.utc)
    assert sla_state(due, datetime(2026, 10, 3, 7, 59, tzinfo=timezone.utc)) == "on_time"
    assert sla_state(due, datetime(2026, 10, 3, 8, tzinfo=timezone.utc)) == "due_soon"
    assert sla_state(due, due) == "overdue"


# Campaigns -----------------------------------------------------------------------------------


def test_campaign_outbox_states_replies_and_opt_outs(session: Session, ids: Ids) -> None:
    birthday, win_back = campaign_results(session, october())
    assert birthday.campaign == "birthday_2026"
    states = ["planned", "waiting", "deferred", "sending", "sent", "delivered"]
    states += ["failed", "skipped", "control"]
    counts = [8, 1, 1, 1, 2, 2, 2, 1, 0]
    assert [getattr(birthday, state) for state in states] == counts
    # c1 chatted 8 h after the first greeting; withdrew care consent within 7 days of both.
    assert (birthday.replies, birthday.opt_outs, birthday.reply_rate, birthday.opt_out_rate) == (
        1,
        2,
        0.5,
        1.0,
    )
    assert (win_back.planned, win_back.sent, win_back.control, win_back.replies) == (3, 3, 3, 1)
    assert win_back.opt_outs == 0  # a care consent withdrawn is not an offer opt-out


def test_an_opt_out_taken_back_still_counts(session: Session, ids: Ids) -> None:
    """The consent history (migration 0015) keeps the withdrawal a later grant would hide."""
    set_consent(
        session,
        customer_id=ids.c1,
        category="care",
        granted=True,
        source="chat",
        channel="web",
        clock=fixed(at(10, 8)),
    )
    birthday, _ = campaign_results(session, october())
    assert birthday.opt_outs == 2
    assert record_care_responses(session, clock=fixed(at(11, 2))) > 0
    birthday, _ = campaign_results(session, october())
    assert birthday.opt_outs == 2


def test_campaign_channel_filter(session: Session, ids: Ids) -> None:
    [birthday] = campaign_results(session, october(channel="web"))
    assert (birthday.planned, birthday.failed, birthday.sent) == (1, 1, 0)


def test_campaign_reasons_without_the_control_group(session: Session, ids: Ids) -> None:
    rows = campaign_reasons(session, october())
    assert [(r.campaign, r.outcome, r.reason, r.messages) for r in rows] == [
        ("birthday_2026", "failed", "errcode 45015", 2),
        ("birthday_2026", "deferred", "unreachable", 1),
        ("birthday_2026", "skipped", "no_consent", 1),
    ]


def test_win_back_offers_and_uplift(session: Session, ids: Ids) -> None:
    [row] = win_back_results(session, october())
    assert (row.offers_issued, row.offers_redeemed, row.redemption_rate) == (2, 1, 0.5)
    assert (row.treated, row.treated_returned, row.control, row.control_returned) == (2, 1, 3, 1)
    assert (row.treated_rate, row.control_rate, row.uplift) == (0.5, 0.3333, 0.1667)
    interval = uplift(1, 2, 1, 3)
    assert (row.uplift_low, row.uplift_high) == (
        round(interval.low or 0, 4),
        round(interval.high or 0, 4),
    )


# Bot performance -----------------------------------------------------------------------------


def test_bot_performance_in_october(session: Session, ids: Ids) -> None:
    figures = bot_performance(session, october())
    assert figures.__dict__ == {
        "conversations": 4,
        "contained": 1,
        "handed_off": 3,
        "containment_rate": 0.25,
        "handoff_rate": 0.75,
        "customer_turns": 6,
        "fallback_turns": 3,
        "fallback_rate": 0.5,
        "handoffs_closed": 2,
        "average_handling_seconds": 2700.0,
    }


@pytest.mark.parametrize(
    ("dimensions", "expected"),
    [
        ({"channel": "wechat"}, (2, 0, 3, 2, 2, 2700.0)),
        ({"agent": "agent"}, (1, 0, 6, 3, 1, 1800.0)),
        ({"agent": "bot"}, (1, 1, 6, 3, 0, None)),
        ({"tier": "金卡"}, (1, 1, 2, 1, 0, None)),
    ],
)
def test_bot_performance_filtered(
    session: Session, ids: Ids, dimensions: dict[str, str], expected: tuple[object, ...]
) -> None:
    f = bot_performance(session, october(**dimensions))
    assert (
        f.conversations,
        f.contained,
        f.customer_turns,
        f.fallback_turns,
        f.handoffs_closed,
        f.average_handling_seconds,
    ) == expected


def test_handoff_reasons_misunderstood_and_agents(session: Session, ids: Ids) -> None:
    reasons = handoff_reasons(session, october())
    assert [(r.reason, r.handoffs, r.share) for r in reasons] == [
        ("customer_request", 2, 0.6667),
        ("fallback_streak", 1, 0.3333),
    ]
    missed = misunderstood_messages(session, october())
    assert [(m.text, m.turns, m.last_seen) for m in missed] == [
        ("嗯嗯啊", 2, at(10, 5, 10, 1)),
        ("怎么弄", 1, at(10, 20, 2, 59)),
    ]
    agents = agent_handling(session, october())
    assert [(a.agent, a.handoffs_closed, a.average_handling_seconds) for a in agents] == [
        ("agent", 1, 1800.0),
        ("agent2", 1, 3600.0),
    ]


# Customers -----------------------------------------------------------------------------------


def test_lifecycle_funnel_and_segments(session: Session, ids: Ids) -> None:
    funnel = lifecycle_funnel(session, DashboardFilter())
    assert [(s.stage, s.customers, s.share, s.revenue_cents) for s in funnel] == [
        ("new", 1, 0.3333, 0),
        ("converting", 0, 0.0, 0),
        ("maintaining", 0, 0.0, 0),
        ("loyal", 1, 0.3333, 100_000),
        ("churning", 1, 0.3333, 50_000),
    ]
    segments = {s.segment: s for s in rfm_segments(session, DashboardFilter())}
    assert (segments["champions"].revenue_cents, segments["champions"].average_clv_cents) == (
        100_000,
        300_000,
    )
    assert (segments["lost"].customers, segments["lost"].average_clv_cents) == (0, None)
    plain = lifecycle_funnel(session, DashboardFilter(tier="普通", channel="web"))
    assert [(s.stage, s.customers) for s in plain if s.customers] == [("churning", 1)]


# The filter ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dimensions",
    [{"channel": "fax"}, {"tier": "黑卡"}, {"segment": "vip"}, {"stage": "asleep"}],
)
def test_unknown_dimension_values_are_refused(dimensions: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        DashboardFilter(**dimensions)  # type: ignore[arg-type]


def test_a_range_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(InvalidInput):
        DashboardFilter(since=OCT[1], until=OCT[0])


def test_every_figure_reads_by_name(session: Session, ids: Ids) -> None:
    assert read_figure(session, "bot", october()) == [bot_performance(session, october())]
    assert read_figure(session, "comments", october(), page_size=1)[0].text == "价格有点贵"


# What the dashboard keeps -------------------------------------------------------------------


def test_the_customer_summary_answers_like_the_metrics(session: Session, ids: Ids) -> None:
    filters = [DashboardFilter(), DashboardFilter(tier="普通"), DashboardFilter(channel="wechat")]
    filters.append(DashboardFilter(segment="champions", stage="loyal"))
    live = [(lifecycle_funnel(session, f), rfm_segments(session, f)) for f in filters]
    assert not summary_is_current(session)
    assert refresh_customer_summary(session) == 3  # one row per customer in the fixture
    assert summary_is_current(session)
    assert [(lifecycle_funnel(session, f), rfm_segments(session, f)) for f in filters] == live


def test_a_summary_of_older_metrics_is_not_read(session: Session, ids: Ids) -> None:
    refresh_customer_summary(session)
    session.execute(update(CustomerMetrics).values(computed_at=at(11, 2)))
    assert not summary_is_current(session)
    assert lifecycle_funnel(session, DashboardFilter())[3].customers == 1


def test_recorded_responses_give_the_same_campaign_figures(session: Session, ids: Ids) -> None:
    live = campaign_results(session, october())
    # On 12 October the win-back's and the first greeting's 7 days have closed, the second
    # greeting's (sent 6 October) not yet.
    assert record_care_responses(session, clock=fixed(at(10, 12))) == 4
    assert campaign_results(session, october()) == live
    assert record_care_responses(session, clock=fixed(at(11, 2))) == 1
    assert record_care_responses(session, clock=fixed(at(11, 2))) == 0
    assert campaign_results(session, october()) == live
    first = session.scalars(
        select(CareMessage).where(CareMessage.customer_id == ids.c1, CareMessage.period == "2026")
    ).one()
    assert (first.replied_at, first.opted_out_at) == (at(10, 5, 10), at(10, 7, 0))
