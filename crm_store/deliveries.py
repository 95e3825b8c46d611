"""Deliveries of proactive messages: each outbox row reaches its customer once, anywhere.

The dispatcher triggers Rasa at least once per outbox row (a retry after a crash between the
send and its acknowledgement, a claim reclaimed from a frozen dispatcher, a second dispatcher).
The action that composes the message calls `record_delivery` first, in the transaction that
composes it: the row's id is the table's primary key, so only one trigger of the row ever gets
True, whichever conversation, channel or session it lands in. Concurrent triggers serialise
on the key: the second waits for the first transaction, and gets False if that committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from crm_store._unique import try_insert
from crm_store.clock import Clock, utcnow
from crm_store.errors import NotFound
from crm_store.models import CHANNELS
from crm_store.models import CareDelivery as DeliveryRow
from crm_store.models import CareMessage as MessageRow
from crm_store.validation import check_choice, check_text


@dataclass(frozen=True)
class CareDelivery:
    care_message_id: int
    conversation_id: str
    channel: str
    delivered_at: datetime


def record_delivery(
    session: Session,
    *,
    care_message_id: int,
    conversation_id: str,
    channel: str,
    clock: Clock = utcnow,
) -> bool:
    """True: this is the row's first delivery, recorded now, and the caller sends the message.
    False: the row was delivered before (or is being delivered by a transaction that then
    committed); the caller sends nothing. Call it before composing: the record and whatever the
    message writes (a birthday gift) commit or roll back together."""
    if session.get(MessageRow, care_message_id) is None:
        raise NotFound(f"no care message {care_message_id}")
    row = DeliveryRow(
        care_message_id=care_message_id,
        conversation_id=check_text(conversation_id, "conversation_id", 64),
        channel=check_choice(channel, CHANNELS, "channel"),
        delivered_at=clock(),
    )
    return try_insert(session, row)


def find_delivery(session: Session, *, care_message_id: int) -> CareDelivery | None:
    row = session.get(DeliveryRow, care_message_id, populate_existing=True)
    if row is None:
        return None
    return CareDelivery(row.care_message_id, row.conversation_id, row.channel, row.delivered_at)
