"""Survey fatigue: whether a customer may be asked a survey now, on any channel.

| rule | decision |
| --- | --- |
| opted out of surveys (consent "survey" off) | never |
| a complaint of theirs is open | not now |
| asked any survey within the CSAT window (default 7 days) | not now |
| otherwise | ask CSAT; ask NPS too only if none was asked within the NPS window (90 days) |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Refusal = Literal["opted_out", "open_complaint", "too_soon", "anonymous"]


@dataclass(frozen=True)
class FatigueWindows:
    csat: timedelta = timedelta(days=7)
    nps: timedelta = timedelta(days=90)


@dataclass(frozen=True)
class PastSurvey:
    asked_at: datetime
    asked_nps: bool


@dataclass(frozen=True)
class SurveyDecision:
    ask: bool
    with_nps: bool = False
    refusal: Refusal | None = None


def survey_decision(
    now: datetime,
    past: Sequence[PastSurvey],
    *,
    consents_to_surveys: bool,
    has_open_complaint: bool,
    windows: FatigueWindows = FatigueWindows(),
) -> SurveyDecision:
    if not consents_to_surveys:
        return SurveyDecision(False, refusal="opted_out")
    if has_open_complaint:
        return SurveyDecision(False, refusal="open_complaint")
    if any(now - survey.asked_at < windows.csat for survey in past):
        return SurveyDecision(False, refusal="too_soon")
    recent_nps = any(s.asked_nps and now - s.asked_at < windows.nps for s in past)
    return SurveyDecision(True, with_nps=not recent_nps)
