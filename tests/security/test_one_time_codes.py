"""Identification by phone on the running system: no enumeration of members' numbers, guessing
and SMS flooding stop at the limits whatever the number of sessions (docs/security.md)."""

from __future__ import annotations

import re
import uuid

from tests.integration.system import System
from tests.integration.test_care import said


def unknown_number() -> str:
    return f"199{uuid.uuid4().int % 10**8:08d}"


def masked(text: str) -> str:
    """A reply with every masked phone and number replaced, to compare two replies' shapes."""
    return re.sub(r"1\d\d\*{4}\d{4}|\d+", "#", text)


def ask_code(system: System, phone: str) -> list[str]:
    sender = f"otp-{uuid.uuid4().hex}"
    system.say(sender, "我还有多少积分")
    replies = [masked(r.get("text", "")) for r in system.say(sender, phone)]
    replies += [masked(r.get("text", "")) for r in system.say(sender, "000000")]
    return replies


def test_a_known_and_an_unknown_number_get_the_same_replies(system: System) -> None:
    known, unknown = ask_code(system, "13800138002"), ask_code(system, unknown_number())
    assert known == unknown and len(known) >= 2


def test_new_sessions_do_not_reset_the_limits_of_a_phone(system: System) -> None:
    """An attacker opening session after session for one number: codes stop at the phone's
    limit and every later session hears the same polite refusal."""
    phone = unknown_number()
    refused = 0
    for _ in range(5):
        sender = f"flood-{uuid.uuid4().hex}"
        system.say(sender, "我还有多少积分")
        replies = system.say(sender, phone)
        refused += said(replies, "utter_otp_rate_limited")
    assert refused == 2  # 3 codes per 15 minutes per phone, then "try later"
