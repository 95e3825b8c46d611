"""Helpers to start the real system (`carebot run`) and talk to it over HTTP."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

TOKEN = "integration-test-token"
REST_SECRET = "integration-rest-secret-0123456789"  # the REST channel's credential (a back end)
REST_AUTH = {"Authorization": f"Bearer {REST_SECRET}"}


_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, below the kernel's ephemeral range. A port from `bind(0)` is
    in that range, where an outgoing connection (to PostgreSQL, between the system's processes)
    can take it before the server it was meant for binds: the care scheduler's health port was
    once taken so, and the scheduler could not start."""
    lowest_ephemeral = _ephemeral_range()[0]
    for _ in range(1_000):
        port = random.randrange(lowest_ephemeral // 2, lowest_ephemeral)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def children_of(pid: int) -> set[int]:
    """Every live descendant of `pid`, read from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive_pids(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        status = Path(f"/proc/{pid}/status")
        try:
            if "State:\tZ" not in status.read_text():
                alive.add(pid)
        except OSError:
            continue
    return alive


@dataclass
class System:
    process: subprocess.Popen[bytes]
    rasa_url: str
    action_url: str
    var_dir: Path
    log: Path
    redis_url: str | None
    wechat_sim_url: str | None = None  # the WeChat simulator `carebot run` starts without an OA
    console_url: str | None = None  # the staff console (bot/console)
    shop_port: int | None = None  # a brand site on http://localhost:<port>, an allowed origin
    # /health, /ready, /metrics of the scheduler, the log consumer and Rasa (bot/health.py)
    health_urls: dict[str, str] = field(default_factory=dict)

    def post(
        self,
        path: str,
        body: Any,
        token: bool = False,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        url = self.rasa_url + path + (f"?token={TOKEN}" if token else "")
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        return _send(urllib.request.Request(url, data, sent))

    def get(self, path: str, token: bool = False) -> tuple[int, Any]:
        url = self.rasa_url + path + (f"?token={TOKEN}" if token else "")
        return _send(urllib.request.Request(url))

    def say(self, sender: str, message: str) -> list[dict[str, Any]]:
        """A message through the REST channel, as the brand's back end sends it (its credential;
        its sender `s` is the conversation `rest:s`)."""
        body = {"sender": sender, "message": message}
        status, replies = self.post("/webhooks/rest/webhook", body, headers=REST_AUTH)
        assert status == 200, replies
        return list(replies)


def _send(request: urllib.request.Request) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, _decode(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _decode(error.read())


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"carebot run exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail(f"{url} did not answer in {timeout_s} s:\n{log.read_text()[-3000:]}")
