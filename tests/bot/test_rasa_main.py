from __future__ import annotations

import pytest
from rasa.__main__ import create_argument_parser

from bot.rasa_main import rasa_arguments


def test_a_token_that_looks_like_an_option_still_reaches_rasa() -> None:
    """About one random token in 64 begins with "-"; it must not be read as an option."""
    argv = ["run", "--enable-api", "--port", "5005"]
    arguments = rasa_arguments(argv, {"CAREBOT_API_TOKEN": "-Xy_starts-with-a-dash"})
    assert create_argument_parser().parse_args(arguments).auth_token == "-Xy_starts-with-a-dash"


def test_the_token_is_given_only_to_a_server_with_the_api() -> None:
    env = {"CAREBOT_API_TOKEN": "secret-token"}
    assert rasa_arguments(["run"], env) == ["run"]
    assert rasa_arguments(["train", "--enable-api"], env) == ["train", "--enable-api"]
    assert rasa_arguments(["run", "--enable-api"], {}) == ["run", "--enable-api"]


def test_a_taken_metrics_port_costs_the_metrics_not_the_server(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    from bot.rasa_main import serve_metrics

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("CAREBOT_RASA_METRICS_PORT", str(taken.getsockname()[1]))
        serve_metrics()  # no exception: Rasa starts anyway
    assert "Rasa metrics not served" in caplog.text
