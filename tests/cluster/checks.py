"""What the cluster tests read back: each conversation's customer turns in the CRM (written by
the log consumer) and in Rasa's tracker store (its history), and the bot messages of web chat
sessions in the CRM's mailbox, in one query each.

A sender is a REST sender (Rasa's sender id is `rest:` and it) unless `prefix` says otherwise:
a web chat conversation's sender id is its session id (`prefix=""`)."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Row
from sqlalchemy.future import create_engine
from sqlalchemy.sql.expression import Executable

from crm_store.interactions import conversation_id_for
from crm_store.models import Interaction, WebChatMessage

REST = "rest:"


def crm_customer_turns(
    crm_url: str, senders: list[str], prefix: str = REST
) -> dict[str, list[str]]:
    """The CRM's customer turns of the conversations of `senders`, in the conversation's order."""
    ids = {conversation_id_for(prefix + sender): sender for sender in senders}
    found: dict[str, list[str]] = {sender: [] for sender in senders}
    query = (
        select(Interaction.conversation_id, Interaction.text)
        .where(Interaction.speaker == "customer", Interaction.conversation_id.in_(ids))
        # the CRM's order (crm_store.interactions): Rasa's event time. Two replicas
        # publish a conversation's turns in any order, so the row ids are not it.
        .order_by(Interaction.occurred_at, Interaction.id)
    )
    for conversation_id, turn in _rows(crm_url, query):
        found[ids[conversation_id]].append(turn or "")
    return found


def wait_for_crm_turns(
    crm_url: str, expected: dict[str, list[str]], timeout_s: float = 60.0, prefix: str = REST
) -> tuple[dict[str, list[str]], float]:
    """Polls until the CRM holds as many turns as `expected` or `timeout_s` passes; the read
    made 2 s later (a turn written twice would be there by then) and when the count was met."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = crm_customer_turns(crm_url, list(expected), prefix)
        written = sum(len(turns) for turns in found.values())
        if written >= sum(len(turns) for turns in expected.values()) or time.monotonic() > deadline:
            complete_at = time.monotonic()
            time.sleep(2)
            return crm_customer_turns(crm_url, list(expected), prefix), complete_at
        time.sleep(0.5)


def tracker_user_texts(
    tracker_url: str, senders: list[str], prefix: str = REST
) -> dict[str, list[str]]:
    """What each conversation's history in Rasa's tracker store says the customer said."""
    found: dict[str, list[str]] = defaultdict(list)
    query = text(
        "SELECT sender_id, data FROM events WHERE type_name = 'user' "
        "AND sender_id = ANY(:senders) ORDER BY id"
    )
    parameters = {"senders": [prefix + sender for sender in senders]}
    for sender_id, data in _rows(tracker_url, query, parameters):
        found[sender_id.removeprefix(prefix)].append(json.loads(data).get("text") or "")
    return {sender: found.get(sender, []) for sender in senders}


def webchat_bot_message_ids(crm_url: str, sessions: list[str]) -> dict[str, list[int]]:
    """The ids of the bot messages the web chat stored (and emitted) for each session."""
    found: dict[str, list[int]] = {session: [] for session in sessions}
    query = (
        select(WebChatMessage.session_id, WebChatMessage.id)
        .where(WebChatMessage.sender == "bot", WebChatMessage.session_id.in_(sessions))
        .order_by(WebChatMessage.id)
    )
    for session, message_id in _rows(crm_url, query):
        found[session].append(message_id)
    return found


def _rows(url: str, query: Executable, parameters: dict[str, Any] | None = None) -> list[Row]:
    """All rows of one query, on a connection of its own."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(query, parameters or {}))
    finally:
        engine.dispose()
