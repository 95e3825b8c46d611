"""A property-based fuzz of every HTTP route a stranger can reach on the running system: the
Rasa server (channels and API), the action server, the staff console and the WeChat simulator.
Whatever method, path, body and content type: never a 5xx, and every server keeps serving."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.system import REST_AUTH, System

RASA_ROUTES = [
    "/",
    "/version",
    "/status",
    "/webhooks/rest/",
    "/webhooks/rest/webhook",
    "/webhooks/webchat/",
    "/webhooks/webchat/demo-login",
    "/webhooks/webchat/demo-users",
    "/webhooks/wechat/",
    "/webhooks/wechat/webhook",
    "/socket.io/",
    "/conversations/demo/tracker",
    "/conversations/demo/messages",
    "/conversations/demo/trigger_intent",
    "/conversations/demo/tracker/events",
    "/model/parse",
    "/domain",
]
ACTION_ROUTES = ["/webhook", "/actions", "/health"]
CONSOLE_ROUTES = ["/", "/login", "/logout", "/health", "/queue", "/dashboard", "/api/queue"]
SIM_ROUTES = [
    "/",
    "/sim/api/health",
    "/sim/api/users",
    "/cgi-bin/token",
    "/cgi-bin/message/custom/send",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries(
        {"sender": st.text(max_size=30), "message": st.text(max_size=60)},
        optional={"metadata": json_values, "input_channel": st.text(max_size=10)},
    ).map(lambda value: json.dumps(value).encode()),
    st.just(b"<xml><ToUserName>a</ToUserName><MsgType>text</MsgType></xml>"),
)
suffixes = st.one_of(
    st.just(""),
    st.text(alphabet="abcXYZ019-_.%/?=&", max_size=20).map(lambda text: text),
)


def call(url: str, method: str, body: bytes, content_type: str, extra: dict[str, str]) -> int:
    data = body if method in ("POST", "PUT", "PATCH") else None
    request = urllib.request.Request(
        url, data, {"Content-Type": content_type, **extra}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, ValueError):
        return 0  # a path urllib itself refuses to send


def fuzz(base: Callable[[], str], routes: list[str], with_rest_credential: bool = False) -> None:
    @settings(
        max_examples=120,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        derandomize=True,
    )
    @given(
        route=st.sampled_from(routes),
        suffix=suffixes,
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]),
        body=bodies,
        content_type=st.sampled_from(
            ["application/json", "text/plain", "text/xml", "application/x-www-form-urlencoded"]
        ),
        credential=st.booleans() if with_rest_credential else st.just(False),
    )
    def probe(
        route: str, suffix: str, method: str, body: bytes, content_type: str, credential: bool
    ) -> None:
        url = base() + route + (suffix if not suffix.startswith("/") else suffix[1:])
        status = call(url, method, body, content_type, REST_AUTH if credential else {})
        assert status < 500, f"{method} {url} -> {status}"

    probe()


@pytest.mark.parametrize("server", ["rasa", "action", "console", "sim"])
def test_no_route_answers_a_stranger_with_a_5xx(system: System, server: str) -> None:
    bases = {
        "rasa": (lambda: system.rasa_url, RASA_ROUTES, True),
        "action": (lambda: system.action_url, ACTION_ROUTES, False),
        "console": (lambda: str(system.console_url), CONSOLE_ROUTES, False),
        "sim": (lambda: str(system.wechat_sim_url), SIM_ROUTES, False),
    }
    base, routes, rest = bases[server]
    fuzz(base, routes, rest)
    health = {"rasa": "/", "action": "/health", "console": "/health", "sim": "/sim/api/health"}
    assert call(base() + health[server], "GET", b"", "text/plain", {}) == 200
    assert system.say("fuzz-after", "你好")
