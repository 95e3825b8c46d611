"""节日问候: the first day of a greeted Chinese festival (rules.holiday_on), to everyone."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import literal, select
from sqlalchemy.sql import Select

from crm_store.campaigns.candidates import candidate_columns
from crm_store.campaigns.rules import PlanSettings, holiday_on
from crm_store.campaigns.spec import CampaignSpec


def candidates(day: date, now: datetime, settings: PlanSettings) -> Select | None:
    key = holiday_on(day, settings)
    if key is None:
        return None
    return select(*candidate_columns(literal(f"{day.year}-{key}"), literal(key), literal(0)))


SPEC = CampaignSpec(
    key="holiday",
    name="节日问候",
    kind="holiday",
    category="care",
    priority=50,
    per_item=False,
    candidates=candidates,
    composer="holiday",
    responses=("utter_care_holiday",),
)
