from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt
import pytest

from bot.channels.webchat.auth import (
    TOKEN_LIFETIME,
    InvalidToken,
    issue_token,
    session_for,
    user_of,
)
from bot.channels.webchat.messages import quick_replies, shown_text, text_payload, user_text

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)
SECRET = "s3cret-for-tests-" * 4


def test_a_token_vouches_for_its_user_until_it_expires() -> None:
    token = issue_token("demo", SECRET, NOW)
    assert user_of(token, SECRET, NOW + TOKEN_LIFETIME - timedelta(seconds=1)) == "demo"
    with pytest.raises(InvalidToken):
        user_of(token, SECRET, NOW + TOKEN_LIFETIME)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not.a.token",
        issue_token("demo", "another-secret-" * 5, NOW),
        jwt.encode({"sub": "demo", "exp": 9_999_999_999}, SECRET * 2, algorithm="HS512"),
        jwt.encode({"sub": "demo"}, SECRET, algorithm="HS256"),
        jwt.encode({"exp": 9_999_999_999}, SECRET, algorithm="HS256"),
        jwt.encode({"sub": "web-" + "0" * 32, "exp": 9_999_999_999}, SECRET, algorithm="HS256"),
        jwt.encode({"sub": "rest:demo", "exp": 9_999_999_999}, SECRET, algorithm="HS256"),
        jwt.encode({"sub": "x" * 65, "exp": 9_999_999_999}, SECRET, algorithm="HS256"),
        jwt.encode({"sub": "demo", "exp": 9_999_999_999}, None, algorithm="none"),
    ],
)
def test_forged_malformed_or_unusable_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        user_of(token, SECRET, NOW)


def test_a_logged_in_socket_joins_its_users_conversation_whatever_it_asks() -> None:
    assert session_for("demo", "web-" + "a" * 32) == "demo"


def test_an_anonymous_socket_keeps_its_session_but_cannot_choose_another() -> None:
    kept = "web-" + "a" * 32
    assert session_for(None, kept) == kept
    for requested in ("demo", None, 42, "web-short", kept.upper(), kept + "0"):
        fresh = session_for(None, requested)
        assert fresh.startswith("web-") and fresh != kept and len(fresh) == 36


def test_buttons_become_quick_replies_and_the_bubble_shows_the_title() -> None:
    buttons = [{"title": "查订单", "payload": "/order_status"}, {"title": "无效"}]
    payload = text_payload("您想做什么？", buttons)
    assert payload["quick_replies"] == quick_replies(buttons)
    assert payload["quick_replies"] == [
        {"content_type": "text", "title": "查订单", "payload": "/order_status"}
    ]
    assert shown_text("/order_status", payload) == "查订单"
    assert shown_text("你好", payload) == "你好"
    assert shown_text("/order_status", None) == "/order_status"


@pytest.mark.parametrize(
    ("event", "text"),
    [
        ({"message": " 你好 "}, "你好"),
        ({"message": ""}, None),
        ({"message": "   "}, None),
        ({"message": 7}, None),
        ({"message": "长" * 2001}, None),
        ("你好", None),
        (None, None),
    ],
)
def test_only_usable_customer_messages_reach_the_bot(event: object, text: str | None) -> None:
    assert user_text(event) == text


def test_a_stored_message_keeps_rasas_shape_for_rasa_webchat() -> None:
    """rasa-webchat shows text only when `text` (with quick replies) is all there is, after it
    drops `metadata`: our id, sender and time travel there."""
    from datetime import datetime, timezone

    from bot.channels.webchat.messages import text_payload, wire_payload

    at = datetime(2026, 12, 3, 8, 0, tzinfo=timezone.utc)
    payload = text_payload("请选择", [{"title": "查订单", "payload": "/order_status"}])
    wire = wire_payload(payload, 7, "bot", at)
    assert {k: v for k, v in wire.items() if k != "metadata"} == payload
    assert set(payload) == {"text", "quick_replies"}
    assert wire["metadata"] == {"message_id": 7, "sender": "bot", "created_at": at.isoformat()}


def test_the_page_s_own_origin_and_the_listed_sites_may_connect_no_other() -> None:
    from bot.channels.webchat.channel import OriginCheckedServer

    sio = OriginCheckedServer(("https://shop.example.com",), async_mode="sanic")
    environ = {"wsgi.url_scheme": "http", "HTTP_HOST": "127.0.0.1:5005"}
    allowed = sio.eio._cors_allowed_origins(environ)
    assert set(allowed) == {"http://127.0.0.1:5005", "https://shop.example.com"}
    assert "https://evil.example" not in allowed and sio.eio.cors_allowed_origins is None
