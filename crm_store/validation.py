"""Pure checks shared by the API: each returns the clean value or raises InvalidInput."""

from __future__ import annotations

import re

from crm_store.errors import InvalidInput

_PHONE = re.compile(r"1[3-9]\d{9}")
_SEPARATORS = re.compile(r"[\s\-()]")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
ORDER_ID = re.compile(r"DD\d{12}")


def normalize_phone(raw: str) -> str:
    """A mainland mobile number as 11 digits; accepts +86/0086 prefixes, spaces and dashes."""
    digits = _SEPARATORS.sub("", raw.strip())
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == 11 + len(prefix):
            digits = digits[len(prefix) :]
    if not _PHONE.fullmatch(digits):
        raise InvalidInput(f"not a mainland mobile number: {raw!r}")
    return digits


def check_email(raw: str) -> str:
    email = raw.strip()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise InvalidInput(f"not an email address: {raw!r}")
    return email


def check_choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise InvalidInput(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")
    return value


def check_positive(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"{what} must be a positive integer, got {value!r}")
    return value


def check_non_negative(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{what} must be a non-negative integer, got {value!r}")
    return value


def check_range(value: int, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{what} must be an integer from {low} to {high}, got {value!r}")
    return value


def check_text(value: str, what: str, max_length: int) -> str:
    text = value.strip()
    if not text or len(text) > max_length:
        raise InvalidInput(f"{what} must be 1 to {max_length} characters")
    return text


def check_order_id(value: str) -> str:
    if not ORDER_ID.fullmatch(value):
        raise InvalidInput(f"an order id is DD and 12 digits, got {value!r}")
    return value
