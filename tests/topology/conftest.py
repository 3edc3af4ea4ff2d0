"""The production topology, started for real: a PostgreSQL cluster, Redis, the production build with two
Granian workers (`python -m cf_portal.serve`) and nginx in front with HTTPS (deploy/nginx/), driven through
nginx by headless Chromium.

It runs in the PostgreSQL pass of `make test` only (`DB=postgres`): several workers need a server database, and
one run is enough. On the SQLite pass its tests are deselected (`only_on`, tests/conftest.py).
"""

from __future__ import annotations

import os
import re
import shutil
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

from tests.support.app import SERVER_ERROR_MARKERS, running_app
from tests.support.nginx import insecure_context, running_nginx
from tests.support.postgres import PostgresCluster, free_port, postgres_cluster
from tests.support.redis_server import RedisServer, throwaway_redis

WORKERS = 2


@dataclass
class Topology:
    url: str  # the public address: nginx, HTTPS
    http_url: str  # nginx's plain-HTTP port, which only redirects
    app_port: int
    app_dir: Path
    log_path: Path
    env: dict[str, str]
    redis: RedisServer
    postgres: PostgresCluster
    _checked_to: int = field(default=0)

    # --- the app's log -------------------------------------------------------------------------------------
    def new_log(self) -> str:
        """What the app logged since the last call."""
        text = self.log_path.read_text(errors="replace")
        fresh, self._checked_to = text[self._checked_to:], len(text)
        return fresh

    def new_server_errors(self, *, expected: tuple[str, ...] = ()) -> list[str]:
        return [line for line in self.new_log().splitlines()
                if any(m in line for m in SERVER_ERROR_MARKERS) and not any(e in line for e in expected)]

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
    def supervisor(self) -> psutil.Process:
        """Granian's main process: the one this test run started, running from the app's copy."""
        for child in psutil.Process().children():
            try:
                if Path(child.cwd()) == self.app_dir:
                    return child
            except psutil.Error:
                continue
        raise AssertionError("the app's main process is gone")

    def worker_pids(self) -> set[int]:
        """The live backend workers (forked from the supervisor, so they share its command line)."""
        supervisor = self.supervisor()
        command = supervisor.cmdline()
        pids = set()
        for child in supervisor.children():
            try:
                if child.cmdline() == command and child.status() != psutil.STATUS_ZOMBIE:
                    pids.add(child.pid)
            except psutil.Error:
                continue
        return pids

    def websocket_worker(self, timeout_s: float = 15) -> int:
        """The worker holding the tab's websocket: nginx closes every other connection to the app after its
        request, so it is the one worker with an open connection on the app's port."""
        deadline = time.monotonic() + timeout_s
        holders: list[int] = []
        while time.monotonic() < deadline:
            holders = []
            for pid in self.worker_pids():
                try:
                    connections = psutil.Process(pid).net_connections(kind="tcp")
                except psutil.Error:
                    continue
                if any(c.status == psutil.CONN_ESTABLISHED and c.laddr.port == self.app_port for c in connections):
                    holders.append(pid)
            if len(holders) == 1:
                return holders[0]
            time.sleep(0.2)
        raise AssertionError(f"expected one worker with the tab's websocket, found {holders}")

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
    """PostgreSQL, Redis, the app (built once, two workers) and nginx, for every test of this folder."""
    _prerequisites()
    tmp = tmp_path_factory.mktemp("topology")
    https_port, http_port = free_port(), free_port()
    public_url = f"https://127.0.0.1:{https_port}"
    with postgres_cluster() as postgres, throwaway_redis(tmp / "redis") as redis:
        settings = {
            "REFLEX_REDIS_URL": redis.url,
            "GRANIAN_WORKERS": str(WORKERS),
            "CF_PUBLIC_URL": public_url,
            "CF_SECURE_COOKIES": "true",
            "CF_TRUSTED_PROXY_HOPS": "1",
            "CF_WEBHOOK_WORKER": "off",  # delivered by a process of its own, as deploy/ sets it up
        }
        with running_app(tmp, database_url=postgres.url, extra_env=settings) as (app_url, app_dir, log_path, env):
            app_port = int(app_url.rsplit(":", 1)[1])
            with running_nginx(tmp / "nginx", app_address=f"127.0.0.1:{app_port}", https_port=https_port,
                               http_port=http_port, public_url=public_url):
                topo = Topology(url=public_url, http_url=f"http://127.0.0.1:{http_port}", app_port=app_port,
                                app_dir=app_dir, log_path=log_path, env=env, redis=redis, postgres=postgres)
                assert len(topo.worker_pids()) == WORKERS, "the app did not start two workers"
                topo.new_log()
                yield topo


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

