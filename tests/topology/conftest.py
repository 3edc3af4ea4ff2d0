"""The production topology, started for real: a PostgreSQL cluster, Redis, two app processes (`python -m
cf_portal.serve`, the first with two Granian workers and the second, serving the first one's build, with one) and
nginx in front with HTTPS balancing between them (deploy/nginx/), driven through nginx by headless Chromium.

2 + 1 workers: the first process keeps the deployment the README describes (two workers, so a killed worker has
a live sibling in its own process), the second adds a process to fail over to for the price of one more worker
starting (this machine has 2 cores shared with other work; a fourth worker would only cost start-up time).

It runs in the PostgreSQL pass of `make test` only (`DB=postgres`): several workers need a server database, and
one run is enough. On the SQLite pass its tests are deselected (`only_on`, tests/conftest.py).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa
from playwright.sync_api import Page
from sqlmodel import select

from tests.support.app import SERVER_ERROR_MARKERS, running_app, serve, stop
from tests.support.nginx import insecure_context, running_nginx
from tests.support.postgres import PostgresCluster, free_port, postgres_cluster
from tests.support.redis_server import RedisServer, throwaway_redis

WORKERS = (2, 1)  # of the first app process (it builds the frontend) and of the second (--no-build)


@dataclass
class AppProcess:
    """One `python -m cf_portal.serve` on 127.0.0.1:`port` with its own workers."""
    port: int
    workers: int
    logs: list[Path]  # one a start, the newest last
    proc: subprocess.Popen | None = None  # None while running_app's own process is the one serving


@dataclass
class Topology:
    url: str  # the public address: nginx, HTTPS
    http_url: str  # nginx's plain-HTTP port, which only redirects
    apps: list[AppProcess]
    app_dir: Path
    env: dict[str, str]
    redis: RedisServer
    postgres: PostgresCluster
    nginx_dir: Path
    _checked_to: dict[Path, int] = field(default_factory=dict)

    # --- the apps' logs ------------------------------------------------------------------------------------
    def new_log(self) -> str:
        """What the app processes logged since the last call."""
        fresh = []
        for log_path in (path for app in self.apps for path in app.logs):
            text = log_path.read_text(errors="replace")
            fresh.append(text[self._checked_to.get(log_path, 0):])
            self._checked_to[log_path] = len(text)
        return "".join(fresh)

    def new_server_errors(self, *, expected: tuple[str, ...] = ()) -> list[str]:
        return [line for line in self.new_log().splitlines()
                if any(m in line for m in SERVER_ERROR_MARKERS) and not any(e in line for e in expected)]

    def answered_by(self, offset: int) -> list[tuple[str, int]]:
        """(request, the app port that answered it) of each request nginx logged from byte `offset` of its access
        log on (nginx logs a request once it is done: a websocket when it closes)."""
        answered = []
        for line in (self.nginx_dir / "access.log").read_text(errors="replace")[offset:].splitlines():
            request, _status, *tried = re.split(r"[ ,]+", line.strip())
            if tried and tried[-1].startswith("127.0.0.1:"):  # the last server tried is the one that answered
                answered.append((request, int(tried[-1].rsplit(":", 1)[1])))
        return answered

    def access_log_size(self) -> int:
        return (self.nginx_dir / "access.log").stat().st_size

    # --- the database ----------------------------------------------------------------------------------------
    def value(self, sql: str, **params: object) -> int:
        engine = sa.create_engine(self.postgres.url)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(sql), params).scalar_one()
        finally:
            engine.dispose()

    def purchases_named(self, name: str) -> tuple[int, int, int]:
        """(licenses, invoice lines, charges at the payment provider) of the license `name`."""
        return (
            self.value("SELECT count(*) FROM license WHERE reference_name = :n", n=name),
            self.value("SELECT count(*) FROM invoice_line WHERE description LIKE :p", p=f"%{name}%"),
            self.value("SELECT count(*) FROM sandbox_invoice i JOIN sandbox_subscription s "
                       "ON s.id = i.subscription_id WHERE s.description = :n", n=name),
        )

    def cli(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "cf_portal.cli", *args], cwd=self.app_dir, env=self.env,
                       capture_output=True, text=True, check=True)

    def sign_in(self, page: Page) -> None:
        """Give the browser a session cookie of the demo owner (signing in has tests of its own)."""
        from cf_portal.db import make_engine, session_scope
        from cf_portal.middleware import SESSION_COOKIE
        from cf_portal.models import User
        from cf_portal.services.auth import start_session
        from cf_portal.services.seed import DEMO_OWNER_EMAIL

        engine = make_engine(self.postgres.url)
        with session_scope(engine) as session:
            user_id = session.exec(select(User.id).where(User.email == DEMO_OWNER_EMAIL)).one()
            token = start_session(session, user_id=user_id, remember=False, now=datetime.now(UTC)).token
        engine.dispose()
        page.context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": self.url, "secure": True,
                                   "sameSite": "Strict", "httpOnly": True}])

    # --- the processes -------------------------------------------------------------------------------------
    def supervisor(self, app: AppProcess) -> psutil.Process:
        """Granian's main process of `app`: the one this test run started with `--port <its port>`."""
        for child in psutil.Process().children():
            try:
                command = child.cmdline()
                if (child.status() != psutil.STATUS_ZOMBIE and Path(child.cwd()) == self.app_dir
                        and command[command.index("--port") + 1] == str(app.port)):
                    return child
            except (psutil.Error, ValueError, IndexError):
                continue
        raise AssertionError(f"the app process on port {app.port} is gone")

    def worker_pids(self, app: AppProcess | None = None) -> set[int]:
        """The live backend workers of `app` (of every app process if None): forked from its supervisor, so
        they share its command line."""
        pids = set()
        for one in [app] if app else self.apps:
            supervisor = self.supervisor(one)
            command = supervisor.cmdline()
            for child in supervisor.children():
                try:
                    if child.cmdline() == command and child.status() != psutil.STATUS_ZOMBIE:
                        pids.add(child.pid)
                except psutil.Error:
                    continue
        return pids

    def websocket_holders(self, app: AppProcess) -> set[int]:
        """The workers of `app` with an open connection on its port: nginx closes every other connection to the
        app after its request, so these hold the tabs' websockets."""
        holders = set()
        for pid in self.worker_pids(app):
            try:
                connections = psutil.Process(pid).net_connections(kind="tcp")
            except psutil.Error:
                continue
            if any(c.status == psutil.CONN_ESTABLISHED and c.laddr.port == app.port for c in connections):
                holders.add(pid)
        return holders

    def websocket_worker(self, timeout_s: float = 15) -> tuple[AppProcess, int]:
        """The app process and the worker holding the one open tab's websocket."""
        deadline = time.monotonic() + timeout_s
        holders: list[tuple[AppProcess, int]] = []
        while time.monotonic() < deadline:
            holders = [(app, pid) for app in self.apps for pid in self.websocket_holders(app)]
            if len(holders) == 1:
                return holders[0]
            time.sleep(0.2)
        raise AssertionError(f"expected one worker with the tab's websocket, found {holders}")

    def stop_app(self, app: AppProcess, sig: signal.Signals) -> None:
        """Send `sig` to the whole process group of `app` (its supervisor and workers) and wait until none is
        left (a SIGTERM that does not end it within 30 s is a failure)."""
        supervisor = self.supervisor(app)
        group = [supervisor, *supervisor.children(recursive=True)]
        os.killpg(supervisor.pid, sig)
        _, alive = psutil.wait_procs(group, timeout=30)
        assert alive == [], f"{sig.name} left {alive} of the app process on port {app.port} running"

    def start_app(self, app: AppProcess) -> None:
        """Start `app` again, serving the build it was serving (`--no-build`), with a log file of its own."""
        app.logs.append(app.logs[0].with_name(f"{app.logs[0].stem}-{len(app.logs) + 1}.log"))
        app.proc = serve(self.app_dir, {**self.env, "GRANIAN_WORKERS": str(app.workers)}, app.port, app.logs[-1],
                         "--no-build")

    def answers_through_nginx(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=5, context=insecure_context()) as response:
                return response.status == 200
        except OSError:
            return False


def _prerequisites() -> None:
    for tool, package in (("redis-server", "redis-server"), ("openssl", "openssl")):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed; `make test` installs Debian's {package}")
    if not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")):
        pytest.fail("nginx is not installed; `make test` installs Debian's nginx")


@pytest.fixture(scope="package")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    """PostgreSQL, Redis, two app processes (the frontend built once, 2 + 1 workers) and nginx in front of both,
    for every test of this folder."""
    _prerequisites()
    tmp = tmp_path_factory.mktemp("topology")
    https_port, http_port = free_port(), free_port()
    public_url = f"https://127.0.0.1:{https_port}"
    with postgres_cluster() as postgres, throwaway_redis(tmp / "redis") as redis:
        settings = {
            "REFLEX_REDIS_URL": redis.url,
            "GRANIAN_WORKERS": str(WORKERS[0]),
            "CF_PUBLIC_URL": public_url,
            "CF_SECURE_COOKIES": "true",
            "CF_TRUSTED_PROXY_HOPS": "1",
            "CF_WEBHOOK_WORKER": "off",  # delivered by a process of its own, as deploy/ sets it up
        }
        with running_app(tmp, database_url=postgres.url, extra_env=settings) as (app_url, app_dir, log_path, env):
            first = AppProcess(port=int(app_url.rsplit(":", 1)[1]), workers=WORKERS[0], logs=[log_path])
            second = AppProcess(port=free_port(), workers=WORKERS[1], logs=[tmp / "app2.log"])
            second.proc = serve(app_dir, {**env, "GRANIAN_WORKERS": str(WORKERS[1])}, second.port,
                                second.logs[0], "--no-build")
            assert "Production Build" not in second.logs[0].read_text(), "the second process built the frontend"
            apps = [first, second]
            try:
                with running_nginx(tmp / "nginx", app_addresses=[f"127.0.0.1:{app.port}" for app in apps],
                                   https_port=https_port, http_port=http_port, public_url=public_url) as nginx_dir:
                    topo = Topology(url=public_url, http_url=f"http://127.0.0.1:{http_port}", apps=apps,
                                    app_dir=app_dir, env=env, redis=redis, postgres=postgres, nginx_dir=nginx_dir)
                    for app in apps:
                        assert len(topo.worker_pids(app)) == app.workers, f"port {app.port}: not {app.workers} workers"
                    topo.new_log()
                    yield topo
            finally:
                for app in apps:
                    if app.proc is not None:
                        stop(app.proc)


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    # The certificate is made for the test (tests/support/nginx.py); nothing else is trusted blindly.
    return {**browser_context_args, "ignore_https_errors": True, "viewport": {"width": 1280, "height": 800}}


@pytest.fixture
def allowed_console() -> list[str]:
    """Patterns of console errors a test expects (one that breaks the tab's connection on purpose)."""
    return []


@pytest.fixture
def tab(topology: Topology, page: Page, allowed_console: list[str]) -> Iterator[Page]:
    """A tab of the demo owner, the demo account as seeded; the test fails on any other console error."""
    topology.cli("reset-demo")
    topology.new_log()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    topology.sign_in(page)
    yield page
    unexpected = [e for e in errors if not any(re.search(p, e) for p in allowed_console)]
    assert unexpected == [], f"browser console errors: {unexpected}"


def wait_until_connected(page: Page) -> None:
    page.get_by_text("Acme Security Ltd").first.wait_for(state="attached", timeout=30_000)


def wait_for(condition, what: str, timeout_s: float = 30) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
        time.sleep(0.2)

