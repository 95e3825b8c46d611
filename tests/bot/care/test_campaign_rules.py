"""The campaigns' pure eligibility rules at injected dates."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from crm_store.campaigns.rules import (
    PlanSettings,
    birthday_offer_key,
    care_tip_dates,
    control_bucket,
    is_campaign_offer,
    win_back_offer_key,
)
from crm_store.customers import LunarBirthday
from tests.oracles.campaigns import (
    birthday,
    care_tip,
    delivery_follow_up,
    follow_up,
    holiday,
    warranty_reminder,
    win_back,
)
from tests.oracles.campaigns.facts import CustomerFacts, Delivery, OwnedItem

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 2026-11-19 18:00 UTC: 02:00 on the 20th in Shanghai, before the 10:00 send time.
EARLY = datetime(2026, 11, 19, 18, 0, tzinfo=timezone.utc)
DAY = date(2026, 11, 20)


def at(day: date, hour: int, minute: int = 0, zone: str = "Asia/Shanghai") -> datetime:
    return datetime.combine(day, time(hour, minute), ZoneInfo(zone)).astimezone(timezone.utc)


def facts(**kwargs: object) -> CustomerFacts:
    return CustomerFacts(customer_id=kwargs.pop("customer_id", 1), **kwargs)  # type: ignore[arg-type]


# --- birthdays ---------------------------------------------------------------------------------


def test_a_birthday_is_due_at_ten_local_time_on_the_day_with_a_gift_by_tier() -> None:
    gold = facts(birthday=date(1990, 11, 20), tier="金卡")
    decision = birthday.eligible(gold, DAY, now=EARLY)
    assert decision.eligible and decision.period == "2026"
    assert decision.scheduled_at == at(DAY, 10) and not decision.deferred
    assert decision.detail == "birthday_2026_gold"  # a coupon, issued with the outbox row
    basic = facts(birthday=date(1990, 11, 20), tier="普通")
    assert birthday.eligible(basic, DAY, now=EARLY).detail == "points:100"
    assert not birthday.eligible(gold, DAY + timedelta(days=1), now=EARLY).eligible
    assert not birthday.eligible(facts(), DAY, now=EARLY).eligible  # no birthday known


def test_a_29_february_birthday_is_celebrated_on_28_february_in_common_years() -> None:
    leapling = facts(birthday=date(1996, 2, 29))
    assert birthday.eligible(leapling, date(2026, 2, 28), now=EARLY).eligible
    assert not birthday.eligible(leapling, date(2026, 3, 1), now=EARLY).eligible
    assert birthday.eligible(leapling, date(2028, 2, 29), now=EARLY).eligible
    assert not birthday.eligible(leapling, date(2028, 2, 28), now=EARLY).eligible


def lunar(month: int, day: int, leap: bool = False) -> CustomerFacts:
    return facts(
        birthday=date(1990, 1, 1),
        lunar_birthday=LunarBirthday(month, day, leap),
        celebrates_lunar_birthday=True,
    )


def test_a_lunar_birthday_moves_with_the_lunar_calendar() -> None:
    mid_autumn_born = lunar(8, 15)
    assert birthday.eligible(mid_autumn_born, date(2026, 9, 25), now=EARLY).eligible
    assert birthday.eligible(mid_autumn_born, date(2027, 9, 15), now=EARLY).eligible
    assert not birthday.eligible(
        mid_autumn_born, date(1990, 1, 1).replace(year=2026), now=EARLY
    ).eligible


def test_a_leap_month_birthday_falls_back_to_the_plain_month_without_that_leap_month() -> None:
    born_in_leap_sixth = lunar(6, 10, leap=True)
    # 2025 has a leap sixth month: the birthday is in it, not in the plain sixth month.
    assert birthday.eligible(born_in_leap_sixth, date(2025, 8, 3), now=EARLY).eligible
    assert not birthday.eligible(born_in_leap_sixth, date(2025, 7, 4), now=EARLY).eligible
    # 2026 has none: the plain sixth month's 10th (2026-07-23).
    assert birthday.eligible(born_in_leap_sixth, date(2026, 7, 23), now=EARLY).eligible


def test_the_30th_of_a_lunar_month_that_has_29_days_this_year_is_celebrated_on_the_29th() -> None:
    born_on_the_30th = lunar(8, 30)  # the eighth month of 2026 has 29 days
    assert birthday.eligible(born_on_the_30th, date(2026, 10, 9), now=EARLY).eligible  # 8/29
    assert birthday.eligible(born_on_the_30th, date(2024, 10, 2), now=EARLY).eligible  # 8/30
    assert not birthday.eligible(born_on_the_30th, date(2024, 10, 1), now=EARLY).eligible


def test_the_day_is_the_customers_local_day_in_another_time_zone() -> None:
    new_yorker = facts(birthday=date(1990, 11, 20), timezone="America/New_York")
    decision = birthday.eligible(new_yorker, DAY, now=EARLY)
    assert decision.scheduled_at == at(DAY, 10, zone="America/New_York")
    assert decision.scheduled_at == datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)


def test_quiet_hours_across_midnight_defer_the_message_to_their_end_never_drop_it() -> None:
    late_sleeper = facts(birthday=date(1990, 11, 20), quiet_hours=(time(23), time(11)))
    decision = birthday.eligible(late_sleeper, DAY, now=EARLY)
    assert decision.eligible and decision.deferred
    assert decision.scheduled_at == at(DAY, 11)


def test_planned_late_in_the_evening_inside_quiet_hours_it_goes_the_next_morning() -> None:
    planned_at = at(DAY, 23, 30)
    decision = birthday.eligible(facts(birthday=date(1990, 11, 20)), DAY, now=planned_at)
    assert decision.deferred and decision.scheduled_at == at(DAY + timedelta(days=1), 8)
    after_ten = birthday.eligible(facts(birthday=date(1990, 11, 20)), DAY, now=at(DAY, 15))
    assert not after_ten.deferred and after_ten.scheduled_at == at(DAY, 15)


# --- holidays ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "period"),
    [
        (date(2026, 2, 17), "2026-spring_festival"),
        (date(2026, 9, 25), "2026-mid_autumn"),
        (date(2026, 6, 19), "2026-dragon_boat"),
        (date(2026, 10, 1), "2026-national_day"),
        (date(2027, 2, 6), "2027-spring_festival"),
    ],
)
def test_festivals_come_from_the_holiday_calendar(day: date, period: str) -> None:
    assert holiday.eligible(facts(), day, now=EARLY).period == period


@pytest.mark.parametrize(
    "day", [date(2026, 2, 18), date(2026, 10, 2), date(2026, 4, 5), date(2026, 11, 20)]
)
def test_only_a_festivals_first_day_is_greeted_and_qingming_never(day: date) -> None:
    assert not holiday.eligible(facts(), day, now=EARLY).eligible


# --- follow-up visits ----------------------------------------------------------------------------


def buyer(frequency: int, average_cents: int, **kwargs: object) -> CustomerFacts:
    values: dict[str, object] = {
        "frequency": frequency,
        "monetary_cents": frequency * average_cents,
        "last_order_at": datetime(2026, 9, 1, tzinfo=timezone.utc),
        "customer_id": 28,  # 28 % 28 = 0: due from a period's first day
    }
    return facts(**{**values, **kwargs})


def test_follow_up_cadence_follows_the_customer_type() -> None:
    frequent_cheap = follow_up.eligible(buyer(6, 20_000), DAY, now=EARLY)
    rare_expensive = follow_up.eligible(buyer(1, 250_000), DAY, now=EARLY)
    in_between = follow_up.eligible(buyer(3, 60_000), DAY, now=EARLY)
    assert (frequent_cheap.period, frequent_cheap.detail) == ("2026-11", "monthly")
    assert (rare_expensive.period, rare_expensive.detail) == ("2026-H2", "half_yearly")
    assert (in_between.period, in_between.detail) == ("2026-Q4", "quarterly")


def test_a_periods_follow_ups_spread_over_four_weeks_by_customer_id() -> None:
    due_from_the_10th = buyer(6, 20_000, customer_id=9)  # 9 % 28: due from day index 9
    assert not follow_up.eligible(due_from_the_10th, date(2026, 11, 9), now=EARLY).eligible
    assert follow_up.eligible(due_from_the_10th, date(2026, 11, 10), now=EARLY).eligible
    assert follow_up.eligible(due_from_the_10th, date(2026, 11, 30), now=EARLY).eligible


def test_no_follow_up_for_prospects_recent_buyers_or_customers_at_win_back_risk() -> None:
    assert not follow_up.eligible(facts(customer_id=28), DAY, now=EARLY).eligible
    recent = buyer(6, 20_000, last_order_at=EARLY - timedelta(days=3))
    assert not follow_up.eligible(recent, DAY, now=EARLY).eligible
    drifting = buyer(6, 20_000, churn_risk=75)
    assert not follow_up.eligible(drifting, DAY, now=EARLY).eligible


# --- delivery follow-up, care tips, warranty reminders -----------------------------------


def test_the_delivery_follow_up_is_due_from_d_plus_3_and_caught_up_until_d_plus_7() -> None:
    delivered = Delivery("DD202611170001", at(date(2026, 11, 17), 23, 30))  # Shanghai day 17th
    due_on = {
        day.day
        for day in (date(2026, 11, d) for d in range(18, 27))
        if delivery_follow_up.eligible(facts(), [delivered], day, now=EARLY)
    }
    assert due_on == {20, 21, 22, 23, 24}
    (decision,) = delivery_follow_up.eligible(facts(), [delivered], DAY, now=EARLY)
    assert decision.period == "DD202611170001"


def item(sku: str, ends: date, price: int = 39_900, order: str = "DD202511200001") -> OwnedItem:
    return OwnedItem(order, sku, price, datetime(2025, 11, 20, tzinfo=timezone.utc), ends)


def test_a_warranty_reminder_is_due_within_30_days_of_the_end_the_soonest_first() -> None:
    items = [item("RV-700", DAY + timedelta(days=20)), item("AF-200", DAY + timedelta(days=31))]
    (decision,) = warranty_reminder.eligible(facts(), items, DAY, now=EARLY)
    assert decision.period == "DD202511200001-RV-700" and decision.detail == "RV-700"
    assert warranty_reminder.eligible(facts(), [item("X", DAY)], DAY, now=EARLY)
    assert not warranty_reminder.eligible(
        facts(), [item("X", DAY - timedelta(days=1))], DAY, now=EARLY
    )


def test_care_tips_come_monthly_on_the_warranty_day_while_far_from_its_end() -> None:
    owned = item("WP-600", date(2028, 3, 20))
    (decision,) = care_tip.eligible(facts(), [owned], DAY, now=EARLY)
    assert decision.period == "WP-600-2026-11"
    assert not care_tip.eligible(facts(), [owned], DAY + timedelta(days=1), now=EARLY)
    near_end = item("WP-600", DAY + timedelta(days=30))
    assert not care_tip.eligible(facts(), [near_end], DAY, now=EARLY)  # the reminder's turn
    just_bought = OwnedItem("DD1", "WP-600", 1, EARLY - timedelta(days=3), date(2028, 3, 20))
    assert not care_tip.eligible(facts(), [just_bought], DAY, now=EARLY)


def test_the_months_last_day_also_takes_the_days_it_lacks() -> None:
    ends_on_31st = item("KT-090", date(2027, 1, 31))
    assert care_tip.eligible(facts(), [ends_on_31st], date(2026, 11, 30), now=EARLY)
    assert not care_tip.eligible(facts(), [ends_on_31st], date(2026, 11, 29), now=EARLY)


# --- win-back ----------------------------------------------------------------------------------


def drifting(**kwargs: object) -> CustomerFacts:
    values: dict[str, object] = {"frequency": 3, "churn_risk": 75, "clv_cents": 50_000}
    return facts(**{**values, **kwargs})


def test_win_back_needs_a_buyer_over_the_churn_risk_threshold() -> None:
    decision = win_back.eligible(drifting(), DAY, now=EARLY)
    assert decision.eligible and decision.period == "2026-H2"
    assert not win_back.eligible(drifting(churn_risk=59), DAY, now=EARLY).eligible
    never_bought = facts(frequency=0, churn_risk=90)
    assert not win_back.eligible(never_bought, DAY, now=EARLY).eligible
    assert win_back.eligible(drifting(), date(2027, 1, 5), now=EARLY).period == "2027-H1"


def test_the_offer_grows_with_lifetime_value_and_tier() -> None:
    def offer(**kwargs: object) -> str | None:
        return win_back.eligible(drifting(**kwargs), DAY, now=EARLY).detail

    assert offer(clv_cents=50_000) == "win_back_2026-H2_l1"
    assert offer(clv_cents=200_000) == "win_back_2026-H2_l2"
    assert offer(clv_cents=600_000) == "win_back_2026-H2_l3"
    assert offer(clv_cents=200_000, tier="金卡") == "win_back_2026-H2_l3"
    assert offer(clv_cents=600_000, tier="钻石") == "win_back_2026-H2_l3"


def test_the_control_group_is_random_but_reproducible_with_the_configured_share() -> None:
    settings = PlanSettings(control_share=10)
    held_out = [c for c in range(1, 20_001) if win_back.in_control_group(c, "2026-H2", settings)]
    assert 1_800 < len(held_out) < 2_200
    again = [c for c in range(1, 20_001) if win_back.in_control_group(c, "2026-H2", settings)]
    assert held_out == again
    next_half = {c for c in range(1, 20_001) if control_bucket(c, "2027-H1") < 10}
    assert next_half != set(held_out)  # a new draw each period
    assert not any(
        win_back.in_control_group(c, "2026-H2", PlanSettings(control_share=0))
        for c in range(1, 500)
    )


@pytest.mark.parametrize(
    "day", [date(2026, 11, 20), date(2026, 11, 30), date(2027, 2, 28), date(2028, 2, 28)]
)
def test_the_sql_list_of_tip_dates_is_the_pure_tip_day_rule(day: date) -> None:
    settings = PlanSettings()
    horizon = [day + timedelta(days=n) for n in range(0, 3 * 366)]
    expected = [
        d
        for d in horizon
        if care_tip.tip_day(d, day) and d > day + timedelta(days=settings.warranty_notice_days)
    ]
    assert care_tip_dates(day, settings)[: len(expected)] == expected


def test_campaign_offers_are_told_apart_from_public_ones() -> None:
    assert is_campaign_offer(win_back_offer_key("2026-H2", 3))
    assert is_campaign_offer(birthday_offer_key("2026", "钻石"))
    assert not is_campaign_offer("win_back_20") and not is_campaign_offer("birthday_month")
