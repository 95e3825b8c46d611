"""The one error tree of the CRM store.

CrmError
├── NotFound       a get_x found nothing
├── Conflict       the request contradicts the stored state (double link, spent coupon)
└── InvalidInput   the arguments themselves are wrong (bad phone, unknown tier)
"""

from __future__ import annotations


class CrmError(Exception):
    """Base of every error the CRM store raises on purpose."""


class NotFound(CrmError):
    pass


class Conflict(CrmError):
    pass


class InvalidInput(CrmError, ValueError):
    pass
