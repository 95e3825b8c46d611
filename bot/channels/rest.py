"""Rasa's REST channel with the checks it lacks.

Stock Rasa files a message without a `sender` under the shared conversation "default", where
every such client would read the others' conversation, and answers a JSON array with a 500.
This channel refuses both with a 400 that says what is wrong, before Rasa sees the request.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import action_failure, action_results

# Rasa imports this module in every Rasa server process (credentials.yml names the channel) and
# offers no hook for failed custom actions, so this is where the apology for them is installed.
action_failure.install()
action_results.install()  # the same check of action answers, without re-checking the schema

MAX_SENDER_LENGTH = 255  # the tracker store's sender_id column


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


class CareRestInput(RestInput):
    """The REST channel at /webhooks/rest/webhook, refusing malformed requests with a 400."""

    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        blueprint = super().blueprint(on_new_message)

        @blueprint.middleware("request")
        async def refuse_malformed(request: Request) -> HTTPResponse | None:
            if request.method != "POST" or not request.path.endswith("/webhook"):
                return None
            problem = request_problem(request.body)
            return response.json({"error": problem}, status=400) if problem else None

        return blueprint
