"""What a follow or unfollow changes in the CRM: the customer's `wechat_openid` identity.

The Rasa server process runs the channel, so these writes open their own short transaction on
the CRM database (`database_url` in the channel's credentials). SQLAlchemy is synchronous: every
write runs in a worker thread, never on Rasa's event loop. A failure is logged and swallowed:
WeChat only needs its `success`, and a follow or unfollow must never cost the push a 5xx.

The audit entries name the customer and the identity kind, never the OpenID itself: WeChat's
rules want a follower's data gone after an unfollow.

A link token links once: its MAC is spent (`crm_store.spent_tokens`, scope "link", until the
token expires) in the transaction that links, so a second scan of the same QR code, by anyone,
links nothing. A link that fails (another customer's OpenID) rolls the spend back.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.channels.wechat.linking import LinkToken
from crm_store.audit import record_audit
from crm_store.clock import Clock, utcnow
from crm_store.db import make_engine, session_scope
from crm_store.errors import CrmError
from crm_store.identities import find_customer_by_identity, link_identity, unlink_identity
from crm_store.personal_data import forget_conversation
from crm_store.spent_tokens import spend_token

logger = logging.getLogger(__name__)

KIND = "wechat_openid"
ACTOR = "wechat"
LINK_SCOPE = "link"


def unlink_follower(session: Session, openid: str, clock: Clock) -> int | None:
    """Remove the OpenID's identity; the customer it belonged to, or None if it had none."""
    customer = find_customer_by_identity(session, kind=KIND, value=openid)
    if customer is None or not unlink_identity(session, kind=KIND, value=openid):
        return None
    record_audit(
        session,
        actor=ACTOR,
        action="unlink_identity",
        entity="customer",
        entity_id=customer.id,
        changes={"identity_kind": KIND, "reason": "unsubscribe"},
        clock=clock,
    )
    return customer.id


def link_follower(session: Session, openid: str, customer_id: int, clock: Clock) -> bool:
    """Link the OpenID to the customer; False if it already was. Conflict: another customer's."""
    current = find_customer_by_identity(session, kind=KIND, value=openid)
    if current is not None and current.id == customer_id:
        return False
    link_identity(session, customer_id=customer_id, kind=KIND, value=openid, clock=clock)
    record_audit(
        session,
        actor=ACTOR,
        action="link_identity",
        entity="customer",
        entity_id=customer_id,
        changes={"identity_kind": KIND, "via": "link_token"},
        clock=clock,
    )
    return True


def spend_link_token(session: Session, token: LinkToken, clock: Clock) -> bool:
    """True the first time the token is used; False once it has linked before."""
    return spend_token(
        session, scope=LINK_SCOPE, key=token.mac, expires_at=token.expires_at, clock=clock
    )


class Followers:
    """The CRM side of follows and unfollows; without a database URL it only logs."""

    def __init__(
        self, database_url: str | None, clock: Clock = utcnow, forget_history: bool = False
    ) -> None:
        self.database_url = database_url
        self.clock = clock
        # CAREBOT_WECHAT_FORGET_ON_UNFOLLOW: an unfollow also erases the OpenID's conversation
        # history in the CRM (crm_store.personal_data.forget_conversation); Rasa's transcript
        # goes with the retention period or `carebot forget`.
        self.forget_history = forget_history
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()

    def engine(self) -> Engine | None:
        """The CRM engine, made on first use; None without a database URL."""
        with self._engine_lock:
            if self._engine is None and self.database_url:
                self._engine = make_engine(self.database_url)
            return self._engine

    async def unfollow(self, openid: str) -> None:
        """Stop proactive messages to this OpenID by unlinking it from its customer."""
        await self._off_loop("unfollow", openid, self._unfollow, openid)

    async def link(self, openid: str, token: LinkToken) -> None:
        """Make this OpenID the token's customer's WeChat identity, once per token (a conflict or
        a used token is logged, not raised)."""
        await self._off_loop("link", openid, self._link, openid, token)

    async def _off_loop(
        self, what: str, openid: str, write: Callable[..., None], *args: Any
    ) -> None:
        try:
            await asyncio.to_thread(write, *args)
        except (SQLAlchemyError, CrmError, OSError):
            logger.exception("wechat %s of %s could not be recorded in the CRM", what, openid)

    def _unfollow(self, openid: str) -> None:
        engine = self.engine()
        if engine is None:
            logger.warning("wechat unfollow of %s not recorded: no database_url", openid)
            return
        with session_scope(engine) as session:
            customer_id = unlink_follower(session, openid, self.clock)
            if self.forget_history:
                forget_conversation(session, conversation_id=openid, actor=ACTOR, clock=self.clock)
        logger.info("wechat %s unfollowed (customer %s)", openid, customer_id)

    def _link(self, openid: str, token: LinkToken) -> None:
        engine, customer_id = self.engine(), token.customer_id
        if engine is None:
            logger.warning("wechat link of %s not recorded: no database_url", openid)
            return
        try:
            with session_scope(engine) as session:
                if not spend_link_token(session, token, self.clock):
                    logger.warning(
                        "wechat %s not linked to customer %s: the link token was used before",
                        openid,
                        customer_id,
                    )
                    return
                linked = link_follower(session, openid, customer_id, self.clock)
        except CrmError as error:  # another customer's OpenID, an unknown customer
            logger.warning("wechat %s not linked to customer %s: %s", openid, customer_id, error)
            return
        logger.info("wechat %s linked to customer %s (new: %s)", openid, customer_id, linked)

    def close(self) -> None:
        """Dispose of the engine (tests; the Rasa server keeps it for its lifetime)."""
        with self._engine_lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
