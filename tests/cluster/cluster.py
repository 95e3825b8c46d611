"""The production profile spread over hosts (network namespaces on this machine):

    db        PostgreSQL (the CRM and Rasa's conversations; the test's own cluster) and Redis
    lb        HAProxy (deploy/haproxy.cfg): customers -> rasa1/rasa2, Rasa's actions -> actions1/2
    rasa1/2   Rasa replicas, their action_endpoint through the balancer
    actions1/2  action servers
    ops       the log consumer, the care scheduler, the staff console
    (root)    the test, and its TCP proxy in front of the machine's RabbitMQ

Every process is started the way `carebot run` starts it (bot/runtime.py builds the commands),
only inside its host's namespace and bound to its host's address.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bot import runtime
from bot.settings import PROJECT_DIR, load_settings
from tests.cluster.netns import Host, Network, kill_group
from tests.cluster.services import (
    OwnPostgres,
    TcpProxy,
    free_port_on,
    start_redis,
    wait_for_port,
)

RASA_PORT, ACTION_PORT, CONSOLE_PORT = 5005, 5055, 5007
SCHEDULER_HEALTH_PORT = 5008  # the standby scheduler (scheduler2) on the same host: 5018
HAPROXY_CONFIG = PROJECT_DIR / "deploy" / "haproxy.cfg"
CHECKED_BACKENDS = ("rasa", "actions")
REST_SECRET = "cluster-rest-secret-0123456789"
API_TOKEN = "cluster-api-token"
RABBITMQ = ("127.0.0.1", 5672)
READY_S = 600.0  # two Rasa replicas loading their model at once on a shared 2-core machine


@dataclass
class Cluster:
    network: Network
    work: Path
    postgres: OwnPostgres
    proxy: TcpProxy
    env: dict[str, str]  # the settings every process shares, as environment variables
    model: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def host(self, name: str) -> Host:
        return self.network.hosts[name]

    @property
    def balancer_url(self) -> str:
        return f"http://{self.host('lb').address}:{RASA_PORT}"

    def rasa_url(self, name: str) -> str:
        return f"http://{self.host(name).address}:{RASA_PORT}"

    @property
    def crm_url(self) -> str:
        return self.env["CAREBOT_DATABASE_URL"]

    @property
    def tracker_url(self) -> str:
        return self.env["CAREBOT_TRACKER_URL"]

    def log(self, name: str) -> Path:
        return self.work / "log" / f"{name}.log"

    # --- the processes -------------------------------------------------------------------

    def _service(self, name: str) -> runtime.Service:
        """The service `name` as bot/runtime.py builds it, with this host's settings."""
        kind = name.rstrip("0123456789")
        env = dict(self.env)
        if kind == "rasa":
            env["CAREBOT_HOST"] = self.host(name).address
        elif kind == "actions":
            env["CAREBOT_ACTION_HOST"] = self.host(name).address
        elif kind == "console":
            env["CAREBOT_CONSOLE_HOST"] = self.host("ops").address
        elif kind == "scheduler":  # the leader and its standby share the ops host
            env["CAREBOT_SCHEDULER_HEALTH_PORT"] = str(
                SCHEDULER_HEALTH_PORT + 10 * int(name[9:] or 0)
            )
        settings = load_settings(env)
        if kind == "rasa":
            endpoints, credentials = (
                self.run_dir / "endpoints.yml",
                self.run_dir / "credentials.yml",
            )
            service = runtime.rasa_server(settings, self.model, endpoints, credentials)
        elif kind == "actions":
            service = runtime.action_server(settings)
        elif kind == "consumer":
            service = runtime.log_consumer(settings)
        elif kind == "scheduler":
            service = runtime.care_scheduler(settings)
        elif kind == "console":
            service = runtime.staff_console(settings)
        else:
            raise ValueError(name)
        service.env.update(env)
        return service

    @property
    def run_dir(self) -> Path:
        return load_settings(self.env).run_dir

    def start(self, name: str, host: str | None = None) -> subprocess.Popen[bytes]:
        """Starts `name` (rasa1, actions2, consumer, scheduler, scheduler2, console) in its host."""
        service = self._service(name)
        where = self.host(host or _home(name))
        process = where.start(service.command, service.env, self.log(name), cwd=PROJECT_DIR)
        self.processes[name] = process
        return process

    def wait_ready(self, name: str, timeout_s: float = READY_S) -> None:
        url = {
            "rasa": lambda: self.rasa_url(name) + "/",
            "actions": lambda: f"http://{self.host(name).address}:{ACTION_PORT}/health",
            "console": lambda: f"http://{self.host('ops').address}:{CONSOLE_PORT}/health",
        }[name.rstrip("0123456789")]()
        deadline = time.monotonic() + timeout_s
        while not answers(url):
            process = self.processes[name]
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{self.log(name).read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not ready in {timeout_s:.0f} s")
            time.sleep(0.5)

    def signal(self, name: str, sig: signal.Signals) -> None:
        """A signal to the process and its children (SIGSTOP freezes them, SIGCONT thaws)."""
        os.killpg(self.processes[name].pid, sig)

    def kill(self, name: str) -> None:
        """SIGKILL: the process and its children die at once, as in a crash."""
        process = self.processes[name]
        kill_group(process)
        process.wait(timeout=10)

    def balancer_sees(self, server: str, status: str) -> bool:
        """Whether HAProxy's health checks have `server` (rasa1...) in `status` (UP/DOWN)."""
        return self.balancer_state().get(server) == status

    def wait_for_balancer(self, servers: set[str], status: str, timeout_s: float = 30) -> float:
        """Waits until HAProxy's checks have put every one of `servers` in `status`; the wait."""
        started = time.monotonic()
        while not all(self.balancer_sees(server, status) for server in servers):
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"HAProxy: {self.balancer_state()}")
            time.sleep(0.2)
        return time.monotonic() - started

    def balancer_state(self) -> dict[str, str]:
        # a Unix socket is a file: the test reaches it from the root namespace
        with socket.socket(socket.AF_UNIX) as admin:
            admin.settimeout(5)
            admin.connect(str(self.work / "haproxy.sock"))
            admin.sendall(b"show stat\n")
            out = b"".join(iter(lambda: admin.recv(65536), b"")).decode()
        rows = [line.split(",") for line in out.splitlines() if line and not line.startswith("#")]
        # the checked servers; the web chat's backend tracks `rasa`'s
        return {row[1]: row[17] for row in rows if len(row) > 17 and row[0] in CHECKED_BACKENDS}


def _home(name: str) -> str:
    """The host a process runs on."""
    if name.startswith(("rasa", "actions")):
        return name
    return "ops"


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


HOSTS = ["db", "lb", "rasa1", "rasa2", "actions1", "actions2", "ops"]


def build(work: Path, model: Path) -> Cluster:
    """Builds the network and starts every service; the caller tears it down with `teardown`
    (also after a failure here: `build` cleans up what it made before it raises)."""
    network = Network()
    postgres: OwnPostgres | None = None
    proxy: TcpProxy | None = None
    try:
        network.create()
        for name in HOSTS:
            network.add_host(name)
        db = network.hosts["db"]
        postgres = OwnPostgres(db, str(network.subnet))
        postgres.init()
        postgres.start()
        crm_url = postgres.create_database("carebot")
        tracker_url = postgres.create_database("carebot_tracker")
        redis_url = start_redis(db, work / "log" / "redis.log")
        proxy = TcpProxy((network.gateway, free_port_on(network.gateway)), RABBITMQ)
        proxy.start()
        suffix = network.tag
        lb = network.hosts["lb"]
        env = {
            "CAREBOT_VAR_DIR": str(work / "var"),
            "CAREBOT_DATABASE_URL": crm_url,
            "CAREBOT_TRACKER_URL": tracker_url,
            "CAREBOT_REDIS_URL": redis_url,
            "CAREBOT_EVENT_BROKER_URL": f"amqp://guest:guest@{proxy.listen[0]}:{proxy.listen[1]}/",
            "CAREBOT_EVENT_QUEUE": f"carebot_cluster_{suffix}",
            "CAREBOT_EVENT_EXCHANGE": f"carebot-cluster-{suffix}",
            # Rasa reaches the action servers through the balancer
            "CAREBOT_ACTION_HOST": lb.address,
            "CAREBOT_ACTION_PORT": str(ACTION_PORT),
            "CAREBOT_RASA_PORT": str(RASA_PORT),
            "CAREBOT_CONSOLE_PORT": str(CONSOLE_PORT),
            # the scheduler and the console reach Rasa through the balancer too
            "CAREBOT_HOST": lb.address,
            "CAREBOT_API_TOKEN": API_TOKEN,
            "CAREBOT_REST_SECRET": REST_SECRET,
            "CAREBOT_ACTION_SECRET": secrets.token_urlsafe(24),
            "CAREBOT_WEBCHAT_SECRET": secrets.token_urlsafe(24),
            "CAREBOT_ACTION_TIMEOUT": "10",
            "CAREBOT_WARM_UP": "0",
            "CAREBOT_SCHEDULER_AUTOPLAN": "0",
            "CAREBOT_SCHEDULER_DISPATCH_EVERY": "1",
            "CAREBOT_SCHEDULER_LOCK_POLL": "1",
            # what a killed leader held is sent again by the next one after this long
            "CAREBOT_SCHEDULER_STALE_AFTER": "10",
            "CAREBOT_SCHEDULER_RECLAIM_EVERY": "2",
            # a conversation's lock left by a killed replica expires after this (Rasa: 60 s)
            "TICKET_LOCK_LIFETIME": "15",
            "RASA_TELEMETRY_ENABLED": "false",
        }
        env.pop("CAREBOT_DEMO", None)
        from bot.cli import prepare_database

        if not prepare_database(crm_url):
            raise RuntimeError("the CRM database could not be migrated")
        cluster = Cluster(network, work, postgres, proxy, env, model)
        runtime.write_runtime_config(load_settings(env), {**os.environ, **env})
        start_haproxy(cluster)
        for name in ("actions1", "actions2", "consumer", "rasa1", "rasa2", "scheduler", "console"):
            cluster.start(name)
        for name in ("actions1", "actions2", "rasa1", "rasa2", "console"):
            cluster.wait_ready(name)
        cluster.wait_for_balancer({"rasa1", "rasa2", "actions1", "actions2"}, "UP")
        return cluster
    except BaseException:
        _teardown(network, postgres, proxy)
        raise


def start_haproxy(cluster: Cluster) -> None:
    lb = cluster.host("lb")
    config = cluster.work / "haproxy-admin.cfg"
    # the test reads the balancer's view of its servers through an admin socket of its own
    config.write_text(
        f"global\n    stats socket {cluster.work / 'haproxy.sock'} mode 600 level admin\n"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "CAREBOT_LB_ADDRESS": lb.address,
        "CAREBOT_RASA_1": f"{cluster.host('rasa1').address}:{RASA_PORT}",
        "CAREBOT_RASA_2": f"{cluster.host('rasa2').address}:{RASA_PORT}",
        "CAREBOT_ACTIONS_1": f"{cluster.host('actions1').address}:{ACTION_PORT}",
        "CAREBOT_ACTIONS_2": f"{cluster.host('actions2').address}:{ACTION_PORT}",
    }
    command = ["haproxy", "-db", "-f", str(HAPROXY_CONFIG), "-f", str(config)]
    cluster.processes["haproxy"] = lb.start(command, env, cluster.log("haproxy"))
    wait_for_port(lb.address, RASA_PORT, 20)


def teardown(cluster: Cluster) -> None:
    _teardown(cluster.network, cluster.postgres, cluster.proxy)
    _delete_queue(cluster.env["CAREBOT_EVENT_QUEUE"], cluster.env["CAREBOT_EVENT_EXCHANGE"])


def _teardown(network: Network, postgres: OwnPostgres | None, proxy: TcpProxy | None) -> None:
    network.destroy()  # every process first, then the database they used
    if postgres is not None:
        postgres.remove()
    if proxy is not None:
        proxy.close()


def _delete_queue(queue: str, exchange: str) -> None:
    import asyncio

    import aio_pika

    async def delete() -> None:
        connection = await aio_pika.connect_robust("amqp://guest:guest@127.0.0.1:5672/")
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(queue)
            await channel.exchange_delete(exchange)

    asyncio.run(delete())
