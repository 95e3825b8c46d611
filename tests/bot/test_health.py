"""Health, readiness and Prometheus metrics of the processes without HTTP of their own
(bot/health.py, bot/metrics.py): the endpoint itself, and the real scheduler and log consumer
processes serving it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import metrics
from bot.health import HealthServer, database_check
from bot.settings import PROJECT_DIR
from crm_store import migrate
from tests.bot.care.scheduler_process import start_scheduler, stop, wait_until
from tests.bot.test_log_consumer import AMQP_URL, events, names, publish  # noqa: F401
from tests.integration.system import free_port


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, ""


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, parsed by prometheus_client's own parser."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_health_readiness_and_metrics_are_served(tmp_path: Path) -> None:
    broker = {"up": False}
    server = HealthServer(
        "127.0.0.1",
        0,
        {"database": lambda: True, "broker": lambda: broker["up"]},
        lambda: {"leader": True},
    ).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert get(base + "/health")[0] == 200
        status, body = get(base + "/ready")
        assert status == 503
        assert json.loads(body) == {
            "ready": False,
            "checks": {"database": True, "broker": False},
            "leader": True,
        }
        broker["up"] = True
        assert get(base + "/ready")[0] == 200
        metrics.TURNS.labels("rest").inc()
        status, page = get(base + "/metrics")
        assert status == 200 and samples(page)[("carebot_turns_total", (("channel", "rest"),))] >= 1
        assert get(base + "/nothing")[0] == 404
    finally:
        server.stop()


def test_a_check_that_raises_is_a_failed_check() -> None:
    def broken() -> bool:
        raise RuntimeError("no")

    ready, body = HealthServer("127.0.0.1", 0, {"database": broken}).readiness()
    assert not ready and body["checks"] == {"database": False}


def test_the_database_check_answers_for_a_database_that_is_there_and_one_that_is_not(
    tmp_path: Path,
) -> None:
    assert database_check(f"sqlite:///{tmp_path / 'crm.db'}")()
    assert not database_check(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")()


def test_fallbacks_and_handoffs_are_counted_from_new_events() -> None:
    fallbacks, handoffs = metrics.FALLBACKS._value.get(), metrics.HANDOFFS._value.get()
    metrics.count_new_event({"event": "user", "parse_data": {"intent": {"name": "nlu_fallback"}}})
    metrics.count_new_event({"event": "user", "parse_data": {"intent": {"name": "greet"}}})
    metrics.count_new_event({"event": "pause"})
    metrics.count_new_event({"event": "bot", "text": "hi"})
    assert metrics.FALLBACKS._value.get() == fallbacks + 1
    assert metrics.HANDOFFS._value.get() == handoffs + 1


async def test_each_message_the_agent_handles_is_counted_and_timed() -> None:
    from rasa.core.agent import Agent
    from rasa.core.channels.channel import UserMessage

    metrics.install_turn_timer()
    metrics.install_turn_timer()  # twice installs once
    counted = metrics.TURN_SECONDS.labels("wechat")._sum.get()
    turns = metrics.TURNS.labels("wechat")._value.get()
    await Agent().handle_message(UserMessage("你好", sender_id="s", input_channel="wechat"))
    assert metrics.TURNS.labels("wechat")._value.get() == turns + 1
    assert metrics.TURN_SECONDS.labels("wechat")._sum.get() > counted
    assert metrics.channel_label("made-up") == "other"


def test_the_outbox_is_read_at_most_once_per_refresh() -> None:
    reads: list[int] = []

    def count() -> dict[str, int]:
        reads.append(1)
        if len(reads) > 1:
            raise ConnectionError("database down")
        return {"pending": 3, "sent": 5}

    collector = metrics.OutboxCollector(count, refresh_s=3600)
    first = {s.labels["state"]: s.value for f in collector.collect() for s in f.samples}
    second = {s.labels["state"]: s.value for f in collector.collect() for s in f.samples}
    assert first == second == {"pending": 3, "sent": 5} and len(reads) == 1
    collector.refresh_s = 0
    kept = {s.labels["state"]: s.value for f in collector.collect() for s in f.samples}
    assert kept == {"pending": 3, "sent": 5} and len(reads) == 2  # the last answer, kept


@pytest.fixture
def crm_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    migrate.upgrade(url)
    return url


def test_the_scheduler_process_says_whether_it_leads(tmp_path: Path, crm_url: str) -> None:
    ports = [free_port(), free_port()]
    leader = start_scheduler(
        crm_url,
        "http://127.0.0.1:9",
        tmp_path / "a.log",
        CAREBOT_SCHEDULER_HEALTH_PORT=str(ports[0]),
    )
    standby: subprocess.Popen[bytes] | None = None
    try:
        first = f"http://127.0.0.1:{ports[0]}"
        wait_until(lambda: _leads(first) is True, 90, "the first scheduler to lead")
        standby = start_scheduler(
            crm_url,
            "http://127.0.0.1:9",
            tmp_path / "b.log",
            CAREBOT_SCHEDULER_HEALTH_PORT=str(ports[1]),
        )
        second = f"http://127.0.0.1:{ports[1]}"
        wait_until(lambda: _leads(second) is False, 90, "the second scheduler to be ready")
        page = samples(get(first + "/metrics")[1])
        assert page[("carebot_scheduler_leader", ())] == 1
        assert page[("carebot_outbox_messages", (("state", "pending"),))] == 0
        assert samples(get(second + "/metrics")[1])[("carebot_scheduler_leader", ())] == 0
        stop(leader)
        wait_until(lambda: _leads(second) is True, 60, "the standby to take over")
    finally:
        stop(leader)
        if standby is not None:
            stop(standby)


def _leads(base: str) -> bool | None:
    """The scheduler's `leader` while it is ready; None before."""
    status, body = get(base + "/ready")
    return bool(json.loads(body)["leader"]) if status == 200 else None


@pytest.fixture
def consumer(
    tmp_path: Path,
    crm_url: str,
    names: tuple[str, str],  # noqa: F811
) -> Iterator[tuple[str, tuple[str, str]]]:
    """`carebot log-consumer` as a process with its health endpoint; its base URL."""
    port = free_port()
    env = dict(
        os.environ,
        CAREBOT_VAR_DIR=str(tmp_path),
        CAREBOT_DATABASE_URL=crm_url,
        CAREBOT_EVENT_BROKER_URL=AMQP_URL,
        CAREBOT_EVENT_QUEUE=names[0],
        CAREBOT_EVENT_EXCHANGE=names[1],
        CAREBOT_CONSUMER_HEALTH_PORT=str(port),
        RASA_TELEMETRY_ENABLED="false",
    )
    with (tmp_path / "consumer.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "log-consumer"],
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}", names
    finally:
        stop(process)


def test_the_log_consumer_is_ready_with_the_broker_and_reports_what_it_wrote(
    consumer: tuple[str, tuple[str, str]],
) -> None:
    base, queue = consumer
    wait_until(lambda: get(base + "/ready")[0] == 200, 90, "the consumer to be ready")
    assert json.loads(get(base + "/ready")[1])["checks"] == {"database": True, "broker": True}
    sender = f"rest:{uuid.uuid4().hex[:8]}"
    asyncio.run(publish(queue, events(sender, 3)))

    def written() -> dict[Any, float]:
        return samples(get(base + "/metrics")[1])

    wait_until(lambda: written().get(("carebot_consumer_messages_total", ())) == 6, 60, "writes")
    page = written()
    assert page[("carebot_consumer_turns_total", ())] == 6
    assert ("carebot_consumer_queue_depth", ()) in page
    assert page[("carebot_consumer_lag_seconds", ())] >= 0
