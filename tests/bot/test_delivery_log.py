"""Rasa's HTTP API logs a failed trigger_intent at ERROR; an expected WeChat refusal (which the
care scheduler handles) is lowered to WARNING, anything else stays an ERROR."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from rasa.server import ErrorResponse

from bot import delivery_log
from bot.channels.wechat.api import DeliveryFailed


@pytest.fixture
def installed() -> Iterator[None]:
    delivery_log.install()
    delivery_log.install()  # twice is once
    logger = logging.getLogger(delivery_log.RASA_SERVER_LOGGER)
    ours = [f for f in logger.filters if isinstance(f, delivery_log.ExpectedDeliveryFailures)]
    assert len(ours) == 1
    yield
    logger.removeFilter(ours[0])


def failed_trigger(error: Exception) -> None:
    """What rasa.server's trigger_intent does with an exception from the output channel."""
    try:
        raise error
    except Exception as e:
        ErrorResponse(500, "ConversationError", f"An unexpected error occurred. Error: {e}")


def levels(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.levelname for r in caplog.records if r.name == delivery_log.RASA_SERVER_LOGGER]


@pytest.mark.parametrize("errcode", [43004, 45009, 45015, 45047])
def test_a_refusal_the_scheduler_handles_is_a_warning(
    installed: None, caplog: pytest.LogCaptureFixture, errcode: int
) -> None:
    with caplog.at_level(logging.INFO):
        failed_trigger(DeliveryFailed(f"wechat delivery to o1 failed: {errcode}", errcode))
    assert levels(caplog) == ["WARNING"]


@pytest.mark.parametrize(
    "error",
    [
        DeliveryFailed("wechat delivery to o1 failed: WeChat API error 40003", 40003),
        DeliveryFailed("wechat delivery to o1 failed: ClientConnectorError", None),
        RuntimeError("the tracker store is down"),
    ],
    ids=["unknown-openid", "wechat-unreachable", "anything-else"],
)
def test_everything_else_stays_an_error(
    installed: None, caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    with caplog.at_level(logging.INFO):
        failed_trigger(error)
    assert levels(caplog) == ["ERROR"]


def test_outside_an_except_block_nothing_changes(
    installed: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        ErrorResponse(404, "NotFound", "no such conversation")
    assert levels(caplog) == ["ERROR"]
