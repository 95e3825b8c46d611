"""How every process we run writes its log lines: text (the default) or one JSON object a line
(`CAREBOT_LOG_FORMAT=json`), for a log shipper in production (docs/deploy.md).

Masking of personal data (bot/log_masking.py) happens before any of this, when a record is
made, so a JSON line carries the masked message and the masked traceback, never the raw ones.

`configure()` is what our own processes call (the care scheduler, the log consumer, the
console, `carebot run` and `carebot db-upgrade`). Rasa and rasa-sdk configure their logging
themselves through `coloredlogs.install`, which builds its formatter from
`coloredlogs.BasicFormatter` (or `ColoredFormatter` on a terminal) when it runs: `install()`
puts `JsonFormatter` in their place, so the Rasa server's and the action server's lines are
JSON too. Sanic's own loggers (access and error) get it through `sanic_log_config()`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from crm_store.masking import mask_log_text

FORMAT_VARIABLE = "CAREBOT_LOG_FORMAT"
LEVEL_VARIABLE = "CAREBOT_LOG_LEVEL"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STANDARD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def wants_json(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get(FORMAT_VARIABLE, "text").strip().lower() == "json"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, process id, and
    the traceback and any `extra` fields when there are some.

    Accepts (and ignores) the options coloredlogs passes its formatters (`fmt`, `datefmt`,
    `style`, `level_styles`, `field_styles`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_log_text(self.formatException(record.exc_info))
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        for key, value in record.__dict__.items():
            if key not in _STANDARD_FIELDS and not key.startswith("_"):
                line[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
        return json.dumps(line, ensure_ascii=False)


def formatter(env: Mapping[str, str] | None = None) -> logging.Formatter:
    return JsonFormatter() if wants_json(env) else logging.Formatter(TEXT_FORMAT)


def configure(level: str | int | None = None) -> None:
    """The root logger writes to stderr in the chosen format, at CAREBOT_LOG_LEVEL (INFO)."""
    install()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level or os.environ.get(LEVEL_VARIABLE, "INFO"))
    if wants_json():
        logging.captureWarnings(True)  # a Python warning is a log line too, not raw stderr


def install() -> None:
    """In JSON mode, the formatter coloredlogs builds for Rasa and rasa-sdk is ours."""
    if not wants_json():
        return
    import coloredlogs

    coloredlogs.BasicFormatter = JsonFormatter
    coloredlogs.ColoredFormatter = JsonFormatter


SANIC_LOGGERS = ("sanic.root", "sanic.error", "sanic.access")


def sanic_writes_its_own() -> None:
    """For a Sanic app that configures its own log handlers (the console): its lines are not
    passed on to the root handler as well, which would write each of them twice."""
    for name in SANIC_LOGGERS:
        logging.getLogger(name).propagate = False


def sanic_log_config() -> dict[str, Any] | None:
    """Sanic's logging configuration with our JSON formatter (None: Sanic's default)."""
    if not wants_json():
        return None
    from sanic.log import LOGGING_CONFIG_DEFAULTS

    formatters = LOGGING_CONFIG_DEFAULTS["formatters"]
    json_formatter = {"()": f"{__name__}.JsonFormatter"}
    return {**LOGGING_CONFIG_DEFAULTS, "formatters": dict.fromkeys(formatters, json_formatter)}
