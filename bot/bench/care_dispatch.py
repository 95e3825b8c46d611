"""The care dispatcher's rate: against a stub Rasa (the dispatcher's own cost) and, when a real
system runs, against the real Rasa server (what a customer-facing send costs).

`StubRasa` answers `POST /conversations/{id}/trigger_intent` like Rasa does and records each
trigger; the crash tests use it too. It keeps the receiving side's promise of the contract: a
care_message_id is delivered once per conversation however often it is triggered.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as dt_time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bot.care.dispatch import DispatchConfig, Dispatcher
from bot.care.notify import Route
from crm_store.clock import Clock, fixed


@dataclass(frozen=True)
class Trigger:
    conversation_id: str
    output_channel: str
    intent: str
    entities: dict[str, Any]


@dataclass
class StubRasa:
    """A loopback HTTP server standing in for Rasa's trigger_intent endpoint."""

    status: int = 200
    triggers: list[Trigger] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def delivered(self) -> list[int]:
        """The care_message_ids a customer saw, in order: a repeated trigger shows nothing."""
        seen: list[int] = []
        with self.lock:
            for trigger in self.triggers:
                message_id = int(trigger.entities.get("care_message_id", -1))
                if message_id not in seen:
                    seen.append(message_id)
        return seen

    def triggered_ids(self) -> list[int]:
        with self.lock:
            return [int(t.entities.get("care_message_id", -1)) for t in self.triggers]

    def __enter__(self) -> StubRasa:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # else each answer waits for a delayed ACK

            def do_POST(self) -> None:
                stub._record(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def _record(self, request: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlparse(request.path)
        parts = parsed.path.strip("/").split("/")
        length = int(request.headers.get("Content-Length", 0))
        body = json.loads(request.rfile.read(length) or b"{}")
        query = urllib.parse.parse_qs(parsed.query)
        if self.status == 200 and len(parts) == 3 and parts[2] == "trigger_intent":
            trigger = Trigger(
                urllib.parse.unquote(parts[1]),
                query.get("output_channel", [""])[0],
                body.get("name", ""),
                dict(body.get("entities") or {}),
            )
            with self.lock:
                self.triggers.append(trigger)
        answer = json.dumps({"tracker": {}, "messages": []} if self.status == 200 else {})
        request.send_response(self.status)
        request.send_header("Content-Type", "application/json")
        request.end_headers()
        request.wfile.write(answer.encode())


@dataclass(frozen=True)
class DispatchRate:
    target: str
    messages: int
    seconds: float
    workers: int = 1
    replicas: int = 1
    sent: int = 0  # of the messages handled (the others: skipped, failed)

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def seed_outbox(url: str, messages: int) -> None:
    """`messages` due care-tip rows for as many demo customers, on a fresh database."""
    from crm_store import demo, migrate
    from crm_store.campaigns.planning import ensure_campaigns
    from crm_store.db import make_engine, session_scope
    from crm_store.outbox import enqueue_care_message

    migrate.upgrade(url)
    engine = make_engine(url)
    demo.ensure_demo_data(engine, customers=max(2000, messages))
    with session_scope(engine) as session:
        ensure_campaigns(session, enabled=True)  # a registered campaign: its spec composes
        for customer_id in range(1, messages + 1):
            enqueue_care_message(
                session,
                customer_id=customer_id,
                campaign_key="care_tip",
                period="bench",
                channel="wechat",
            )
    engine.dispose()


def daytime() -> Clock:
    """Tomorrow 10:00 in the business zone, when the demo customers are outside their quiet
    hours: a dispatch measured at night would only defer."""
    from crm_store.clock import BUSINESS_TZ

    tomorrow = datetime.now(BUSINESS_TZ).date() + timedelta(days=1)
    return fixed(datetime.combine(tomorrow, dt_time(10, 0), BUSINESS_TZ))


def measure_stub(
    messages: int = 2000, rate_per_s: float = 10_000.0, workers: int = 1
) -> DispatchRate:
    """Claim, check the contact policy, route (fixed), trigger over HTTP, mark: the
    dispatcher's own throughput with `workers` threads. Every handled row counts (a few demo
    customers have no consent for care messages: skipped, which costs the same checks)."""
    from crm_store.db import make_engine

    with tempfile.TemporaryDirectory() as folder, StubRasa() as stub:
        url = f"sqlite:///{Path(folder) / 'crm.db'}"
        seed_outbox(url, messages)
        engine = make_engine(url)
        config = DispatchConfig(
            rasa_url=stub.url, api_token="bench", rate_per_s=rate_per_s, workers=workers
        )
        dispatcher = Dispatcher(
            engine,
            config,
            clock=daytime(),
            router=lambda _engine, cid, _clock: Route("wechat", f"o_{cid}"),
        )
        started = time.perf_counter()
        report = dispatcher.drain()
        elapsed = time.perf_counter() - started
        engine.dispose()
    target = "stub Rasa (HTTP, SQLite outbox)"
    return DispatchRate(target, report.handled, elapsed, workers, sent=report.sent)


# A million members' ordinary day (docs/benchmarks.md, "CRM at scale": the seeding day) and a
# festival day; rows are due from 10:00 in the customer's zone, and the demo's quiet hours
# start at 22:00: twelve hours to send them, eight to be done by the end of the working day.
PLANNED_DAYS = (("ordinary day", 832_363), ("festival day (New Year)", 1_305_221))
SEND_WINDOWS_H = (12, 8)


def needed_rates() -> list[str]:
    """The rate each planned day needs to go out within each window, as table rows."""
    return [
        f"| {day} | {rows:,} | {hours} h | {rows / (hours * 3600):.1f} |"
        for day, rows in PLANNED_DAYS
        for hours in SEND_WINDOWS_H
    ]


def section(results: list[DispatchRate], rate_limit: float, workers: int) -> list[str]:
    rows = [
        f"| {r.target} | {r.replicas} | {r.workers} | {r.messages} | {r.seconds:.1f} "
        f"| {r.per_second:.1f} |"
        for r in results
    ]
    return [
        "## Care dispatch rate",
        "",
        "Claim, route, `trigger_intent`, mark sent (bot/care/dispatch.py), by 1 worker and by "
        "several sharing one rate, with the rate limit lifted; in production "
        f"`CAREBOT_DISPATCH_RATE` caps it (default {rate_limit:g}/s, "
        f"`CAREBOT_DISPATCH_WORKERS` default {workers}). Several Rasa replicas are triggered in "
        "turn (`CAREBOT_DISPATCH_RASA_URLS`), sharing the tracker store and a Redis lock store.",
        "",
        "| target | Rasa replicas | workers | messages handled | seconds | messages/s |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        "| planned day (1,000,000 members) | outbox rows | sent within | messages/s needed |",
        "| --- | --- | --- | --- |",
        *needed_rates(),
        "",
    ]


def measure_rasa(
    database_url: str,
    rasa_urls: tuple[str, ...],
    token: str,
    logins: list[str],
    workers: int = 1,
) -> DispatchRate:
    """Care tips to the bench members' web conversations through the real Rasa and action
    server (composed by the care action, stored in the web chat mailbox: nobody is connected),
    by `workers` threads, triggering the replicas `rasa_urls` in turn."""
    from crm_store.campaigns.planning import ensure_campaigns
    from crm_store.db import make_engine, session_scope
    from crm_store.outbox import enqueue_care_message

    engine = make_engine(database_url)
    period = f"bench-{time.time():.3f}"[:32]
    with session_scope(engine) as session:
        ensure_campaigns(session, enabled=True)  # switched on: its rows may be dispatched
        for number in range(1, len(logins) + 1):
            enqueue_care_message(
                session, customer_id=number, campaign_key="care_tip", period=period, channel="web"
            )
    config = DispatchConfig(
        rasa_url=rasa_urls[0],
        api_token=token,
        rate_per_s=10_000.0,
        workers=workers,
        rasa_urls=rasa_urls,
    )
    dispatcher = Dispatcher(
        engine,
        config,
        clock=daytime(),
        router=lambda _engine, cid, _clock: Route("web", logins[cid - 1]),
    )
    started = time.perf_counter()
    report = dispatcher.drain()
    elapsed = time.perf_counter() - started
    engine.dispose()
    target = "real Rasa + action server (web chat)"
    return DispatchRate(target, report.handled, elapsed, workers, len(rasa_urls), report.sent)
