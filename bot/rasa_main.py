"""`python -m bot.rasa_main ARGS`: Rasa's own command line, with our plug-ins installed and the
HTTP API token read from the environment instead of the command line.

- The token (`CAREBOT_API_TOKEN`) is never an argument of the process, so `ps` does not show it,
  and a token that begins with `-` cannot be read as an option (it is passed as `--auth-token=…`
  inside the process).
- The apology for a failed custom action (bot/action_failure.py) is installed in every Rasa
  process, whichever channels it loads (`rasa shell` loads none of ours).
- Files Rasa writes (tracker database, logs) are created owner-only.
- Personal data is masked in every log line (bot/log_masking.py).
- A proactive message WeChat refused for a reason the care scheduler handles is a WARNING, not
  an ERROR, in Rasa's HTTP API log (bot/delivery_log.py).
- Stored events find their classes in a table, not a class-tree walk (bot/event_lookup.py).
- A serving process describes each conversation's dialogue states once, not again for every
  prediction (bot/past_states.py).
- Customer turns are counted and timed (bot/metrics.py); `rasa run` serves them on
  CAREBOT_RASA_METRICS_PORT (bot/health.py), a port of its own on CAREBOT_HEALTH_HOST
  (loopback by default), never on the customer-facing Rasa port.
"""

from __future__ import annotations

import logging
import os
import sys

from bot import (
    action_failure,
    action_results,
    delivery_log,
    event_lookup,
    log_format,
    log_masking,
    metrics,
    past_states,
)
from bot.health import serve_health
from bot.settings import rasa_metrics_endpoint

TOKEN_VARIABLE = "CAREBOT_API_TOKEN"
SERVING_COMMANDS = ("run", "shell")


def rasa_arguments(argv: list[str], env: dict[str, str] | os._Environ[str]) -> list[str]:
    """Rasa's arguments: `argv` with the API token from `env` for the commands that serve."""
    token = env.get(TOKEN_VARIABLE)
    if token and argv and argv[0] in SERVING_COMMANDS and "--enable-api" in argv:
        return [*argv, f"--auth-token={token}"]
    return list(argv)


def serve_metrics() -> None:
    """The metrics endpoint, if configured; a taken port costs the metrics, never the server
    that customers talk to (its health is Rasa's own `/`)."""
    host, port = rasa_metrics_endpoint(os.environ)
    try:
        serve_health(host, port, {})
    except OSError as error:
        logging.getLogger(__name__).error("Rasa metrics not served on %s:%s: %s", host, port, error)


def main() -> None:
    os.umask(0o077)
    log_masking.install()
    log_format.install()  # CAREBOT_LOG_FORMAT=json: Rasa's own log lines as JSON
    action_failure.install()
    action_results.install()
    delivery_log.install()
    event_lookup.install()
    metrics.install_turn_timer()
    if sys.argv[1:2] and sys.argv[1] in SERVING_COMMANDS:
        past_states.install()
    if sys.argv[1:2] == ["run"]:
        serve_metrics()
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *rasa_arguments(sys.argv[1:], os.environ)]
    rasa_main()


if __name__ == "__main__":
    main()
