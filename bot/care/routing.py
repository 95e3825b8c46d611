"""Which channel a proactive message takes: the customer's preferred one when it reaches them
now, otherwise another that does, otherwise none (the message waits in the outbox)."""

from __future__ import annotations

from collections.abc import Sequence

from crm_store.reach import ContactPoint

# The Rasa input channel that delivers on each CRM channel (its `output_channel` name).
OUTPUT_CHANNELS = {"web": "webchat", "wechat": "wechat"}


def choose_contact_point(
    preferred_channel: str, points: Sequence[ContactPoint]
) -> ContactPoint | None:
    reachable = [point for point in points if point.reachable]
    preferred = [point for point in reachable if point.channel == preferred_channel]
    candidates = preferred or reachable
    return candidates[0] if candidates else None
