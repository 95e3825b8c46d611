"""Send one proactive message to a customer through Rasa, on the channel that reaches them.

The message is an `EXTERNAL_*` intent whose rule runs an action that composes it from CRM data;
Rasa delivers it through the chosen channel's output channel (`trigger_intent`), so it is in the
conversation's transcript and the CRM's interactions like any other bot message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from bot.care.routing import OUTPUT_CHANNELS, choose_contact_point
from crm_store.clock import Clock, utcnow
from crm_store.customers import get_customer
from crm_store.db import session_scope
from crm_store.reach import ContactPoint, contact_points

TRIGGER_TIMEOUT_S = 30


class NotDelivered(Exception):
    """Rasa refused or failed the trigger; the reason is the message."""


@dataclass(frozen=True)
class Route:
    channel: str
    conversation_id: str

    @property
    def output_channel(self) -> str:
        return OUTPUT_CHANNELS[self.channel]


def route_for(engine: Engine, customer_id: int, clock: Clock = utcnow) -> Route | None:
    """Where a message to the customer goes now, or None when no channel reaches them."""
    with session_scope(engine) as session:
        customer = get_customer(session, customer_id=customer_id)
        points = contact_points(session, customer_id=customer_id, clock=clock)
    point: ContactPoint | None = choose_contact_point(customer.preferred_channel, points)
    return None if point is None else Route(point.channel, point.conversation_id)


def trigger(
    rasa_url: str, token: str, route: Route, intent: str, entities: Mapping[str, Any]
) -> dict[str, Any]:
    """POST /conversations/{id}/trigger_intent with the route's output channel."""
    conversation = urllib.parse.quote(route.conversation_id, safe=":")  # Rasa does not decode
    query = urllib.parse.urlencode({"output_channel": route.output_channel, "token": token})
    url = f"{rasa_url}/conversations/{conversation}/trigger_intent?{query}"
    body = json.dumps({"name": intent, "entities": dict(entities)}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TRIGGER_TIMEOUT_S) as answer:
            return dict(json.loads(answer.read()))
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")[:300]
        raise NotDelivered(f"Rasa answered {error.code}: {detail}") from error
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise NotDelivered(f"Rasa is unreachable: {error}") from error
