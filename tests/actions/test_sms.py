"""The SMS provider: chosen by CAREBOT_SMS_PROVIDER, the demo stub's log lines, sending after
the CRM transaction commits."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from actions.sms import (
    DemoStubSms,
    UnknownSmsProvider,
    provider_from_env,
    send_after_commit,
)
from crm_store.db import session_scope


@pytest.mark.parametrize(
    ("environ", "reveal_codes"),
    [
        ({}, False),
        ({"CAREBOT_SMS_PROVIDER": "", "CAREBOT_DEMO": "0"}, False),
        ({"CAREBOT_SMS_PROVIDER": "demo-stub", "CAREBOT_DEMO": "1"}, True),
        ({"CAREBOT_DEMO": " On "}, True),
    ],
)
def test_the_demo_stub_is_the_default_and_shows_codes_in_demo_mode(
    environ: dict[str, str], reveal_codes: bool
) -> None:
    provider = provider_from_env(environ)
    assert isinstance(provider, DemoStubSms) and provider.reveal_codes is reveal_codes


def test_an_unknown_provider_is_refused_clearly() -> None:
    with pytest.raises(UnknownSmsProvider, match=r"CAREBOT_SMS_PROVIDER='aliyun'.*demo-stub"):
        provider_from_env({"CAREBOT_SMS_PROVIDER": "aliyun"})


def test_the_action_server_does_not_start_with_an_unknown_provider() -> None:
    """It imports every module of `actions` when it starts (rasa-sdk's register_package)."""
    code = (
        "from rasa_sdk.executor import ActionExecutor; ActionExecutor().register_package('actions')"
    )
    env = {**os.environ, "CAREBOT_SMS_PROVIDER": "no-such-gateway"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0
    assert "UnknownSmsProvider" in done.stderr and "no-such-gateway" in done.stderr


def test_the_stub_logs_codes_and_notices_with_the_masked_number(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="carebot.sms_stub"):
        DemoStubSms(reveal_codes=True).send_code("+86 138-0013-8000", "012345")
        DemoStubSms(reveal_codes=True).send_notice("13800138000", "utter_sms_contact_changed")
        DemoStubSms(reveal_codes=False).send_code("13800138000", "654321")
    assert [r.getMessage() for r in caplog.records] == [
        "SMS stub: one-time code 012345 to 138****8000",
        "SMS stub: notice utter_sms_contact_changed to 138****8000",
        "SMS stub: one-time code ****** to 138****8000",  # outside demo mode
    ]
    assert {r.name for r in caplog.records} == {"carebot.sms_stub"}


def test_nothing_is_sent_before_the_commit_or_after_a_rollback(crm: Engine) -> None:
    sent: list[str] = []
    with session_scope(crm) as session:
        send_after_commit(session, lambda: sent.append("committed"), "13800138000")
        assert sent == []
    assert sent == ["committed"]

    with pytest.raises(RuntimeError), session_scope(crm) as session:
        send_after_commit(session, lambda: sent.append("rolled back"), "13800138000")
        raise RuntimeError("the action failed")
    assert sent == ["committed"]


def test_a_failing_provider_is_logged_without_what_it_sent(
    crm: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    def fail() -> None:
        raise ConnectionError("gateway refused code 482913 for 13800138000")

    session = Session(bind=crm, future=True)
    send_after_commit(session, fail, "13800138000")
    session.commit()
    session.close()
    assert [r.getMessage() for r in caplog.records] == [
        "SMS to 138****8000 not sent: ConnectionError"
    ]
