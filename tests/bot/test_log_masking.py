"""Issue 15: no log line of any level, from any logger, carries a full phone number or code."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bot import log_masking

PHONE = "13912345678"
CODE = "482913"


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """Everything logged at any level while the masking is installed, as a handler writes it."""
    factory = logging.getLogRecordFactory()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(request)s"))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    log_masking.install()
    try:
        yield out
    finally:
        logging.setLogRecordFactory(factory)
        root.removeHandler(handler)
        root.setLevel(level)
        logging.getLogger("sanic.access").removeFilter(log_masking._FILTER)


def test_messages_arguments_and_tracebacks_are_masked(log_text: io.StringIO) -> None:
    rasa = logging.getLogger("rasa.core.processor")
    rasa.debug("Received user message '%s' with intent", CODE, extra={"request": ""})
    rasa.info(f"identify {PHONE} in web-{'ab' * 16}", extra={"request": ""})
    try:
        raise ValueError(f"no customer with phone {PHONE}")
    except ValueError:
        logging.getLogger("actions").exception("failed for %s", PHONE, extra={"request": ""})
    logging.getLogger("sanic.access").info(
        "", extra={"request": f"GET /conversations/web-{'cd' * 16}/tracker?phone={PHONE}"}
    )
    text = log_text.getvalue()
    assert PHONE not in text and CODE not in text and "abab" not in text and "cdcd" not in text
    assert "139****5678" in text and "ValueError" in text and "******" in text


def test_only_the_demo_sms_stub_line_may_carry_a_code(log_text: io.StringIO) -> None:
    stub = logging.getLogger("carebot.sms_stub")
    stub.warning("SMS stub: one-time code %s to %s", CODE, PHONE, extra={"request": ""})
    text = log_text.getvalue()
    assert f"one-time code {CODE} to 139****5678" in text and PHONE not in text


def test_installing_twice_masks_once(log_text: io.StringIO) -> None:
    factory = logging.getLogRecordFactory()
    log_masking.install()
    assert logging.getLogRecordFactory() is factory


def test_every_entry_point_installs_the_masking() -> None:
    from pathlib import Path

    root = Path(log_masking.__file__).parent
    for entry in ("rasa_main.py", "action_server.py", "cli.py", "care/service.py"):
        assert "log_masking.install()" in (root / entry).read_text(encoding="utf-8"), entry
