"""A throwaway PostgreSQL server on 127.0.0.1 with a free port and a temporary data folder."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a PostgreSQL cluster, yield a SQLAlchemy URL of an empty database, stop and delete it."""
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

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True)

    try:
        run(_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        run(
            _pg_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start",
            "-o", f"-h 127.0.0.1 -p {port} -k {sock} -c fsync=off -c synchronous_commit=off "
                  f"-c full_page_writes=off -c max_connections=200",
        )
        run(_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c", "CREATE DATABASE cf_portal")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/cf_portal"
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"throwaway PostgreSQL failed: {exc.stderr or exc.stdout}") from exc
    finally:
        subprocess.run([*as_user, _pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        time.sleep(0.1)
        shutil.rmtree(base, ignore_errors=True)
