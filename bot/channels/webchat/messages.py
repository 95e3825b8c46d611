"""What the widget receives: Rasa's bot messages as rasa-webchat payloads, and their history."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from crm_store.webchat import WebChatMessage

MAX_USER_TEXT = 2000  # characters; longer messages are refused, not cut


def quick_replies(buttons: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    """Rasa buttons as rasa-webchat quick replies (the format of Rasa's socketio channel)."""
    return [
        {"content_type": "text", "title": str(b.get("title", "")), "payload": str(b["payload"])}
        for b in buttons
        if b.get("payload")
    ]


def text_payload(text: str, buttons: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    payload: dict[str, Any] = {"text": text}
    replies = quick_replies(buttons)
    if replies:
        payload["quick_replies"] = replies
    return payload


def image_payload(url: str) -> dict[str, Any]:
    return {"attachment": {"type": "image", "payload": {"src": url}}}


def wire_message(message: WebChatMessage) -> dict[str, Any]:
    """A stored message as the widget receives it, with the id it acknowledges."""
    return wire_payload(message.payload, message.id, message.sender, message.created_at)


def wire_payload(
    payload: dict[str, Any], message_id: int | str, sender: str, created_at: datetime
) -> dict[str, Any]:
    """Rasa's payload as it was, our own fields under `metadata`.

    rasa-webchat renders a message as text only when `text` is its only key (or `text` with
    `quick_replies` or `buttons`) and strips `metadata` first, so a widget written for Rasa's
    socketio channel shows ours too; our widget reads the id, sender and time from `metadata`.
    """
    metadata = {"message_id": message_id, "sender": sender, "created_at": created_at.isoformat()}
    return {**payload, "metadata": metadata}


def shown_text(text: str, last_bot_payload: dict[str, Any] | None) -> str:
    """What the customer's bubble says: the title of the button whose payload they sent."""
    for reply in (last_bot_payload or {}).get("quick_replies", []):
        if reply.get("payload") == text and reply.get("title"):
            return str(reply["title"])
    return text


def user_text(data: object) -> str | None:
    """The text of a `user_uttered` event, or None when it is not a usable message."""
    if not isinstance(data, dict):
        return None
    text = data.get("message")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_USER_TEXT:
        return None
    return text.strip()
