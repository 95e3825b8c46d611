"""The contact budget: consent, complaints, the weekly cap, priority, quiet hours."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from tests.oracles.budget import (
    Candidate,
    by_priority,
    consented,
    contacts_near,
    decide,
    defer_quiet_hours,
    has_room,
    offers_blocked,
)

DAY = date(2026, 11, 20)
SHANGHAI = ZoneInfo("Asia/Shanghai")
ALL_GRANTED = {"care": True, "follow_up": True, "survey": True, "offer": True}


def candidate(
    key: str, category: str = "care", period: str = "2026", **kwargs: object
) -> Candidate:
    return Candidate(key, category, period, **kwargs)  # type: ignore[arg-type]


def outcomes(candidates: list[Candidate], used: int = 0, **kwargs: object) -> dict[str, str]:
    options: dict[str, object] = {"consents": ALL_GRANTED, "open_complaint": False, "used": used}
    decided = decide(candidates, **{**options, **kwargs})  # type: ignore[arg-type]
    return {f"{c.campaign_key}:{c.period}": outcome for c, outcome in decided}


def test_consent_per_category_with_offers_opt_in_only() -> None:
    assert consented({}, "care") and consented({}, "follow_up")
    assert not consented({}, "offer")  # marketing needs an explicit opt-in
    assert not consented({"care": False}, "care")
    decided = outcomes([candidate("birthday")], consents={"care": False})
    assert decided == {"birthday:2026": "no_consent"}


def test_no_offer_while_a_complaint_is_open_but_care_still_goes() -> None:
    assert offers_blocked("offer", open_complaint=True)
    assert not offers_blocked("care", open_complaint=True)
    assert not offers_blocked("offer", open_complaint=False)
    decided = outcomes(
        [candidate("win_back", "offer", "2026-H2"), candidate("birthday")], open_complaint=True
    )
    assert decided == {"win_back:2026-H2": "open_complaint", "birthday:2026": "send"}


def test_at_most_two_contacts_a_week_the_most_important_first() -> None:
    decided = outcomes(
        [
            candidate("win_back", "offer", "2026-H2"),
            candidate("birthday"),
            candidate("holiday", period="2026-x"),
            candidate("delivery_follow_up", "follow_up", "DD1"),
        ]
    )
    assert decided == {
        "delivery_follow_up:DD1": "send",
        "birthday:2026": "send",
        "holiday:2026-x": "budget",
        "win_back:2026-H2": "budget",
    }


def test_contacts_already_made_count_against_the_cap() -> None:
    assert outcomes([candidate("birthday")], used=1) == {"birthday:2026": "send"}
    assert outcomes([candidate("birthday")], used=2) == {"birthday:2026": "budget"}
    assert outcomes([candidate("birthday")], used=0, cap=0) == {"birthday:2026": "budget"}
    assert has_room(1) and not has_room(2) and has_room(2, cap=3)


def test_surveys_and_messages_within_seven_days_either_side_count() -> None:
    noon = datetime(2026, 11, 20, 4, 0, tzinfo=timezone.utc)
    inside = [noon - timedelta(days=6), noon, noon + timedelta(days=6)]
    outside = [noon - timedelta(days=8), noon + timedelta(days=8)]
    assert contacts_near(inside + outside, DAY) == 3


def test_one_message_a_day_per_campaign_the_best_ranked_first() -> None:
    decided = outcomes(
        [
            candidate("warranty_reminder", period="DD1-AF", rank=20),
            candidate("warranty_reminder", period="DD2-RV", rank=10),
        ]
    )
    assert decided == {
        "warranty_reminder:DD2-RV": "send",
        "warranty_reminder:DD1-AF": "one_per_day",
    }
    same_day = outcomes([candidate("warranty_reminder", period="DD3-X", planned_same_day=True)])
    assert same_day == {"warranty_reminder:DD3-X": "one_per_day"}


def test_reasons_come_in_a_fixed_order_and_the_control_group_uses_no_budget() -> None:
    planned = candidate("birthday", already_planned=True)
    assert outcomes([planned], consents={"care": False}) == {"birthday:2026": "already_planned"}
    held_out = candidate("win_back", "offer", "2026-H2", control_group=True)
    decided = outcomes([held_out, candidate("holiday", period="2026-x")], used=1)
    assert decided == {"holiday:2026-x": "send", "win_back:2026-H2": "control_group"}


def test_priority_order_puts_a_complaint_follow_up_first_and_promotions_last() -> None:
    keys = ["win_back", "care_tip", "birthday", "complaint_follow_up", "delivery_follow_up"]
    assert by_priority(keys) == [
        "complaint_follow_up",
        "delivery_follow_up",
        "birthday",
        "care_tip",
        "win_back",
    ]


def test_quiet_hours_defer_to_their_end_across_midnight() -> None:
    def local(hour: int, minute: int = 0, day: date = DAY) -> datetime:
        return datetime.combine(day, time(hour, minute), SHANGHAI)

    overnight = (time(22), time(8))
    assert defer_quiet_hours(local(23, 30), overnight) == local(8, day=DAY + timedelta(days=1))
    assert defer_quiet_hours(local(3), overnight) == local(8)
    assert defer_quiet_hours(local(10), overnight) == local(10)
    assert defer_quiet_hours(local(22), overnight) == local(8, day=DAY + timedelta(days=1))
    assert defer_quiet_hours(local(8), overnight) == local(8)
    daytime = (time(12), time(14))
    assert defer_quiet_hours(local(13), daytime) == local(14)
    assert defer_quiet_hours(local(13), (None, None)) == local(13)
