"""Personal data masked in every log line of every process we run (issue 15).

`MaskingFilter` rewrites a record's message (arguments merged in) and its traceback with
`crm_store.masking.mask_log_text`: mainland mobiles (`138****8000`), identity card numbers,
e-mail addresses, anonymous web chat session ids (an alias) and six digits standing alone (a
one-time code) never reach a handler, at any level.

`install()` runs the filter in the process's log record factory rather than on a logger or a
handler: a filter on a logger does not see records propagated from its children (Rasa's,
Sanic's, rasa-sdk's), and Rasa and rasa-sdk replace the root handlers when they configure
their own logging. The factory makes every record, whoever logs it and whatever handler
writes it. Each entry point calls it first: `bot/rasa_main.py`, `bot/action_server.py`, the
`carebot` CLI (which runs the console, the WeChat simulator and every operator command) and
the care scheduler (`bot/care/__main__.py`). Installing twice installs once.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from crm_store.masking import mask_log_text, mask_text


class MaskingFilter(logging.Filter):
    """Masks the record in place and lets it through."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


def mask_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a bad format string: keep what can be shown
        message = f"{record.msg!s} {record.args!r}"
    mask = mask_text if record.name in CODE_SENDERS else mask_log_text
    record.msg, record.args = mask(message), None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        formatted = "".join(traceback.format_exception(*record.exc_info))
        record.exc_text = mask_log_text(formatted.rstrip("\n"))
    if record.stack_info:
        record.stack_info = mask_log_text(record.stack_info)
    for name in EXTRA_FIELDS:
        value = getattr(record, name, None)
        if isinstance(value, str):
            setattr(record, name, mask_log_text(value))


# The demo's SMS stub is the demo's phone: in demo mode (only) its line carries the code so a
# developer can identify (actions/sms.py withholds it otherwise). Phones are masked there too.
CODE_SENDERS = frozenset({"carebot.sms_stub"})
_FILTER = MaskingFilter()
# Sanic's access log passes the request line as `extra`, which is set after the record factory
# ran: the filter sits on that logger too, where it sees the finished record.
EXTRA_FIELDS = ("request",)
ACCESS_LOGGERS = ("sanic.access",)


def install() -> None:
    """Mask every log record this process makes from now on."""
    current = logging.getLogRecordFactory()
    if getattr(current, "masks_personal_data", False):
        return

    def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        _FILTER.filter(record)
        return record

    masked_record.masks_personal_data = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(masked_record)
    for name in ACCESS_LOGGERS:
        logging.getLogger(name).addFilter(_FILTER)
