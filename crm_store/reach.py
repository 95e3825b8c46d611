"""Where a customer can be reached now: one contact point per channel identity.

A WeChat follower (a linked openid; unfollowing unlinks it) can always be reached: inside the
48-hour window by customer-service message, outside it by template message. A web chat
conversation can be reached while a socket of it is open (its presence lease runs); otherwise a
message would only wait in the mailbox for a visit that may never come.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from crm_store.clock import Clock, utcnow
from crm_store.identities import channel_of, list_identities
from crm_store.webchat import is_connected

CONVERSATION_KINDS = ("web_user", "web_session", "wechat_openid")  # unionids name no chat


@dataclass(frozen=True)
class ContactPoint:
    channel: str  # "web" or "wechat"
    conversation_id: str  # the Rasa conversation on that channel
    reachable: bool  # a message sent now reaches the customer now


def contact_points(
    session: Session, *, customer_id: int, clock: Clock = utcnow
) -> list[ContactPoint]:
    """The customer's conversations on every channel, newest identity first."""
    points = []
    for identity in reversed(list_identities(session, customer_id=customer_id)):
        if identity.kind not in CONVERSATION_KINDS:
            continue
        channel = channel_of(identity.kind)
        reachable = channel == "wechat" or is_connected(
            session, session_id=identity.value, clock=clock
        )
        points.append(ContactPoint(channel, identity.value, reachable))
    return points
