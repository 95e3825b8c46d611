"""The one client of Rasa's HTTP API (`--enable-api`, the server's `--auth-token`): the staff
console writes into conversations, `carebot notify` and the care scheduler trigger intents, and
`carebot forget` empties trackers, all through `RasaApi`.

Conversation ids in the URL: Rasa's `/conversations/<conversation_id:path>/...` routes take the
path's characters as they are, without percent-decoding (Sanic 21.12 leaves route parameters
encoded): `/conversations/rest%3Au1/tracker` is the conversation `rest%3Au1`, and `o_abc%2F1` is not
`o_abc/1`. So an id goes into the path unencoded, `:` and `/` included
(`/conversations/o_abc/1/tracker` is `o_abc/1`: the route's parameter takes every segment up to the
last route word). That works for every character a URL path may carry unencoded (RFC 3986: letters,
digits, `-._~`, `!$&'()*+,;=`, `:`, `@`, `/`), which covers the ids this system makes (WeChat
OpenIDs, `web-<hex>` sessions, web user ids and REST senders of such characters). An id with any
other character (a space, `?`, `#`, `%`, Chinese) cannot be named on this API at all: sent as it is,
the request is not valid HTTP, and percent-encoded it is another conversation. Such an id raises
`Unaddressable` before any request, so nothing is ever written to a conversation that is not the one
meant. tests/bot/test_rasa_api.py pins the URLs; tests/integration/test_personal_data.py checks the
rule against the real server.

Synchronous (urllib): the scheduler and `carebot forget` are synchronous, and the console, an
async Sanic process, calls it in a worker thread (bot/console/conversation.py).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

TIMEOUT_S = 15.0
DETAIL_CHARS = 300  # of Rasa's error body, in the error's message
_PATH_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/]+")


class RasaError(Exception):
    """Rasa refused the request, did not answer, or the conversation cannot be named."""


class RasaRefused(RasaError):
    """Rasa answered with an HTTP error status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"Rasa answered {status}: {detail[:DETAIL_CHARS]}")
        self.status = status


class RasaUnreachable(RasaError):
    """No answer: nothing listens, the connection broke or the time ran out."""


class Unaddressable(RasaError):
    """The conversation id has a character Rasa's HTTP API cannot carry (module docstring)."""


def addressable(conversation_id: str) -> bool:
    """Whether Rasa's HTTP API can name this conversation exactly."""
    return _PATH_CHARACTERS.fullmatch(conversation_id) is not None


def conversation_url(
    base_url: str, conversation_id: str, tail: str, query: Mapping[str, str]
) -> str:
    """`{base}/conversations/{id}/{tail}?{query}` with the id unencoded; raises Unaddressable."""
    if not addressable(conversation_id):
        raise Unaddressable(
            f"Rasa's HTTP API cannot name the conversation {conversation_id!r}: its id has a "
            "character a URL path cannot carry unencoded, and Rasa does not decode"
        )
    path = f"{base_url.rstrip('/')}/conversations/{conversation_id}/{tail}"
    return f"{path}?{urllib.parse.urlencode(query)}" if query else path


class RasaApi:
    """Rasa's conversation routes with the server's token (sent as `?token=`)."""

    def __init__(self, base_url: str, token: str, timeout_s: float = TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def trigger_intent(
        self,
        conversation_id: str,
        intent: str,
        entities: Mapping[str, Any] | None = None,
        output_channel: str | None = None,
    ) -> dict[str, Any]:
        """POST .../trigger_intent: the intent's rule runs and the bot answers on
        `output_channel` (None: Rasa collects the messages into the answer's `messages`)."""
        body = {"name": intent, **({"entities": dict(entities)} if entities else {})}
        query = self._query(output_channel=output_channel)
        return dict(self._call("POST", conversation_id, "trigger_intent", query, body))

    def tracker(self, conversation_id: str) -> dict[str, Any]:
        """GET .../tracker with every event (`include_events=ALL`)."""
        query = self._query(include_events="ALL")
        return dict(self._call("GET", conversation_id, "tracker", query))

    def events(self, conversation_id: str) -> list[dict[str, Any]]:
        return list(self.tracker(conversation_id).get("events") or [])

    def append_events(
        self,
        conversation_id: str,
        events: Sequence[Mapping[str, Any]],
        *,
        output_channel: str | None = None,
        execute_side_effects: bool = False,
    ) -> dict[str, Any]:
        """POST .../tracker/events; with `execute_side_effects` a `bot` event is also sent to
        the customer on `output_channel`."""
        flag = "true" if execute_side_effects else None
        query = self._query(execute_side_effects=flag, output_channel=output_channel)
        return dict(self._call("POST", conversation_id, "tracker/events", query, list(events)))

    def replace_events(
        self, conversation_id: str, events: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """PUT .../tracker/events: the tracker becomes these events, under the conversation's
        lock (an empty list erases the conversation: bot/tracker_store.py)."""
        query = self._query()
        return dict(self._call("PUT", conversation_id, "tracker/events", query, list(events)))

    def _query(self, **extra: str | None) -> dict[str, str]:
        return {"token": self.token, **{k: v for k, v in extra.items() if v is not None}}

    def _call(
        self,
        method: str,
        conversation_id: str,
        tail: str,
        query: Mapping[str, str],
        body: Any = None,
    ) -> Any:
        url = conversation_url(self.base_url, conversation_id, tail, query)
        data = None if body is None else json.dumps(body).encode()
        headers = {} if data is None else {"Content-Type": "application/json"}
        request = urllib.request.Request(url, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                text = answer.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise RasaRefused(error.code, detail) from error
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise RasaUnreachable(f"Rasa is unreachable: {error}") from error
        try:
            return json.loads(text or b"{}")
        except ValueError as error:
            raise RasaError(f"Rasa's answer is not JSON: {text[:DETAIL_CHARS]!r}") from error
