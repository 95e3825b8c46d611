"""Personal data masked by default (issue 15, docs/personal-data.md).

Plain functions, no database: the log filter of every process (bot/log_masking.py), the staff
console, the dashboard's verbatims, CSV exports and the audit log all mask with these, so a
phone number looks the same (`138****8000`) wherever it is shown masked.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

# A mainland mobile, alone or with +86/0086 and the usual separators (138-0013-8000).
_MOBILE = re.compile(
    r"(?<![0-9A-Za-z])(?:(?:\+|00)86[ -]?)?(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?![0-9A-Za-z])"
)
# A resident identity card number (18 characters, the last may be X).
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[0-9Xx])(?![0-9A-Za-z])")
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
)
# An anonymous web chat session id: whoever holds it is that conversation (docs/security.md).
_WEB_SESSION = re.compile(r"(?<![A-Za-z0-9_-])web-[0-9a-f]{16,64}(?![0-9A-Za-z_])")
# A one-time code as the SMS stub and customers write it: six digits standing alone.
_SIX_DIGITS = re.compile(r"(?<![0-9A-Za-z.:_/-])\d{6}(?![0-9A-Za-z.:_/-])")

ALIAS_DIGITS = 10


def mask_phone(phone: str | None) -> str:
    """`13800138000` -> `138****8000`; anything shorter keeps only its last two digits."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)[-11:]
    if len(digits) == 11:
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * max(len(digits) - 2, 0) + digits[-2:]


def mask_name(name: str | None) -> str:
    """`王小明` -> `王**`: enough for an agent to address a customer, not to identify one."""
    if not name:
        return ""
    return name[0] + "*" * max(len(name) - 1, 1)


def mask_email(email: str | None) -> str:
    if not email:
        return ""
    return _EMAIL.sub(r"\1***@\2", email)


def alias(identifier: str) -> str:
    """A short stable stand-in for an id staff must not be able to use (a session id, an
    OpenID): the same id always gets the same alias, and the alias cannot be turned back."""
    digest = hashlib.sha256(identifier.encode("utf-8")).hexdigest()[:ALIAS_DIGITS]
    prefix = identifier.split("-", 1)[0] if identifier.startswith("web-") else "id"
    return f"{prefix}~{digest}"


def mask_text(text: str) -> str:
    """Free text with its phone numbers, identity card numbers, e-mail addresses and anonymous
    session ids masked; everything else as it was."""
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    text = _ID_CARD.sub(lambda m: f"{m.group(1)}********{m.group(2)}", text)
    text = _EMAIL.sub(r"\1***@\2", text)
    return _WEB_SESSION.sub(lambda m: alias(m.group(0)), text)


def mask_log_text(text: str) -> str:
    """What the logs get: `mask_text`, and six digits standing alone (a one-time code typed by a
    customer or written by an SMS provider) replaced by `******`."""
    return _SIX_DIGITS.sub("******", mask_text(text))


def mask_value(value: Any) -> Any:
    """`mask_text` through JSON-like values (an audit entry's changes)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {key: mask_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(item) for item in value]
    return value


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """A CSV cell a spreadsheet shows as text: one that would start a formula (`= + - @`, or a
    tab or carriage return before one) gets a leading apostrophe, as OWASP advises. Plain
    negative numbers (`-3`, `-0.25`) stay numbers: they cannot run anything."""
    if cell.startswith(FORMULA_STARTS) and not _is_number(cell):
        return "'" + cell
    return cell


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return cell.strip() == cell
