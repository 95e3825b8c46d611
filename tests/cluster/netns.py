"""Hosts on one machine: network namespaces joined by veth pairs to a bridge of the test's own.

Each host is a namespace with one interface (`eth0`) on a private /24 and no route anywhere
else; the root namespace holds the bridge and the subnet's first address (`gateway`), where the
test itself and its TCP proxy in front of the machine's RabbitMQ live. Names carry a random
tag, so two runs never meet, and `Network.destroy()` removes every namespace, link and process
the run made (the namespaces' addresses vanish with them).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


def run(*command: str) -> str:
    """Runs an `ip` (or other) command; raises with its output when it fails."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def can_make_namespaces() -> str | None:
    """Why this process cannot build namespaces (None: it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns)"
    try:
        run("ip", "-V")
    except (OSError, RuntimeError) as error:
        return f"iproute2 is missing: {error}"
    return None


def free_subnet() -> ipaddress.IPv4Network:
    """A random 10.x.y.0/24 that no route of the machine covers."""
    routes = run("ip", "-4", "route", "show", "table", "all")
    taken = [
        ipaddress.ip_network(word, strict=False)
        for line in routes.splitlines()
        for word in line.split()[:2]
        if word[:1].isdigit() and "." in word
    ]
    for _ in range(100):
        subnet = ipaddress.ip_network(
            f"10.{secrets.randbelow(50) + 200}.{secrets.randbelow(256)}.0/24"
        )
        if not any(subnet.overlaps(other) for other in taken):
            return subnet
    raise RuntimeError("no free 10.x.y.0/24 subnet")


@dataclass
class Host:
    """One namespace: its name, its address, the processes the test started in it."""

    name: str
    namespace: str
    address: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def command(self, *argv: str) -> list[str]:
        """`argv` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.namespace, *argv]

    def start(
        self, argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """A process in this host, in its own process group, output appended to `log`."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            process = subprocess.Popen(
                self.command(*argv),
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process


def kill_group(process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGKILL) -> None:
    """Signals the process group `process` leads (it and every child it started)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def stop(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM to the group, SIGKILL after `grace_s`."""
    if process.poll() is None:
        kill_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            kill_group(process, signal.SIGKILL)
            process.wait(timeout=10)
    kill_group(process, signal.SIGKILL)  # children that outlived their parent


class Network:
    """A bridge in the root namespace and one namespace per host, all on a private /24."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)
        self.subnet = free_subnet()
        addresses = list(self.subnet.hosts())
        self.gateway = str(addresses[0])
        self._next = iter(addresses[9:])
        self.bridge = f"cb{self.tag}br"
        self.hosts: dict[str, Host] = {}
        self._log: IO[str] | None = None

    def create(self) -> None:
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")

    def add_host(self, name: str) -> Host:
        """A namespace `cb<tag>-<name>` with `eth0` on the bridge and loopback up."""
        host = Host(name, f"cb{self.tag}-{name}", str(next(self._next)))
        self.hosts[name] = host
        outside, inside = f"cb{self.tag}{len(self.hosts)}a", f"cb{self.tag}{len(self.hosts)}b"
        run("ip", "netns", "add", host.namespace)
        run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        run("ip", "link", "set", outside, "master", self.bridge)
        run("ip", "link", "set", outside, "up")
        run("ip", "link", "set", inside, "netns", host.namespace)
        inner = ("ip", "netns", "exec", host.namespace)
        run(*inner, "ip", "link", "set", inside, "name", "eth0")
        run(*inner, "ip", "addr", "add", f"{host.address}/24", "dev", "eth0")
        run(*inner, "ip", "link", "set", "eth0", "up")
        run(*inner, "ip", "link", "set", "lo", "up")
        return host

    def destroy(self) -> None:
        """Stops every process of every host, deletes the namespaces (their veths go with
        them) and the bridge. Safe to call twice and after a partial `create`."""
        for host in self.hosts.values():
            for process in host.processes:
                stop(process, grace_s=5)
            for pid in namespace_pids(host.namespace):  # e.g. a postmaster pg_ctl detached
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(RuntimeError):
                run("ip", "netns", "del", host.namespace)
        self.hosts.clear()
        with contextlib.suppress(RuntimeError):
            run("ip", "link", "del", self.bridge)


def namespace_pids(namespace: str) -> list[int]:
    """Processes still running in a namespace."""
    try:
        return [int(pid) for pid in run("ip", "netns", "pids", namespace).split()]
    except RuntimeError:
        return []
