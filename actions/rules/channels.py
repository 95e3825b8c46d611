"""Which channel a conversation is on, and which channel identities may name its customer.

The channel comes from the message metadata that our own input channels write on the server
(`bot/channels/`): the web chat sets `web`, WeChat `wechat`, the REST channel `rest`, and the
REST channel drops whatever metadata its client sent. So no client's words choose the channel
or the customer (docs/security.md). A conversation whose messages carry no such metadata came
through Rasa's token-protected HTTP API (the scheduler's `trigger_intent`), whose caller chose
the conversation from the customer's own identities.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Identity kinds a channel vouches for: the web chat passes a signed-in user id or a session id
# that a one-time code verified, WeChat signs the OpenID, the REST channel's credential vouches
# for its back end's user ids (which live in their own `rest:` namespace).
KINDS_BY_CHANNEL: dict[str, tuple[str, ...]] = {
    "web": ("web_user", "web_session"),
    "wechat": ("wechat_openid",),
    "rest": ("rest_user",),
}
# Rasa's HTTP API (token) names a conversation by id: any identity that id stands for.
API_KINDS = ("web_user", "web_session", "wechat_openid", "rest_user")
REST_PREFIX = "rest:"


def trusted_channel(metadata: Mapping[str, Any] | None, input_channel: str | None) -> str | None:
    """The channel our input channel recorded, or None for Rasa's HTTP API (no input channel).

    An input channel that is not ours and wrote no metadata (`rasa shell`'s `cmdline`) is
    treated as the anonymous web.
    """
    named = (metadata or {}).get("channel")
    if isinstance(named, str) and named in KINDS_BY_CHANNEL:
        return named
    return None if input_channel is None else "web_anonymous"


def identity_kinds(channel: str | None) -> tuple[str, ...]:
    """The identity kinds that may name the customer of a conversation on `channel`."""
    if channel is None:
        return API_KINDS
    return KINDS_BY_CHANNEL.get(channel, ())


def identity_value(kind: str, conversation_id: str) -> str | None:
    """The identity value a conversation id stands for: a REST sender without its namespace."""
    if kind == "rest_user":
        return conversation_id.removeprefix(REST_PREFIX) if is_rest(conversation_id) else None
    return None if is_rest(conversation_id) else conversation_id


def is_rest(conversation_id: str) -> bool:
    return conversation_id.startswith(REST_PREFIX)


def crm_channel(channel: str | None) -> str:
    """The CRM's channel (`web` or `wechat`) for a trusted channel."""
    return "wechat" if channel == "wechat" else "web"


def verified_kind(channel: str | None) -> str:
    """The identity a one-time code proves for this conversation: the WeChat follower, the REST
    back end's user, or (on the web) the anonymous session."""
    return {"wechat": "wechat_openid", "rest": "rest_user"}.get(channel or "", "web_session")
