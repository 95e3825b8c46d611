"""CAREBOT_LOG_FORMAT=json: one JSON object a line from every entry point, personal data still
masked (bot/log_format.py, bot/log_masking.py)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import coloredlogs
import pytest

from bot import log_format, log_masking
from bot.settings import PROJECT_DIR

PHONE = "13800138000"


def json_logger(name: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(log_format.JsonFormatter())
    logger = logging.getLogger(name)
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_a_json_line_carries_the_masked_message_and_traceback() -> None:
    log_masking.install()
    logger, stream = json_logger("carebot.test.json")
    try:
        raise ValueError(f"customer {PHONE} not found")
    except ValueError:
        logger.exception("lookup for %s failed", PHONE, extra={"request_id": "r-1"})
    line = json.loads(stream.getvalue())
    assert line["level"] == "ERROR" and line["logger"] == "carebot.test.json"
    assert line["message"] == "lookup for 138****8000 failed"
    assert "ValueError: customer 138****8000 not found" in line["exception"]
    assert PHONE not in stream.getvalue() and line["request_id"] == "r-1"
    assert line["time"].endswith("+00:00") and isinstance(line["pid"], int)


def test_rasa_and_rasa_sdk_lines_are_json_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both configure logging through coloredlogs.install: in JSON mode it builds ours."""
    monkeypatch.setattr(coloredlogs, "BasicFormatter", coloredlogs.BasicFormatter)
    monkeypatch.setattr(coloredlogs, "ColoredFormatter", coloredlogs.ColoredFormatter)
    monkeypatch.setenv("CAREBOT_LOG_FORMAT", "json")
    log_format.install()
    stream = io.StringIO()
    logger = logging.getLogger("rasa.test_json")
    coloredlogs.install(level="INFO", logger=logger, stream=stream, fmt="%(message)s")
    logger.propagate = False
    try:
        logger.info("model loaded")
    finally:
        logger.handlers = []
    assert json.loads(stream.getvalue())["message"] == "model loaded"


def test_text_stays_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAREBOT_LOG_FORMAT", raising=False)
    assert not log_format.wants_json() and log_format.sanic_log_config() is None
    assert not isinstance(log_format.formatter(), log_format.JsonFormatter)
    monkeypatch.setenv("CAREBOT_LOG_FORMAT", "JSON")
    config = log_format.sanic_log_config()
    assert config is not None and config["formatters"]
    assert all(f == {"()": "bot.log_format.JsonFormatter"} for f in config["formatters"].values())


def test_a_real_command_writes_only_json_lines(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        CAREBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'crm.db'}",
        CAREBOT_VAR_DIR=str(tmp_path),
        CAREBOT_LOG_FORMAT="json",
        RASA_TELEMETRY_ENABLED="false",
    )
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "db-upgrade"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert lines and {"time", "level", "logger", "message"} <= set(lines[0])
    assert any(line["logger"].startswith("alembic") for line in lines)
