"""Trackers, slots and responses for action tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from rasa_sdk import Tracker

SEEDED_AT = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
NOW = SEEDED_AT
DOMAIN: dict[str, Any] = yaml.safe_load(Path("domain.yml").read_text(encoding="utf-8"))
WANG, LI, ZHANG = 1, 2, 3  # the fixed demo customers
INPUT_CHANNELS = {"web": "webchat", "wechat": "wechat", "rest": "rest"}


def tracker(
    *,
    sender: str = "web-test",
    slots: dict[str, Any] | None = None,
    text: str = "",
    intent: str = "",
    entities: list[dict[str, Any]] | None = None,
    events: list[dict[str, Any]] | None = None,
    active_loop: str | None = None,
    extra: dict[str, Any] | None = None,
    extracted: dict[str, Any] | None = None,
    channel: str = "web",
) -> Tracker:
    """A tracker as the Rasa server sends it; `extracted` are the slots a form just filled from
    the latest message (what its validation action validates). `channel` is what our input
    channel wrote into the session's metadata (`web`, `wechat`, `rest`)."""
    message = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.99},
        "entities": entities or [],
        **(extra or {}),
    }
    all_slots = {name: spec.get("initial_value") for name, spec in DOMAIN["slots"].items()}
    all_slots["session_started_metadata"] = {"channel": channel}
    all_slots.update(slots or {})
    all_slots.update(extracted or {})
    slot_events = [{"event": "slot", "name": k, "value": v} for k, v in (extracted or {}).items()]
    metadata = all_slots["session_started_metadata"] or {}
    named = metadata.get("channel")
    input_channel = INPUT_CHANNELS.get(str(named), named)
    user_event = {
        "event": "user",
        "text": text,
        "parse_data": message,
        "input_channel": input_channel,
    }
    return Tracker(
        sender,
        all_slots,
        message,
        [*(events or []), user_event, *slot_events],
        False,
        None,
        {"name": active_loop} if active_loop else {},
        "action_listen",
    )


def identified(customer_id: int, name: str = "") -> dict[str, Any]:
    return {"identified": True, "customer_id": float(customer_id), "customer_name": name}


Run = Callable[..., tuple[list[dict[str, Any]], list[dict[str, Any]]]]


def responses(messages: list[dict[str, Any]]) -> list[str]:
    return [m.get("response") or "" for m in messages]


def slots_set(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
