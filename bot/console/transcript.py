"""A conversation's transcript for the console, read from Rasa's tracker events.

The tracker has everything: the customer's messages (also those sent while the bot was
paused), the bot's answers and the agents' replies (BotUttered with `handled_by: agent`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class Line:
    index: int  # position in the tracker's events: the client asks for lines after the last one
    speaker: str  # customer | bot | agent | system
    text: str
    at: str  # ISO time, UTC
    who: str | None = None  # the agent's name

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


SYSTEM_EVENTS = {"pause": "paused", "resume": "resumed"}


def _at(event: dict[str, Any]) -> str:
    stamp = event.get("timestamp")
    if not isinstance(stamp, (int, float)):
        return ""
    return datetime.fromtimestamp(stamp, timezone.utc).isoformat(timespec="seconds")


def _buttons(event: dict[str, Any]) -> str:
    buttons = (event.get("data") or {}).get("buttons") or []
    titles = [str(b.get("title")) for b in buttons if isinstance(b, dict)]
    return f" [{' | '.join(titles)}]" if titles else ""


def line_of(index: int, event: dict[str, Any]) -> Line | None:
    kind = event.get("event")
    if kind == "user":
        external = str(event.get("text") or "").startswith("EXTERNAL: ")
        if external or (event.get("metadata") or {}).get("is_external"):
            return None  # EXTERNAL_* intents from the console or the scheduler
        return Line(index, "customer", str(event.get("text") or ""), _at(event))
    if kind == "bot":
        metadata = event.get("metadata") or {}
        text = str(event.get("text") or "") + _buttons(event)
        if metadata.get("handled_by") == "agent":
            return Line(index, "agent", text, _at(event), metadata.get("agent_name"))
        return Line(index, "bot", text, _at(event))
    if kind in SYSTEM_EVENTS:
        return Line(index, "system", SYSTEM_EVENTS[kind], _at(event))
    return None


def transcript(events: Iterable[dict[str, Any]], after: int = -1) -> list[Line]:
    """The lines of the events after position `after`; a pause or resume repeated in a row
    (the handoff action pauses, then the console again when an agent joins) shows once."""
    listed = list(events)
    lines = []
    for index, event in enumerate(listed):
        line = line_of(index, event)
        if line is None or index <= after or _repeats(listed, index):
            continue
        lines.append(line)
    return lines


def _repeats(events: list[dict[str, Any]], index: int) -> bool:
    """A pause (resume) whose previous shown event was a pause (resume) too."""
    kind = events[index].get("event")
    if kind not in SYSTEM_EVENTS:
        return False
    for earlier in reversed(events[:index]):
        if line_of(0, earlier) is not None:
            return bool(earlier.get("event") == kind)
    return False
