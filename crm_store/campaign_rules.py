"""Moved to crm_store.campaigns.rules (issue 20). Only re-exports, for the modules other
branches are moving at the same time (bot/care/campaigns/, bot/care/budget.py, the benchmark);
delete once they import crm_store.campaigns.rules."""

from crm_store.campaigns.registry import priority_order
from crm_store.campaigns.rules import (
    BIRTHDAY_GIFTS,
    BUSINESS_TZ,
    Gift,
    PlanSettings,
    birthday_offer_key,
    business_midnight,
    cadence_period,
    control_bucket,
    defer_past_quiet_hours,
    follow_up_cadence,
    half_year_period,
    holiday_on,
    local_date,
    month_period,
    period_start,
    send_time,
    spread_offset,
    win_back_level,
    win_back_offer_key,
)

PRIORITY = priority_order()

__all__ = [
    "BIRTHDAY_GIFTS",
    "BUSINESS_TZ",
    "PRIORITY",
    "Gift",
    "PlanSettings",
    "birthday_offer_key",
    "business_midnight",
    "cadence_period",
    "control_bucket",
    "defer_past_quiet_hours",
    "follow_up_cadence",
    "half_year_period",
    "holiday_on",
    "local_date",
    "month_period",
    "period_start",
    "send_time",
    "spread_offset",
    "win_back_level",
    "win_back_offer_key",
]
