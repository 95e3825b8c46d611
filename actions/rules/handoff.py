"""When people staff the console, and why a conversation is handed over.

Staffed hours come from CAREBOT_HANDOFF_HOURS ("09:00-21:00", every day, in
CAREBOT_HANDOFF_TIMEZONE, by default the business zone crm_store.clock.BUSINESS_TZ). Unset, ""
or "always" means around the clock, so that the demo works at any hour. A range that ends before
it starts runs past midnight ("20:00-02:00").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from crm_store.clock import BUSINESS_TZ

ALWAYS = ("", "always", "24h")


@dataclass(frozen=True)
class StaffedHours:
    start: time
    end: time
    zone: ZoneInfo
    always: bool = False

    def label(self) -> str:
        """The hours as the customer reads them: "09:00-21:00"."""
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def is_open(self, moment: datetime) -> bool:
        if self.always:
            return True
        local = moment.astimezone(self.zone).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_opening(self, moment: datetime) -> datetime:
        """The next time staff start work after `moment` (`moment` itself while open)."""
        if self.is_open(moment):
            return moment
        local = moment.astimezone(self.zone)
        opening = datetime.combine(local.date(), self.start, tzinfo=self.zone)
        if opening <= local:
            opening = datetime.combine(local.date() + timedelta(days=1), self.start, self.zone)
        return opening


def parse_staffed_hours(text: str | None, zone: str = "") -> StaffedHours:
    """ "09:00-21:00" → StaffedHours in `zone` ("": the business zone); ValueError on anything
    else (a configuration error)."""
    tz = ZoneInfo(zone) if zone else BUSINESS_TZ
    text = (text or "").strip().lower()
    if text in ALWAYS:
        return StaffedHours(time(0), time(0), tz, always=True)
    start, separator, end = text.partition("-")
    if not separator:
        raise ValueError(f"staffed hours must look like 09:00-21:00, not {text!r}")
    return StaffedHours(time.fromisoformat(start.strip()), time.fromisoformat(end.strip()), tz)


def handoff_reason(recent_intents: Sequence[str | None]) -> str:
    """Why the customer wants a person, from their latest few intents: a complaint, the bot
    missing them (nlu_fallback, or out_of_scope: both count as misses, docs/handoff.md), or
    simply asking."""
    if "complaint" in recent_intents:
        return "complaint"
    if "nlu_fallback" in recent_intents or "out_of_scope" in recent_intents:
        return "fallback"
    return "customer_request"
