"""Send one proactive message to a customer through Rasa, on the channel that reaches them.

The message is an `EXTERNAL_*` intent whose rule runs an action that composes it from CRM data;
Rasa delivers it through the chosen channel's output channel (`trigger_intent`), so it is in the
conversation's transcript and the CRM's interactions like any other bot message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from bot.care.routing import OUTPUT_CHANNELS, choose_contact_point
from bot.rasa_api import RasaApi, RasaError
from crm_store.clock import Clock, utcnow
from crm_store.customers import get_customer
from crm_store.db import session_scope
from crm_store.reach import ContactPoint, contact_points

TRIGGER_TIMEOUT_S = 30


class NotDelivered(Exception):
    """Rasa refused or failed the trigger, or cannot name the conversation; the reason is the
    message (bot.rasa_api's)."""


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
    """Trigger the intent in the route's conversation, answered on its output channel."""
    api = RasaApi(rasa_url, token, timeout_s=TRIGGER_TIMEOUT_S)
    try:
        return api.trigger_intent(route.conversation_id, intent, entities, route.output_channel)
    except RasaError as error:
        raise NotDelivered(str(error)) from error
