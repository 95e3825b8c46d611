"""The services a cluster test owns, so that its faults hit nothing else: a PostgreSQL cluster
of its own (initdb and pg_ctl in a temporary directory), a Redis of its own, and a TCP proxy in
front of the machine's RabbitMQ that the test can cut (the machine's broker is never touched)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.future import create_engine

from tests.cluster.netns import Host, run

POSTGRES_USER = "postgres"  # PostgreSQL refuses to run as root


class OwnPostgres:
    """A PostgreSQL cluster in a temporary directory, listening on its host's address only."""

    def __init__(self, host: Host, subnet: str, port: int = 5432) -> None:
        self.host, self.subnet, self.port = host, subnet, port
        # pytest's tmp_path is root's alone; the postgres user needs a directory it owns
        self.directory = Path(tempfile.mkdtemp(prefix="carebot-cluster-pg-"))
        shutil.chown(self.directory, POSTGRES_USER, POSTGRES_USER)
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"

    def _as_postgres(self, *argv: str) -> list[str]:
        return ["runuser", "-u", POSTGRES_USER, "--", *argv]

    def init(self) -> None:
        run(
            *self._as_postgres(
                "initdb",
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                POSTGRES_USER,
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
        )
        with (self.data / "pg_hba.conf").open("a") as hba:  # the hosts of the test's network
            hba.write(f"host all all {self.subnet} trust\n")

    def start(self) -> None:
        options = " ".join(
            [
                f"-c listen_addresses={self.host.address}",
                f"-c port={self.port}",
                f"-c unix_socket_directories={self.directory}",
                "-c max_connections=300",
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            ]
        )
        run(
            *self.host.command(
                *self._as_postgres(
                    "pg_ctl",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                )
            )
        )

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(RuntimeError):
            run(*self._as_postgres("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop"))

    def url(self, database: str) -> str:
        return f"postgresql://{POSTGRES_USER}@{self.host.address}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        engine = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


def start_redis(host: Host, log: Path, port: int = 6379) -> str:
    """A Redis of the test's own on its host's address (nothing saved to disk)."""
    host.start(
        [
            "redis-server",
            "--bind",
            host.address,
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin"},
        log=log,
    )
    wait_for_port(host.address, port, 20)
    return f"redis://{host.address}:{port}/0"


def wait_for_port(address: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def free_port_on(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


class TcpProxy:
    """Listens on `listen` and relays every connection to `target`, in a thread of the test.

    `cut()` stops listening and closes every relayed connection, as if the broker behind it had
    gone away; `restore()` listens again on the same port.
    """

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.listen, self.target = listen, target
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.AbstractServer | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    def start(self) -> None:
        self.thread.start()
        self._call(self._listen())

    def cut(self) -> None:
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def close(self) -> None:
        if self.thread.is_alive():
            self._call(self._cut())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)

    def _call(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        self.server = await asyncio.start_server(self._relay, *self.listen, reuse_address=True)

    async def _cut(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self.writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        self.writers -= {writer, up_writer}

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()
