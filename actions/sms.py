"""Text messages to a phone: one-time codes and notices, through an `SmsProvider`.

`CAREBOT_SMS_PROVIDER` chooses the provider when the action server starts (it imports this
module): `demo-stub` (the default, and the only one built in) sends nothing and writes what it
would send to the log `carebot.sms_stub`. In demo mode (`CAREBOT_DEMO`, which `carebot run
--demo` sets) that line holds the code: the demo's way to read one, and the only place a code is
ever logged. Outside demo mode the stub writes the line with the code withheld, so nobody can
identify by phone until a real provider is configured. Any other value stops the action server
at start-up with `UnknownSmsProvider`; a real provider is one more entry in `PROVIDERS`.

What an SMS says is customer-facing text, so it lives in domain.yml like every other: a provider
registers those texts as its templates (mainland SMS gateways send approved templates only) and
`text_key` names the response: `CODE_TEXT` for a code ({code}), `CONTACT_CHANGED_TEXT` for the
notice to a number that was replaced.

Messages go out when the action's CRM transaction has committed (`send_after_commit`): a code
whose row was rolled back is never sent, a notice never announces a change that did not happen.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session

from actions.rules.identity import mask_mobile

PROVIDER_VARIABLE = "CAREBOT_SMS_PROVIDER"
DEFAULT_PROVIDER = "demo-stub"
DEMO_VARIABLE = "CAREBOT_DEMO"
TRUE = frozenset({"1", "true", "yes", "on"})  # as bot/settings.py reads CAREBOT_DEMO
WITHHELD = "******"
CODE_TEXT = "utter_sms_one_time_code"
CONTACT_CHANGED_TEXT = "utter_sms_contact_changed"

log = logging.getLogger(__name__)
stub_log = logging.getLogger("carebot.sms_stub")


class SmsProvider(Protocol):
    def send_code(self, phone: str, code: str) -> None:
        """Send the one-time `code` to `phone` (11 digits), worded as CODE_TEXT."""

    def send_notice(self, phone: str, text_key: str) -> None:
        """Send the text of the domain response `text_key` to `phone`."""


class UnknownSmsProvider(RuntimeError):
    pass


class DemoStubSms:
    """Sends nothing: logs each message with the masked number, and a code in full only when
    `reveal_codes` (demo mode)."""

    def __init__(self, *, reveal_codes: bool) -> None:
        self.reveal_codes = reveal_codes

    def send_code(self, phone: str, code: str) -> None:
        shown = code if self.reveal_codes else WITHHELD
        stub_log.warning("SMS stub: one-time code %s to %s", shown, mask_mobile(phone))

    def send_notice(self, phone: str, text_key: str) -> None:
        stub_log.warning("SMS stub: notice %s to %s", text_key, mask_mobile(phone))


def demo_stub(environ: Mapping[str, str]) -> SmsProvider:
    demo = environ.get(DEMO_VARIABLE, "").strip().lower() in TRUE
    return DemoStubSms(reveal_codes=demo)


# Each provider is built from the environment (a real one reads its credentials there).
PROVIDERS: dict[str, Callable[[Mapping[str, str]], SmsProvider]] = {"demo-stub": demo_stub}


def provider_from_env(environ: Mapping[str, str]) -> SmsProvider:
    name = environ.get(PROVIDER_VARIABLE, "").strip() or DEFAULT_PROVIDER
    factory = PROVIDERS.get(name)
    if factory is None:
        known = ", ".join(sorted(PROVIDERS))
        raise UnknownSmsProvider(
            f"{PROVIDER_VARIABLE}={name!r} is not an SMS provider this action server has "
            f"(known: {known}); the action server does not start without one"
        )
    return factory(environ)


def send_after_commit(session: Session, send: Callable[[], None], phone: str) -> None:
    """Call `send` once the session's transaction commits (never if it rolls back). A provider
    failure is logged (its kind and the masked number, nothing it was sending) and swallowed:
    the customer's turn has already been answered."""

    def deliver(_session: Session) -> None:
        try:
            send()
        except Exception as error:
            log.error("SMS to %s not sent: %s", mask_mobile(phone), type(error).__name__)

    event.listen(session, "after_commit", deliver, once=True)


# At import, that is when the action server starts: an unknown provider stops it there.
SMS: SmsProvider = provider_from_env(os.environ)
