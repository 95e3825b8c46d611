"""A proactive message WeChat refused for a reason the care scheduler handles is logged at
WARNING by the Rasa server, not at ERROR (issue 16: a first run logs no ERROR line).

The scheduler sends a proactive message through Rasa's `trigger_intent`; when WeChat refuses it
(the follower unfollowed, the window closed with no template, the daily quota is used up), the
WeChat output raises `DeliveryFailed`, Rasa answers the scheduler a 500 carrying the reason, and
the scheduler keeps the message and tries later (bot/care/dispatch.py). Rasa's `ErrorResponse`
logs the message of every failed API request at ERROR when it is made, inside the `except` block
that caught the failure; `ExpectedDeliveryFailures` lowers that record to WARNING when the
exception being handled is such an expected refusal. Every other record stays as Rasa logs it.
`bot/rasa_main.py` installs it in the Rasa server process.
"""

from __future__ import annotations

import logging
import sys

from bot.channels.wechat.api import DeliveryFailed

RASA_SERVER_LOGGER = "rasa.server"


class ExpectedDeliveryFailures(logging.Filter):
    """Lowers an ERROR record made while an expected DeliveryFailed is being handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        handled = sys.exc_info()[1]
        if record.levelno >= logging.ERROR and _expected(handled):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _expected(error: BaseException | None) -> bool:
    return isinstance(error, DeliveryFailed) and error.expected


def install() -> None:
    """On Rasa's HTTP API logger; installing twice installs once."""
    logger = logging.getLogger(RASA_SERVER_LOGGER)
    if not any(isinstance(f, ExpectedDeliveryFailures) for f in logger.filters):
        logger.addFilter(ExpectedDeliveryFailures())
