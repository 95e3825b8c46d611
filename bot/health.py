"""A small HTTP endpoint for the processes that serve no HTTP of their own: the care scheduler,
the log consumer, and the Rasa server's metrics (docs/deploy.md).

- `GET /health`: 200 while the process runs (liveness: restart it when this stops answering).
- `GET /ready`: 200 when every check passes, else 503 (readiness: a load balancer or an
  operator's probe); the JSON body names each check and what the process reports (the
  scheduler: whether it leads).
- `GET /metrics`: prometheus_client's default registry, Prometheus's text format.

It runs on its own daemon thread (the standard library's threading HTTP server), so a slow
check never holds up the process's real work, and binds the address it is given: loopback by
default, like every internal port here (docs/security.md).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.future import create_engine

from crm_store.db import make_engine, ping

log = logging.getLogger(__name__)

Check = Callable[[], bool]
Details = Callable[[], Mapping[str, Any]]
CONNECT_TIMEOUT_S = 3


@dataclass
class HealthServer:
    """Serves /health, /ready and /metrics on `host`:`port` (port 0: any free port)."""

    host: str
    port: int
    checks: Mapping[str, Check] = field(default_factory=dict)
    details: Details | None = None
    _server: ThreadingHTTPServer | None = None

    def start(self) -> HealthServer:
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(
            target=self._server.serve_forever, name="carebot-health", daemon=True
        ).start()
        log.info("health, readiness and metrics on http://%s:%d/", self.host, self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        results = {name: _safely(check) for name, check in self.checks.items()}
        body: dict[str, Any] = {"ready": all(results.values()), "checks": results}
        if self.details is not None:
            body |= dict(self.details())
        return body["ready"], body


def _safely(check: Check) -> bool:
    try:
        return bool(check())
    except Exception:
        return False


def _handler_for(server: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/health":
                self._send(200, b'{"status": "ok"}', "application/json")
            elif path == "/ready":
                ready, body = server.readiness()
                self._send(200 if ready else 503, json.dumps(body).encode(), "application/json")
            elif path == "/metrics":
                self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b'{"error": "not found"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Probes every few seconds would flood the log: not logged."""

    return Handler


def probe_engine(url: str) -> Engine:
    """An engine for readiness checks: one connection, a short connect timeout."""
    if make_url(url).get_backend_name() == "postgresql":
        return create_engine(
            url,
            future=True,
            pool_size=1,
            max_overflow=0,
            pool_pre_ping=True,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
        )
    return make_engine(url)


def database_check(url: str) -> Check:
    """True while the CRM database answers a trivial query."""
    engine = probe_engine(url)
    return lambda: ping(engine)


def serve_health(
    host: str,
    port: int | None,
    checks: Mapping[str, Check],
    details: Details | None = None,
) -> HealthServer | None:
    """Starts the endpoint when a port is configured (None: the process serves none)."""
    if port is None:
        return None
    return HealthServer(host, port, checks, details).start()
