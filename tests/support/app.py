"""The app's production build, run from a copy of the checkout on a free port (end-to-end tests and
browser benchmarks).

`reflex run --env prod` compiles into .web/ and bakes its port into the frontend, so building in the
checkout itself would break any other app (`make run`), test run or benchmark served from that .web/.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.postgres import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
PYTHON = sys.executable
# Debian's chromium, headless, kept off the network (it would try to reach Google's services).
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# Lines in the app's log that mean something went wrong on the server: a traceback, or any line logged at ERROR
# or CRITICAL (the app's loggers write their level, cf_portal/logging_setup.py; uvicorn/granian write "ERROR:").
SERVER_ERROR_MARKERS = ("Traceback (most recent call last)", "Exception in ", " ERROR ", "ERROR:", "[ERROR]",
                        " CRITICAL ", "CRITICAL:")


# Left out of the copy the app runs from: history, the tool chains (used in place), caches, local data and
# the old frontend build. .web/node_modules is copied (about 120 MB, a few seconds) so no install is needed.
NOT_COPIED = {".git", ".venv", ".tools", ".cache", "data", "test-results", ".pytest_cache", ".hypothesis",
              ".states"}


def copy_checkout(dest: Path) -> Path:
    """A copy of the checkout (with its uncommitted changes) to build and run the app from."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {"__pycache__"} & set(names)
        if Path(folder) == ROOT:
            skipped |= {n for n in names if n in NOT_COPIED or n.endswith(".egg-info")}
        elif Path(folder) == ROOT / ".web":
            skipped.add("build")
        return skipped

    shutil.copytree(ROOT, dest, symlinks=True, ignore=ignore)
    return dest


@contextmanager
def running_app(tmp: Path, *, database_url: str | None = None, prepare: Callable[[str], None] | None = None,
                extra_env: dict[str, str] | None = None) -> Iterator[tuple[str, Path, Path, dict[str, str]]]:
    """The production build on a free port, on a migrated and seeded database (a fresh SQLite file
    in `tmp` unless `database_url` is given), run from a copy of the checkout.

    `prepare(database_url)` runs after the seed, before the app starts (to load benchmark data);
    `extra_env` adds settings (the Stripe ones, say).
    Yields (url, app folder, log path, environment); the app's process group is ended on the way out.
    """
    app_dir = copy_checkout(tmp / "app")
    port = free_port()
    env = {
        **os.environ,
        "REFLEX_DB_URL": database_url or f"sqlite:///{tmp / 'portal.db'}",
        "CF_DEMO_MODE": "true",
        "CF_PORT": str(port),
        "REFLEX_TELEMETRY_ENABLED": "false",
        "REFLEX_CHECK_LATEST_VERSION": "false",
        "PATH": f"{ROOT / '.tools' / 'bin'}:{Path(PYTHON).parent}:{os.environ.get('PATH', '')}",
        **(extra_env or {}),
    }
    # cwd comes first on sys.path, so `cf_portal` is imported from the copy, not from the editable install.
    for step in ("migrate", "seed"):
        done = subprocess.run([PYTHON, "-m", "cf_portal.cli", step], cwd=app_dir, env=env, capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise RuntimeError(f"`cf_portal.cli {step}` failed:\n{done.stderr[-2000:]}")
    if prepare is not None:
        prepare(env["REFLEX_DB_URL"])
    log_path = tmp / "app.log"
    proc = serve(app_dir, env, port, log_path)
    try:
        yield f"http://127.0.0.1:{port}", app_dir, log_path, env
    finally:
        stop(proc)


def serve(app_dir: Path, env: dict[str, str], port: int, log_path: Path, *options: str) -> subprocess.Popen:
    """`python -m cf_portal.serve` run from `app_dir` on 127.0.0.1:`port` in a process group of its own, its
    output in `log_path` (a new file); returns once it serves. `options`: `--no-build` for a second process
    serving the build of the first (tests/topology/)."""
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [PYTHON, "-m", "cf_portal.serve", "--port", str(port), "--host", "127.0.0.1", *options],
            cwd=app_dir, env={**env, "CF_PORT": str(port)}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_up(proc, f"http://127.0.0.1:{port}", log_path)
    except BaseException:
        stop(proc)
        raise
    return proc


def session_token(database_url: str, email: str) -> str:
    """A new session of the member `email`, as signing in would make (for tests and benchmarks about other
    things)."""
    from datetime import UTC, datetime

    from sqlmodel import select

    from cf_portal.db import make_engine, session_scope
    from cf_portal.models import User
    from cf_portal.services.auth import start_session

    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            user_id = session.exec(select(User.id).where(User.email == email)).one()
            return start_session(session, user_id=user_id, remember=False, now=datetime.now(UTC)).token
    finally:
        engine.dispose()


def stop(proc: subprocess.Popen) -> None:
    """End the app's process group (reflex, granian and their workers): politely, then by force."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass  # already gone (e.g. it exited while starting)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def wait_until_up(proc: subprocess.Popen, url: str, log_path: Path, timeout_s: float = 300) -> None:
    """Until /ping answers and the log says "App running" (the first start also builds the frontend)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited while starting:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                if response.status == 200 and "App running" in log_path.read_text():
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the app did not start within {timeout_s:.0f} s:\n{log_path.read_text()[-3000:]}")


