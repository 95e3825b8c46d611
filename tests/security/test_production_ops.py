"""Operations of the production profile (`carebot run` without demo mode, docs/deploy.md): every
process answers its health and readiness URL and serves Prometheus metrics, and a child killed
with SIGKILL comes back by itself."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

from crm_store.db import make_engine
from crm_store.interactions import conversation_id_for
from tests.bot.test_health import get, samples
from tests.integration.system import REST_AUTH, System, alive_pids, children_of
from tests.security.test_production_profile import wait_for_turns
from tests.security.test_ways_in import WEBHOOK


def test_every_process_is_ready_and_the_scheduler_leads(production: System) -> None:
    scheduler = json.loads(get(production.health_urls["scheduler"] + "/ready")[1])
    assert scheduler == {"ready": True, "checks": {"database": True}, "leader": True}
    consumer = json.loads(get(production.health_urls["log-consumer"] + "/ready")[1])
    assert consumer["ready"] and consumer["checks"] == {"database": True, "broker": True}
    assert get(production.health_urls["rasa"] + "/health")[0] == 200
    assert get(production.action_url + "/health")[0] == 200
    assert get(f"{production.console_url}/health")[0] == 200


def test_every_process_serves_prometheus_metrics(production: System) -> None:
    """Rasa, the scheduler and the consumer on their health ports; the action server and the
    console on their own ports, without a credential (counts and times, no personal data)."""
    pages = [production.health_urls[name] for name in ("rasa", "scheduler", "log-consumer")]
    pages += [production.action_url, str(production.console_url)]
    for base in pages:
        status, page = get(base + "/metrics")
        assert status == 200 and ("process_cpu_seconds_total", ()) in samples(page), base


def test_a_turn_shows_in_the_metrics_of_rasa_and_of_the_consumer(production: System) -> None:
    before = samples(get(production.health_urls["rasa"] + "/metrics")[1])
    rest_turns = ("carebot_turns_total", (("channel", "rest"),))
    status, _ = production.post(
        WEBHOOK, {"sender": f"u-{uuid.uuid4().hex}", "message": "你好"}, headers=REST_AUTH
    )
    assert status == 200
    after = samples(get(production.health_urls["rasa"] + "/metrics")[1])
    assert after[rest_turns] == before.get(rest_turns, 0) + 1
    timed = ("carebot_turn_seconds_count", (("channel", "rest"),))
    assert after[timed] == before.get(timed, 0) + 1
    assert ("carebot_fallbacks_total", ()) in after and ("carebot_handoffs_total", ()) in after
    scheduler = samples(get(production.health_urls["scheduler"] + "/metrics")[1])
    assert scheduler[("carebot_scheduler_leader", ())] == 1
    assert ("carebot_outbox_messages", (("state", "pending"),)) in scheduler
    deadline = time.monotonic() + 30
    consumer: dict = {}
    while time.monotonic() < deadline:
        consumer = samples(get(production.health_urls["log-consumer"] + "/metrics")[1])
        if consumer.get(("carebot_consumer_turns_total", ()), 0) >= 2:
            break
        time.sleep(0.5)
    assert consumer[("carebot_consumer_turns_total", ())] >= 2
    assert ("carebot_consumer_queue_depth", ()) in consumer


def test_a_killed_log_consumer_comes_back_and_turns_still_arrive(
    production: System, postgres_crm_url: str
) -> None:
    first = consumer_pid(production)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        again = consumer_pid(production, missing_ok=True)
        if again and again != first and get_ready(production):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the log consumer did not come back:\n{tail(production.log)}")
    assert "log-consumer exited with code -9" in production.log.read_text()
    sender = f"u-{uuid.uuid4().hex}"
    status, _ = production.post(WEBHOOK, {"sender": sender, "message": "你好"}, headers=REST_AUTH)
    assert status == 200
    engine = make_engine(postgres_crm_url)
    try:
        logged = wait_for_turns(engine, f"rest:{sender}", at_least=2)
    finally:
        engine.dispose()
    assert logged[0] == ("customer", "你好"), conversation_id_for(f"rest:{sender}")


def get_ready(production: System) -> bool:
    return get(production.health_urls["log-consumer"] + "/ready")[0] == 200


def consumer_pid(production: System, missing_ok: bool = False) -> int:
    for pid in alive_pids(children_of(production.process.pid)):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"log-consumer" in cmdline:
            return pid
    if missing_ok:
        return 0
    raise AssertionError("no log consumer among the children of carebot run")


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]
