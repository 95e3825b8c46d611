"""Inbound push XML parsed into typed values, and the passive reply XML.

WeChat's pushes are small flat documents. A body larger than MAX_BODY_BYTES is refused before
any parsing, and the parser is defusedxml's: it stops at a DOCTYPE (in whatever encoding the
document declares), so entity expansion ("billion laughs") and external entities (XXE) never
happen. Every such refusal is a MalformedMessage, which the webhook answers with a 4xx.
Passive replies are wechatpy's `TextReply`; its `parse_message` is not used (docs/wechat.md).
"""

from __future__ import annotations

import html
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring
from wechatpy.replies import TextReply

MAX_BODY_BYTES = 64 * 1024  # a text push is under 2 KB; safe mode roughly triples it
MAX_TEXT_BYTES = 2048  # the longest text Content WeChat delivers in one message


class MalformedMessage(ValueError):
    """A push body that is not a WeChat message."""


class OversizedMessage(MalformedMessage):
    """A push body larger than any WeChat message."""


@dataclass(frozen=True)
class InboundMessage:
    """One push: a user message (text, image, ...) or an event (subscribe, CLICK, ...)."""

    to_user: str
    from_user: str
    create_time: int
    msg_type: str
    content: str = ""
    msg_id: str = ""
    event: str = ""
    event_key: str = ""
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def dedupe_key(self) -> str:
        """Retries repeat MsgId for messages, FromUserName + CreateTime for events.

        The sender is part of a message's key too: MsgIds of different users have been seen to
        collide, and a retry must never be answered with another user's reply.
        """
        if self.msg_id:
            return f"msg:{self.from_user}:{self.msg_id}"
        return f"event:{self.from_user}:{self.create_time}"


def parse_fields(body: bytes) -> dict[str, str]:
    """The text of each child of the root <xml> element."""
    if len(body) > MAX_BODY_BYTES:
        raise OversizedMessage(f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        root = defused_fromstring(body, forbid_dtd=True)
    except DefusedXmlException as error:
        raise MalformedMessage("DTDs and entities are not allowed") from error
    except (ElementTree.ParseError, LookupError, ValueError) as error:  # LookupError: encoding=
        raise MalformedMessage(f"the body is not XML: {error}") from error
    if root.tag != "xml":
        raise MalformedMessage("the root element must be <xml>")
    return {child.tag: (child.text or "").strip() for child in root}


def _create_time(value: str) -> int:
    try:
        return int(value)
    except ValueError as error:
        raise MalformedMessage("CreateTime must be an integer") from error


def parse_message(body: bytes) -> InboundMessage:
    """The push in a plain-mode body (or a decrypted safe-mode one)."""
    fields = parse_fields(body)
    missing = [name for name in ("ToUserName", "FromUserName", "MsgType") if not fields.get(name)]
    if missing:
        raise MalformedMessage(f"missing {', '.join(missing)}")
    return InboundMessage(
        to_user=fields["ToUserName"],
        from_user=fields["FromUserName"],
        create_time=_create_time(fields.get("CreateTime", "0")),
        msg_type=fields["MsgType"].lower(),
        content=fields.get("Content", ""),
        msg_id=fields.get("MsgId", ""),
        event=fields.get("Event", ""),
        event_key=fields.get("EventKey", ""),
        fields=fields,
    )


def _cdata_safe(text: str) -> str:
    # "]]>" cannot appear inside CDATA: split it across two sections.
    return text.replace("]]>", "]]]]><![CDATA[>")


def _cdata(text: str) -> str:
    return "<![CDATA[" + _cdata_safe(text) + "]]>"


def text_reply(inbound: InboundMessage, content: str, *, now: int | None = None) -> str:
    """The passive text reply to a push, with To and From swapped. TextReply puts values into
    CDATA as they are: a "]]>" in them (the bot may echo the user) would end it early."""
    reply = TextReply(
        source=_cdata_safe(inbound.to_user),
        target=_cdata_safe(inbound.from_user),
        content=_cdata_safe(content),
        time=int(time.time()) if now is None else now,
    )
    return str(reply.render())


def encrypted_reply(encrypted: str, msg_signature: str, timestamp: str, nonce: str) -> str:
    """The safe-mode envelope around an encrypted passive reply."""
    return (
        f"<xml><Encrypt>{_cdata(encrypted)}</Encrypt>"
        f"<MsgSignature>{_cdata(msg_signature)}</MsgSignature>"
        f"<TimeStamp>{html.escape(timestamp)}</TimeStamp><Nonce>{_cdata(nonce)}</Nonce></xml>"
    )


def render_text(message: dict[str, Any]) -> str:
    """One Rasa bot message as WeChat text: buttons become numbered lines, images their URL.

    Custom JSON payloads are meant for rich web clients and are never shown to a WeChat user.
    """
    lines = [str(message["text"])] if message.get("text") else []
    buttons = message.get("buttons") or message.get("quick_replies") or []
    lines += [
        f"{number}. {button.get('title', '')}" for number, button in enumerate(buttons, start=1)
    ]
    if message.get("image"):
        lines.append(str(message["image"]))
    return "\n".join(lines).strip()


def split_text(text: str, limit: int = MAX_TEXT_BYTES) -> list[str]:
    """Text in pieces of at most `limit` UTF-8 bytes (WeChat's cap), cut at line breaks if any."""
    pieces: list[str] = []
    while len(text.encode()) > limit:
        head = text.encode()[:limit].decode("utf-8", "ignore")
        newline = head.rfind("\n")
        cut = newline + 1 if newline > 0 else len(head)
        pieces.append(text[:cut].rstrip("\n"))
        text = text[cut:].lstrip("\n")
    pieces.append(text)
    return [piece for piece in pieces if piece]


def render_texts(messages: list[dict[str, Any]]) -> list[str]:
    """Rasa's bot messages as the WeChat texts to send, in order, none empty or too long."""
    return [piece for message in messages for piece in split_text(render_text(message))]
