"""A throwaway Redis (Debian's redis-server) on 127.0.0.1 with a free port and a temporary folder, which a test
can stop and start again on the same port and data, as an operator restarting Redis would."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.postgres import free_port

# Reflex waits for state locks through keyspace notifications and turns them on once per process: set in the
# server's configuration they survive a restart (deploy/compose.yaml does the same).
NOTIFY_KEYSPACE_EVENTS = "K$sgxe"


class RedisServer:
    def __init__(self, folder: Path, notify_keyspace_events: str = NOTIFY_KEYSPACE_EVENTS) -> None:
        self.folder = folder
        self.notify_keyspace_events = notify_keyspace_events  # "" to start without them, as Redis does by default
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        # A snapshot is written when the server stops, so a restart keeps the tabs' state (Debian's default
        # configuration saves too); nothing is written while it runs.
        self._proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder),
             "--save", "3600 1", "--appendonly", "no",
             *(["--notify-keyspace-events", self.notify_keyspace_events] if self.notify_keyspace_events else []),
             "--logfile", str(self.folder / "redis.log"), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while not self.answers():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop as `systemctl stop` does (SIGTERM: the snapshot is saved, then it exits)."""
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)
        self._proc = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def log(self) -> str:
        path = self.folder / "redis.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@contextmanager
def throwaway_redis(folder: Path) -> Iterator[RedisServer]:
    folder.mkdir(parents=True, exist_ok=True)
    server = RedisServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
