"""A throwaway PostgreSQL server on 127.0.0.1 with a free port and a temporary data folder."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if not path:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (make test installs Debian's postgresql)")
    return path


@dataclass(frozen=True)
class PostgresCluster:
    """A running throwaway cluster: `url` names its empty `cf_portal` database; `restart()` stops and starts it
    on the same port and data (every open connection is cut, as when the server is restarted in production)."""

    url: str
    restart: Callable[[], None]


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a PostgreSQL cluster, yield a SQLAlchemy URL of an empty database, stop and delete it."""
    with postgres_cluster() as cluster:
        yield cluster.url


@contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """Start a PostgreSQL cluster, yield it (its URL, a restart), stop and delete it."""
    base = Path(tempfile.mkdtemp(prefix="cf-portal-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    log = base / "server.log"
    options = (f"-h 127.0.0.1 -p {port} -k {sock} -c fsync=off -c synchronous_commit=off "
               f"-c full_page_writes=off -c max_connections=200")

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True)

    def restart() -> None:
        run(_pg_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-m", "fast", "restart",
            "-o", options)

    try:
        run(_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        run(_pg_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start", "-o", options)
        run(_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c", "CREATE DATABASE cf_portal")
        yield PostgresCluster(f"postgresql+psycopg://postgres@127.0.0.1:{port}/cf_portal", restart)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"throwaway PostgreSQL failed: {exc.stderr or exc.stdout}") from exc
    finally:
        subprocess.run([*as_user, _pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        time.sleep(0.1)
        shutil.rmtree(base, ignore_errors=True)
