"""Identity checks: a mobile number from free text, a one-time code in an answer, and when a
code may be sent at all.

The code itself is never kept by the assistant: `crm_store.login_codes` stores a salted digest
with its expiry and attempts, and the conversation keeps only a `PendingCode` (that row's id and
the number it went to) in the `otp_state` slot.

When a code may be sent (`send_refusal`, checked before every code, for identification and for a
new contact number alike; an unknown number is counted like a known one):

| refusal        | when                                                                       |
| -------------- | -------------------------------------------------------------------------- |
| "locked_out"   | a code for this phone was exhausted by wrong answers, and the lockout has  |
|                | not run out: 15 minutes after the first such code within 24 hours (and    |
|                | since the phone's last successful code), 30 after the second, 60, ...     |
|                | never more than 24 hours (`lockout_until`)                                 |
| "phone"        | 3 codes for this phone in 15 minutes, or 10 in 24 hours                    |
| "client"       | 5 codes asked by this conversation in an hour                              |
| "overall"      | 100 codes in a minute, all phones together (CAREBOT_OTP_PER_MINUTE)        |

A code is valid for OTP_VALIDITY and OTP_ATTEMPTS answers; a wrong answer costs an attempt,
so at most OTP_ATTEMPTS x 10 guesses a day reach one phone's codes however many conversations
ask.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from actions.rules._text import fold
from crm_store.login_codes import SpentCode

OTP_VALIDITY = timedelta(minutes=5)
OTP_ATTEMPTS = 3
OTP_LENGTH = 6
# How long a code answered right authorises the phone change it was sent for.
VERIFIED_CODE_LIFETIME = timedelta(minutes=15)

LOCKOUT_FIRST = timedelta(minutes=15)
LOCKOUT_MEMORY = timedelta(days=1)  # also the longest look-back: what the CRM must keep
OVERALL_LIMIT_VARIABLE = "CAREBOT_OTP_PER_MINUTE"
DEFAULT_OVERALL_PER_MINUTE = 100

# Digit runs that may be broken by single spaces or dashes ("138 0013-8000"), with an optional
# leading "+" for "+86".
_DIGIT_RUN = re.compile(r"\+?\d+(?:[ \-]\d+)*")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_COUNTRY_PREFIXES = ("0086", "86")

Scope = Literal["phone", "client", "overall"]
Refusal = Literal["locked_out", "phone", "client", "overall"]


def _digit_runs(text: str) -> list[str]:
    """Each run of digits in the folded text with separators removed, then its pieces.

    The pieces rescue "13800138000 2个" (a number, a space, a quantity); the joined run comes
    first so that "138 0013 8000" is read whole.
    """
    candidates: list[str] = []
    for run in _DIGIT_RUN.findall(fold(text)):
        pieces = re.findall(r"\d+", run)
        candidates += ["".join(pieces), *pieces] if len(pieces) > 1 else pieces
    return candidates


def _strip_country_code(digits: str) -> str:
    for prefix in _COUNTRY_PREFIXES:
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            return digits[len(prefix) :]
    return digits


def normalize_mobile(text: str) -> str | None:
    """The first mainland mobile number in the text as 11 digits, or None.

    A run of 10 or 12 digits is malformed rather than "a number plus a stray digit", so it is
    never trimmed into a valid one; order numbers (DD + 12 digits) are skipped the same way.
    """
    for digits in _digit_runs(text):
        candidate = _strip_country_code(digits)
        if _MOBILE.fullmatch(candidate):
            return candidate
    return None


def mask_mobile(phone: str) -> str:
    """138****8000: enough for the customer to recognise their number, not to learn it."""
    digits = normalize_mobile(phone) or phone.strip()
    if len(digits) < 8:
        return "****"
    return f"{digits[:3]}****{digits[-4:]}"


def new_otp(rng: random.Random) -> str:
    """Six digits, leading zeros kept; pass a `random.SystemRandom()` in production."""
    return f"{rng.randrange(10**OTP_LENGTH):0{OTP_LENGTH}d}"


def extract_otp(text: str) -> str | None:
    """The first run of exactly six digits ("123 456" and full-width digits count)."""
    return next((run for run in _digit_runs(text) if len(run) == OTP_LENGTH), None)


@dataclass(frozen=True)
class Window:
    """At most `limit` codes per `period` for one phone, one client, or all together."""

    scope: Scope
    limit: int
    period: timedelta


PHONE_WINDOWS = (
    Window("phone", 3, timedelta(minutes=15)),
    Window("phone", 10, timedelta(days=1)),
)
CLIENT_WINDOWS = (Window("client", 5, timedelta(hours=1)),)


def otp_windows(environ: Mapping[str, str]) -> tuple[Window, ...]:
    """Every rate-limit window; the overall one per minute from CAREBOT_OTP_PER_MINUTE.

    Raises ValueError for a value that is not a positive whole number."""
    raw = environ.get(OVERALL_LIMIT_VARIABLE, "").strip() or str(DEFAULT_OVERALL_PER_MINUTE)
    if not re.fullmatch(r"[1-9][0-9]*", raw):
        raise ValueError(f"{OVERALL_LIMIT_VARIABLE} must be a positive whole number, not {raw!r}")
    overall = Window("overall", int(raw), timedelta(minutes=1))
    return (*PHONE_WINDOWS, *CLIENT_WINDOWS, overall)


def lockout_until(spent: Sequence[SpentCode]) -> datetime | None:
    """The end of the phone's lockout, given its codes spent within LOCKOUT_MEMORY (any order):
    the exhausted codes since the last verified one double the lockout, capped at a day."""
    last_success = max((code.at for code in spent if code.verified), default=None)
    failures = [
        code.at
        for code in spent
        if not code.verified and (last_success is None or code.at > last_success)
    ]
    if not failures:
        return None
    length = min(LOCKOUT_FIRST * 2 ** (len(failures) - 1), LOCKOUT_MEMORY)
    return max(failures) + length


def send_refusal(
    issued: Mapping[Window, int], spent: Sequence[SpentCode], now: datetime
) -> Refusal | None:
    """Why no code may be sent now (None: send it). `issued` counts the codes within each
    window's period, `spent` is the phone's codes spent within LOCKOUT_MEMORY."""
    until = lockout_until(spent)
    if until is not None and now < until:
        return "locked_out"
    for window, count in issued.items():
        if count >= window.limit:
            return window.scope
    return None


@dataclass(frozen=True)
class PendingCode:
    """The code a conversation waits for: the CRM row's id and the number it went to. Never
    the code or its digest."""

    code_id: int
    phone: str

    def to_slot(self) -> dict[str, Any]:
        return {"code_id": self.code_id, "phone": self.phone}

    @classmethod
    def from_slot(cls, value: object) -> PendingCode | None:
        """The pending code kept in a slot; None for anything else (empty, old format)."""
        if not isinstance(value, dict):
            return None
        code_id, phone = value.get("code_id"), value.get("phone")
        if type(code_id) is not int or code_id <= 0 or not isinstance(phone, str):
            return None
        if normalize_mobile(phone) != phone:
            return None
        return cls(code_id, phone)
