"""`python -m bot.action_server --port N`: rasa-sdk's action server, callable only by Rasa.

Every request but `/health` and `/metrics` (bot/metrics.py: each action's run time) must carry
`Authorization: Bearer <CAREBOT_ACTION_SECRET>`, which only the Rasa server has (its
`action_endpoint` sends it, bot/runtime.py). A forged tracker
from anyone else (`slots.customer_id = N`) gets a 401 before any action runs. No CORS: no
browser has any business here. It binds the address in `SANIC_HOST` (loopback by default).
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os
import sys

from rasa_sdk import utils
from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME
from rasa_sdk.endpoint import create_app
from sanic import Sanic, response
from sanic.exceptions import SanicException
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import log_format, log_masking, metrics

SECRET_VARIABLE = "CAREBOT_ACTION_SECRET"
OPEN_PATHS = frozenset({"/health", "/metrics"})
MIN_SECRET_LENGTH = 16


def caller_is_rasa(request: Request, secret: str) -> bool:
    scheme, _, token = str(request.headers.get("authorization") or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), secret)


def create_action_app(secret: str, actions: str = "actions") -> Sanic:
    """rasa-sdk's app for the `actions` package, refusing every caller without the secret."""
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"{SECRET_VARIABLE} needs {MIN_SECRET_LENGTH} characters or more")
    app = create_app(actions, cors_origins=None)
    metrics.install_action_timer()
    app.add_route(serve_metrics, "/metrics", methods=["GET"])

    @app.on_request
    async def only_rasa(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_PATHS or caller_is_rasa(request, secret):
            return None
        return response.json({"error": "this server answers only the Rasa server"}, 401)

    @app.exception(SanicException)
    async def client_error(request: Request, error: SanicException) -> HTTPResponse:
        """An unknown path or method is the caller's mistake (rasa-sdk answers 500)."""
        return response.json({"error": str(error)}, status=error.status_code)

    return app


async def serve_metrics(request: Request) -> HTTPResponse:
    """Prometheus's text format: counts and times, no personal data (docs/deploy.md)."""
    body, content_type = metrics.page()
    return response.raw(body, content_type=content_type)


# Packages the actions never use that their dependencies import if they are installed: spaCy's
# thinc probes for TensorFlow (Rasa's dependency), which costs the action server about 370 MiB and
# 14 s of start-up (docs/benchmarks.md). The actions run without it.
NOT_IN_THE_ACTION_SERVER = ("tensorflow",)


def keep_tensorflow_out() -> None:
    """Makes `import tensorflow` fail in this process (a None entry in sys.modules is Python's
    own way to say a module cannot be imported), so optional probes fall back."""
    for name in NOT_IN_THE_ACTION_SERVER:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(prog="bot.action_server", description=__doc__)
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--actions", default="actions")
    args = parser.parse_args()
    keep_tensorflow_out()
    os.umask(0o077)
    log_masking.install()
    log_format.install()  # CAREBOT_LOG_FORMAT=json: rasa-sdk's log lines as JSON
    utils.configure_colored_logging(os.environ.get("LOG_LEVEL", "INFO"))
    logging.getLogger(APPLICATION_ROOT_LOGGER_NAME).setLevel(logging.INFO)
    secret = os.environ.get(SECRET_VARIABLE, "")
    if not secret:
        raise SystemExit(f"bot.action_server: {SECRET_VARIABLE} is not set")
    app = create_action_app(secret, args.actions)
    host = os.environ.get("SANIC_HOST", "127.0.0.1")
    app.run(host, args.port, workers=utils.number_of_sanic_workers(), access_log=False)


if __name__ == "__main__":
    main()
