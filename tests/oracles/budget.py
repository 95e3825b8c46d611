"""The contact budget: the one policy every proactive message passes, as pure functions.

For each candidate message, in this order (the first that applies is the outcome):
  already_planned  this customer, campaign and period already have an outbox row;
  one_per_day      another message of the same campaign is due that day (the next one waits);
  no_consent       the campaign's consent category is not granted (defaults: CONSENT_DEFAULTS);
  open_complaint   an offer while a complaint of the customer's is open;
  control_group    the win-back hold-out (its row is written `skipped`, to measure the uplift);
  budget           `weekly_cap` (2) contacts already fall within 7 days either side of the day;
  otherwise it is sent, at the campaign's local time moved past the customer's quiet hours.
Contacts are outbox rows that are or will be sent, and surveys asked (post-purchase surveys
come with their delivery follow-up, which already counts). Campaigns are planned in PRIORITY
order, so a complaint follow-up or a delivery follow-up takes the budget before a promotion.
crm_store/campaigns/ (the candidate queries and pipeline.py) applies the same policy in SQL;
the tests hold the two together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from crm_store.campaigns.registry import priority_order
from crm_store.campaigns.rules import business_midnight, defer_past_quiet_hours
from crm_store.customers import CONSENT_DEFAULTS

PRIORITY = priority_order()
DEFAULT_WEEKLY_CAP = 2
WINDOW_DAYS = 7
SEND = "send"


@dataclass(frozen=True)
class Candidate:
    """One message a campaign would send a customer, with what the budget needs to know."""

    campaign_key: str
    category: str
    period: str
    rank: float = 0
    already_planned: bool = False
    planned_same_day: bool = False
    control_group: bool = False


def consented(consents: Mapping[str, bool], category: str) -> bool:
    return consents.get(category, CONSENT_DEFAULTS[category])


def offers_blocked(category: str, open_complaint: bool) -> bool:
    """No offer while a complaint of the customer's is open."""
    return category == "offer" and open_complaint


def contact_window(day: date) -> tuple[datetime, datetime]:
    """The contacts that count against a message on `day`: 7 days before it to 7 days after
    (rows already scheduled later count too, so no rolling week ever exceeds the cap)."""
    return (
        business_midnight(day - timedelta(days=WINDOW_DAYS - 1)),
        business_midnight(day + timedelta(days=WINDOW_DAYS)),
    )


def contacts_near(contacts: Iterable[datetime], day: date) -> int:
    start, end = contact_window(day)
    return sum(start <= at < end for at in contacts)


def has_room(used: int, cap: int = DEFAULT_WEEKLY_CAP) -> bool:
    return used < cap


def defer_quiet_hours(local: datetime, quiet: tuple[time | None, time | None]) -> datetime:
    """Deferred, never dropped: a time inside quiet hours moves to their end."""
    return defer_past_quiet_hours(local, *quiet)


def by_priority(campaign_keys: Iterable[str]) -> list[str]:
    """Campaign keys, the one that wins the budget first (unknown keys last)."""
    return sorted(campaign_keys, key=lambda key: PRIORITY.index(key) if key in PRIORITY else 99)


def first_reason(
    candidate: Candidate, consents: Mapping[str, bool], open_complaint: bool
) -> str | None:
    """The reasons that do not depend on the other candidates."""
    if candidate.already_planned:
        return "already_planned"
    if candidate.planned_same_day:
        return "one_per_day"
    if not consented(consents, candidate.category):
        return "no_consent"
    if offers_blocked(candidate.category, open_complaint):
        return "open_complaint"
    if candidate.control_group:
        return "control_group"
    return None


def decide(
    candidates: Sequence[Candidate],
    *,
    consents: Mapping[str, bool],
    open_complaint: bool,
    used: int,
    cap: int = DEFAULT_WEEKLY_CAP,
) -> list[tuple[Candidate, str]]:
    """One customer's candidates of one day -> (candidate, "send" or the reason not to).

    Campaigns in priority order; within a campaign only the best-ranked message goes today;
    each message sent uses one contact of the budget.
    """
    outcomes: list[tuple[Candidate, str]] = []
    for key in by_priority(dict.fromkeys(c.campaign_key for c in candidates)):
        mine = sorted((c for c in candidates if c.campaign_key == key), key=_order)
        reasons = [first_reason(c, consents, open_complaint) for c in mine]
        first_free = next((i for i, reason in enumerate(reasons) if reason is None), None)
        for index, (candidate, reason) in enumerate(zip(mine, reasons, strict=True)):
            if reason is None and index != first_free:
                reason = "one_per_day"
            elif reason is None and not has_room(used, cap):
                reason = "budget"
            elif reason is None:
                used += 1
            outcomes.append((candidate, reason or SEND))
    return outcomes


def _order(candidate: Candidate) -> tuple[float, str]:
    return candidate.rank, candidate.period
