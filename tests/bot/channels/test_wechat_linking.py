from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.channels.wechat.linking import (
    LINK_TOKEN_TTL,
    InvalidLinkToken,
    customer_of_token,
    link_token,
    read_link_token,
    scene_of,
)

SECRET = "link-secret"
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=timezone.utc)


def test_a_token_carries_its_customer_until_it_expires() -> None:
    token = link_token(4711, SECRET, NOW)
    assert len(token) <= 64  # WeChat's limit on a QR code's scene_str
    assert customer_of_token(token, SECRET, NOW) == 4711
    assert customer_of_token(token, SECRET, NOW + LINK_TOKEN_TTL) == 4711
    with pytest.raises(InvalidLinkToken, match="expired"):
        customer_of_token(token, SECRET, NOW + LINK_TOKEN_TTL + timedelta(seconds=1))


def test_a_token_names_its_customer_expiry_and_mac() -> None:
    token = link_token(4711, SECRET, NOW)
    read = read_link_token(token, SECRET, NOW)
    assert (read.customer_id, read.expires_at) == (4711, NOW + LINK_TOKEN_TTL)
    assert token.endswith(f".{read.mac}") and len(read.mac) == 22


def test_a_token_for_another_customer_cannot_be_made_without_the_secret() -> None:
    customer, expires, mac = link_token(4711, SECRET, NOW).split(".")
    with pytest.raises(InvalidLinkToken, match="forged"):
        customer_of_token(f"4712.{expires}.{mac}", SECRET, NOW)
    with pytest.raises(InvalidLinkToken, match="forged"):
        customer_of_token(f"{customer}.{int(expires) + 86400}.{mac}", SECRET, NOW)
    with pytest.raises(InvalidLinkToken, match="forged"):
        customer_of_token(link_token(4711, "other-secret", NOW), SECRET, NOW)


@pytest.mark.parametrize(
    "scene",
    ["", "spring_campaign", "1.2", "a.b.c", "١٢.٣.x", "4711.-5.abc", "1.2.3.4", "1.2.你好"],
)
def test_other_scene_strings_are_not_link_tokens(scene: str) -> None:
    with pytest.raises(InvalidLinkToken):
        customer_of_token(scene, SECRET, NOW)


def test_a_token_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        link_token(1, "", NOW)


def test_the_scene_is_the_event_key_without_wechats_prefix() -> None:
    assert scene_of("subscribe", "qrscene_1.2.abc") == "1.2.abc"
    assert scene_of("SCAN", "1.2.abc") == "1.2.abc"
    assert scene_of("subscribe", "") == ""
