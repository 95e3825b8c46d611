"""Identity checks: a mobile number from free text, and a one-time code sent to it.

The code itself is never stored: the conversation keeps an `OtpState` (salted sha256 digest,
expiry, attempts left) in a slot, so a tracker dump does not reveal it.

`check_otp` verdicts, in the order they are decided:

| verdict   | when                                                                  |
| --------- | --------------------------------------------------------------------- |
| "locked"  | no attempts left (the code is not even compared)                      |
| "expired" | `now` is at or past `expires_at` (OTP_VALIDITY after issue)           |
| "ok"      | the six digits in the text match                                      |
| "locked"  | wrong, and it was the last attempt                                    |
| "wrong"   | wrong (or no six-digit code in the text) with attempts still left     |

After "wrong" or "locked" the caller stores `spend_attempt(state)`.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from actions.rules._text import fold

OTP_VALIDITY = timedelta(minutes=5)
OTP_ATTEMPTS = 3
OTP_LENGTH = 6

# Digit runs that may be broken by single spaces or dashes ("138 0013-8000"), with an optional
# leading "+" for "+86".
_DIGIT_RUN = re.compile(r"\+?\d+(?:[ \-]\d+)*")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_COUNTRY_PREFIXES = ("0086", "86")

OtpVerdict = Literal["ok", "wrong", "expired", "locked"]


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


def otp_digest(code: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def extract_otp(text: str) -> str | None:
    """The first run of exactly six digits ("123 456" and full-width digits count)."""
    return next((run for run in _digit_runs(text) if len(run) == OTP_LENGTH), None)


def otp_matches(text: str, digest: str, salt: str) -> bool:
    code = extract_otp(text)
    return code is not None and hmac.compare_digest(otp_digest(code, salt), digest)


@dataclass(frozen=True)
class OtpState:
    digest: str
    salt: str
    expires_at: datetime  # timezone-aware
    attempts_left: int

    def to_slot(self) -> dict[str, Any]:
        """JSON-safe, for a slot of type `any`."""
        return {
            "digest": self.digest,
            "salt": self.salt,
            "expires_at": self.expires_at.isoformat(),
            "attempts_left": self.attempts_left,
        }

    @classmethod
    def from_slot(cls, value: object) -> OtpState | None:
        """The state kept in a slot; None for anything else (empty, hand-edited, old format)."""
        if not isinstance(value, dict):
            return None
        digest, salt = value.get("digest"), value.get("salt")
        expires_at, attempts = value.get("expires_at"), value.get("attempts_left")
        if not (isinstance(digest, str) and isinstance(salt, str) and isinstance(expires_at, str)):
            return None
        if type(attempts) is not int or not 0 <= attempts <= OTP_ATTEMPTS:
            return None
        try:
            expiry = datetime.fromisoformat(expires_at)
        except ValueError:
            return None
        # A naive time can only have come from us writing UTC; compare it as such.
        expiry = expiry if expiry.tzinfo else expiry.replace(tzinfo=timezone.utc)
        return cls(digest, salt, expiry, attempts)


def issue_otp(code: str, salt: str, now: datetime) -> OtpState:
    """The state for a code just sent: valid for OTP_VALIDITY, OTP_ATTEMPTS tries."""
    return OtpState(otp_digest(code, salt), salt, now + OTP_VALIDITY, OTP_ATTEMPTS)


def spend_attempt(state: OtpState) -> OtpState:
    return replace(state, attempts_left=max(0, state.attempts_left - 1))


def check_otp(state: OtpState, text: str, now: datetime) -> OtpVerdict:
    """The verdict on a customer's answer; see the table in the module docstring."""
    if state.attempts_left <= 0:
        return "locked"
    if now >= state.expires_at:
        return "expired"
    if otp_matches(text, state.digest, state.salt):
        return "ok"
    return "locked" if state.attempts_left == 1 else "wrong"
