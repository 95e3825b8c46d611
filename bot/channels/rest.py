"""Rasa's REST channel as an integration channel for the brand's own back ends (docs/security.md).

It is off unless `CAREBOT_REST_SECRET` is set. Every request proves it comes from a back end
that holds the secret, in one of two ways:
- `Authorization: Bearer <secret>`;
- `X-Carebot-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>`,
  within `SIGNATURE_WINDOW_S` of the server's clock (the body cannot be changed, and an old
  request cannot be replayed after the window).
Its conversation ids live in their own namespace: sender `u42` is the conversation `rest:u42`,
which can never be a web chat user, an anonymous web session or a WeChat OpenID. The client's
`metadata` and `input_channel` are ignored: the channel writes its own (`{"channel": "rest"}`),
so no client's words choose the channel or the customer.

Stock Rasa files a message without a `sender` under the shared conversation "default" and
answers a JSON array with a 500; this channel refuses both with a 400 that says what is wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import action_failure, action_results

# Rasa imports this module in every Rasa server process that has the REST channel, and offers
# no hook for failed custom actions; bot/rasa_main.py installs the same for every process.
action_failure.install()
action_results.install()  # the same check of action answers, without re-checking the schema

NAMESPACE = "rest:"
MAX_SENDER_LENGTH = 255 - len(NAMESPACE)  # the tracker store's sender_id column
SIGNATURE_WINDOW_S = 300.0
SIGNATURE_HEADER = "x-carebot-signature"
MIN_SECRET_LENGTH = 16


def request_problem(body: bytes) -> str | None:
    """Why a webhook body is unacceptable, or None when it is a usable message."""
    try:
        payload: Any = json.loads(body or b"null")
    except ValueError:
        return "the body is not valid JSON"
    if not isinstance(payload, dict):
        return "the body must be a JSON object"
    sender, message = payload.get("sender"), payload.get("message")
    if not isinstance(sender, str) or not sender.strip():
        return "'sender' must be a non-empty string"
    if len(sender) > MAX_SENDER_LENGTH:
        return f"'sender' must be at most {MAX_SENDER_LENGTH} characters"
    if not isinstance(message, str):
        return "'message' must be a string"
    return None


def sign_body(secret: str, body: bytes, timestamp: int) -> str:
    """The `X-Carebot-Signature` header value a back end sends with `body` at `timestamp`."""
    return f"t={timestamp},v1={_mac(secret, body, str(timestamp))}"


def _mac(secret: str, body: bytes, timestamp: str) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_valid(secret: str, header: str, body: bytes, now: float) -> bool:
    """Whether the signature header covers `body` with `secret`, made within the window."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp, mac = fields.get("t", "").strip(), fields.get("v1", "").strip()
    if not timestamp.isdigit() or abs(now - int(timestamp)) > SIGNATURE_WINDOW_S:
        return False
    return hmac.compare_digest(mac, _mac(secret, body, timestamp))


def bearer_valid(secret: str, header: str) -> bool:
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), secret)


def authenticated(secret: str, request: Request, now: float) -> bool:
    """Whether the request carries the back end's credential (a bearer token or a signature)."""
    signature = request.headers.get(SIGNATURE_HEADER)
    if signature:
        return signature_valid(secret, str(signature), request.body or b"", now)
    return bearer_valid(secret, str(request.headers.get("authorization") or ""))


class CareRestInput(RestInput):
    """The REST channel at /webhooks/rest/webhook, for back ends holding the REST secret."""

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"the REST channel's secret needs {MIN_SECRET_LENGTH} characters")
        self.secret = secret
        self.clock = clock

    @classmethod
    def name(cls) -> str:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> CareRestInput:
        secret = str((credentials or {}).get("secret") or "")
        if not secret or secret.startswith("${"):
            raise ValueError("the REST channel needs a secret (CAREBOT_REST_SECRET)")
        return cls(secret)

    async def _extract_sender(self, req: Request) -> str:
        return NAMESPACE + str(req.json.get("sender"))

    def _extract_input_channel(self, req: Request) -> str:
        return self.name()

    def get_metadata(self, request: Request) -> dict[str, Any]:
        return {"channel": self.name()}

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        blueprint = super().blueprint(on_new_message)

        @blueprint.middleware("request")
        async def guard(request: Request) -> HTTPResponse | None:
            if request.method != "POST" or not request.path.endswith("/webhook"):
                return None
            if not authenticated(self.secret, request, self.clock()):
                return response.json({"error": "a valid REST credential is required"}, 401)
            problem = request_problem(request.body)
            return response.json({"error": problem}, status=400) if problem else None

        return blueprint
