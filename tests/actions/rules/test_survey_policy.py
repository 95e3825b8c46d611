from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from actions.rules.survey_policy import FatigueWindows, PastSurvey, survey_decision

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)


def days_ago(days: float, nps: bool = True) -> PastSurvey:
    return PastSurvey(NOW - timedelta(days=days), nps)


@pytest.mark.parametrize(
    ("past", "consents", "complaint", "ask", "with_nps", "refusal"),
    [
        ([], True, False, True, True, None),
        ([], False, False, False, False, "opted_out"),
        ([], True, True, False, False, "open_complaint"),
        ([days_ago(6.9)], True, False, False, False, "too_soon"),
        ([days_ago(7)], True, False, True, False, None),
        ([days_ago(30, nps=False)], True, False, True, True, None),
        ([days_ago(89)], True, False, True, False, None),
        ([days_ago(90)], True, False, True, True, None),
        ([days_ago(200), days_ago(8)], True, False, True, False, None),
    ],
)
def test_survey_fatigue(
    past: list[PastSurvey],
    consents: bool,
    complaint: bool,
    ask: bool,
    with_nps: bool,
    refusal: str | None,
) -> None:
    decision = survey_decision(
        NOW, past, consents_to_surveys=consents, has_open_complaint=complaint
    )
    assert (decision.ask, decision.with_nps, decision.refusal) == (ask, with_nps, refusal)


def test_the_windows_are_configurable() -> None:
    windows = FatigueWindows(csat=timedelta(days=1), nps=timedelta(days=2))
    decision = survey_decision(
        NOW, [days_ago(1.5)], consents_to_surveys=True, has_open_complaint=False, windows=windows
    )
    assert decision.ask and not decision.with_nps
