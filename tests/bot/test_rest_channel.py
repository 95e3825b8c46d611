from __future__ import annotations

import pytest

from bot.channels.rest import (
    SIGNATURE_WINDOW_S,
    CareRestInput,
    bearer_valid,
    request_problem,
    sign_body,
    signature_valid,
)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "must be a JSON object"),
        (b"[]", "must be a JSON object"),
        (b'{"message": "hi"}', "'sender'"),
        (b'{"sender": "  ", "message": "hi"}', "'sender'"),
        (b'{"sender": 42, "message": "hi"}', "'sender'"),
        (b'{"sender": "' + b"x" * 251 + b'", "message": "hi"}', "at most 250"),
        (b'{"sender": "u1"}', "'message'"),
        (b'{"sender": "u1", "message": ["hi"]}', "'message'"),
    ],
)
def test_malformed_bodies_are_refused_with_a_reason(body: bytes, problem: str) -> None:
    reason = request_problem(body)
    assert reason is not None and problem in reason


@pytest.mark.parametrize(
    "body",
    [
        '{"sender": "u1", "message": "你好"}',
        '{"sender": "u1", "message": "", "metadata": {"x": 1}}',
        '{"sender": "' + "x" * 250 + '", "message": "/greet"}',
    ],
)
def test_usable_messages_pass(body: str) -> None:
    assert request_problem(body.encode()) is None


SECRET = "a-back-end-secret-of-24c"


def test_a_signature_covers_the_body_and_expires() -> None:
    body = b'{"sender": "u1", "message": "hi"}'
    header = sign_body(SECRET, body, 1_700_000_000)
    assert signature_valid(SECRET, header, body, 1_700_000_100)
    assert not signature_valid(SECRET, header, body.replace(b"hi", b"yo"), 1_700_000_100)
    assert not signature_valid("another-secret-entirely", header, body, 1_700_000_100)
    assert not signature_valid(SECRET, header, body, 1_700_000_000 + SIGNATURE_WINDOW_S + 1)
    assert not signature_valid(SECRET, "t=abc,v1=00", body, 1_700_000_000)
    assert not signature_valid(SECRET, "", body, 1_700_000_000)


def test_a_bearer_token_must_match_exactly() -> None:
    assert bearer_valid(SECRET, f"Bearer {SECRET}")
    assert bearer_valid(SECRET, f"bearer {SECRET}")
    assert not bearer_valid(SECRET, f"Bearer {SECRET[:-1]}")
    assert not bearer_valid(SECRET, SECRET)
    assert not bearer_valid(SECRET, "")


def test_the_channel_needs_a_real_secret() -> None:
    with pytest.raises(ValueError):
        CareRestInput.from_credentials(None)
    with pytest.raises(ValueError):
        CareRestInput.from_credentials({"secret": "${CAREBOT_REST_SECRET}"})
    with pytest.raises(ValueError):
        CareRestInput("short")
    assert CareRestInput.from_credentials({"secret": SECRET}).secret == SECRET
