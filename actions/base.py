"""What every CRM-backed action shares: one transaction per run, the customer it may talk about,
and a polite answer instead of an error when the CRM database is down.

The database is synchronous (SQLAlchemy), so the work runs in a worker thread and the action
server keeps serving other conversations meanwhile.

The domain: Rasa sends its whole domain (about 44 KB of JSON) with every action call unless the
action endpoint enables selective domains (`enable_selective_domain`, bot/runtime.py), which it
does; an action then reads the responses and forms of `domain.yml` from its own checkout, the same
release as the model (`CAREBOT_DOMAIN`, default the project's `domain.yml`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from crm_store.clock import BUSINESS_TZ, Clock, fixed, utcnow
from crm_store.customers import Customer, get_customer
from crm_store.db import database_url, make_engine, session_scope
from crm_store.errors import NotFound
from crm_store.interactions import conversation_id_for

log = logging.getLogger(__name__)

UNAVAILABLE = "utter_service_unavailable"
Events = list[dict[str, Any]]


@lru_cache(maxsize=1)
def default_engine() -> Engine:
    return make_engine(database_url())


DOMAIN_FILE = Path(__file__).resolve().parent.parent / "domain.yml"


@lru_cache(maxsize=1)
def release_domain() -> DomainDict:
    """The responses and forms of the release's domain.yml, read once per process."""
    path = Path(os.environ.get("CAREBOT_DOMAIN") or DOMAIN_FILE)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {"responses": data.get("responses") or {}, "forms": data.get("forms") or {}}


def unpadded(text: str) -> str:
    """Months and days as people write them, 12月3日, like every other date the bot says."""
    return _PADDED_DAY.sub(r"\1", text)


_PADDED_DAY = re.compile(r"(?<!\d)0(\d)(?=[月日])")


@dataclass
class Turn:
    """One run of an action: the CRM session and what Rasa sent."""

    session: Session
    dispatcher: CollectingDispatcher
    tracker: Tracker
    domain: DomainDict
    now: datetime

    @property
    def clock(self) -> Clock:
        """The run's time for every CRM write: the action's injectable clock, read once."""
        return fixed(self.now)

    @property
    def customer_id(self) -> int | None:
        value = self.tracker.get_slot("customer_id")
        return int(value) if value is not None else None

    def customer(self) -> Customer | None:
        """The identified customer of this conversation, if any (set only by actions)."""
        if self.customer_id is None:
            return None
        try:
            return get_customer(self.session, customer_id=self.customer_id)
        except NotFound:
            return None

    def customer_intents(self) -> list[str | None]:
        """The intent of each customer message in the tracker's events, oldest first."""
        return [
            ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            for event in self.tracker.events
            if event.get("event") == "user"
        ]

    def say(self, response: str, **values: Any) -> None:
        self.dispatcher.utter_message(response=response, **values)

    def text_of(self, response: str) -> str:
        """The first text variant of a domain response: labels (order states, consent
        categories) live in domain.yml like every other customer-facing word."""
        variants = self.domain.get("responses", {}).get(response) or [{}]
        return str(variants[0].get("text", ""))

    def local(self, moment: datetime, pattern: str = "%m月%d日 %H:%M") -> str:
        """A time as the customer reads it: in their time zone (the business zone for an
        anonymous customer)."""
        customer = self.customer()
        zone = ZoneInfo(customer.timezone) if customer else BUSINESS_TZ
        return unpadded(moment.astimezone(zone).strftime(pattern))

    @property
    def conversation_id(self) -> str:
        """The Rasa sender id (the channel's user id)."""
        return self.tracker.sender_id

    @property
    def crm_conversation_id(self) -> str:
        """The sender id as the CRM stores conversations (long ids hashed, as the turn log does)."""
        return conversation_id_for(self.tracker.sender_id)


class CareAction(Action, ABC):
    """A custom action backed by the CRM. Subclasses implement `name` and `act` (abstract, so the
    action server does not register this base class as an action)."""

    clock: Clock = staticmethod(utcnow)
    engine: Engine | None = None  # None: the CAREBOT_DATABASE_URL database

    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    def act(self, turn: Turn) -> Events: ...

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        return await asyncio.to_thread(self.run_in_transaction, dispatcher, tracker, domain)

    def run_in_transaction(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        said = len(dispatcher.messages)
        try:
            with session_scope(self.engine or default_engine()) as session:
                turn = Turn(session, dispatcher, tracker, domain or release_domain(), self.clock())
                return self.act(turn)
        except SQLAlchemyError as error:
            del dispatcher.messages[said:]  # nothing half-done reaches the customer
            log.error("action %s: CRM database unavailable: %s", self.name(), error)
            dispatcher.utter_message(response=UNAVAILABLE)
            return []
