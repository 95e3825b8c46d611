from __future__ import annotations

import pytest

from bot.channels.rest import request_problem


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "must be a JSON object"),
        (b"[]", "must be a JSON object"),
        (b'{"message": "hi"}', "'sender'"),
        (b'{"sender": "  ", "message": "hi"}', "'sender'"),
        (b'{"sender": 42, "message": "hi"}', "'sender'"),
        (b'{"sender": "' + b"x" * 256 + b'", "message": "hi"}', "at most 255"),
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
        '{"sender": "' + "x" * 255 + '", "message": "/greet"}',
    ],
)
def test_usable_messages_pass(body: str) -> None:
    assert request_problem(body.encode()) is None
