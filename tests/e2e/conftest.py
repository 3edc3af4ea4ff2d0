"""End-to-end fixtures: the production build of the app in a subprocess, driven by Debian's chromium."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Locator, Page, expect

from cf_portal.settings import PROJECT_ROOT
from tests.support.postgres import free_port

CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# Lines in the app's log that mean something went wrong on the server.
SERVER_ERROR_MARKERS = ("Traceback (most recent call last)", "Exception in ", " ERROR ")


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict:
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.fail("Debian's chromium is not installed; `make test` installs it")
    return {"executable_path": chromium, "args": CHROMIUM_ARGS}


def _e2e_database_url(postgres_url: str | None, tmp_dir: Path) -> str:
    if postgres_url is None:
        return f"sqlite:///{tmp_dir / 'e2e.db'}"
    name = f"e2e_{secrets.token_hex(4)}"
    engine = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return postgres_url.rsplit("/", 1)[0] + "/" + name


class PortalServer:
    def __init__(self, url: str, log_path: Path, env: dict[str, str]) -> None:
        self.url = url
        self.log_path = log_path
        self.env = env
        self._checked_to = 0

    def new_server_errors(self) -> list[str]:
        text = self.log_path.read_text(errors="replace")
        fresh, self._checked_to = text[self._checked_to:], len(text)
        return [line for line in fresh.splitlines() if any(m in line for m in SERVER_ERROR_MARKERS)]

    def cli(self, *args: str) -> str:
        """Run `python -m cf_portal.cli ...` against the app's database."""
        done = subprocess.run([sys.executable, "-m", "cf_portal.cli", *args], cwd=PROJECT_ROOT, env=self.env,
                              capture_output=True, text=True, check=True)
        return done.stdout


@pytest.fixture(scope="session")
def portal(postgres_url: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalServer]:
    tmp_dir = tmp_path_factory.mktemp("portal")
    port = free_port()
    env = {
        **os.environ,
        "REFLEX_DB_URL": _e2e_database_url(postgres_url, tmp_dir),
        "CF_DEMO_MODE": "true",
        "CF_PORT": str(port),
        "REFLEX_TELEMETRY_ENABLED": "false",
        "REFLEX_CHECK_LATEST_VERSION": "false",
    }
    env["PATH"] = f"{PROJECT_ROOT / '.tools' / 'bin'}:{Path(sys.executable).parent}:{env.get('PATH', '')}"
    for step in (["migrate"], ["seed"]):
        subprocess.run([sys.executable, "-m", "cf_portal.cli", *step], cwd=PROJECT_ROOT, env=env, check=True,
                       capture_output=True)
    log_path = tmp_dir / "app.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "reflex", "run", "--env", "prod", "--frontend-port", str(port),
         "--backend-port", str(port)],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the app exited while starting:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                    if response.status == 200 and "App running" in log_path.read_text():
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the app did not start within 300 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        startup = log_path.read_text()
        assert "Detected database schema changes" not in startup, "Reflex sees models the migrations lack"
        server = PortalServer(url, log_path, env)
        server.new_server_errors()
        yield server
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def app_page(portal: PortalServer, page: Page) -> Iterator[Page]:
    """A browser tab on the app; the test fails if the console or the app's log shows an error."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    assert errors == [], f"browser console errors: {errors}"
    assert portal.new_server_errors() == [], "the app logged errors"


@pytest.fixture
def fresh_demo(portal: PortalServer) -> PortalServer:
    """The demo account as seeded: no licenses, no payment methods."""
    portal.cli("reset-demo")
    return portal


def url_of(portal: PortalServer, path: str) -> re.Pattern[str]:
    """Matches the app's URL of `path`, with or without the trailing slash."""
    return re.compile(re.escape(portal.url + path.rstrip("/")) + "/?$")


def wait_until_connected(page: Page) -> None:
    """The page is live once the websocket has delivered the first state (the account name)."""
    page.get_by_text("Acme Security Ltd").first.wait_for(state="attached", timeout=30_000)


def assert_no_horizontal_scroll(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


def choose(radio: Locator) -> None:
    """Pick a radio button whose checked state the server confirms (a controlled input)."""
    radio.click()
    expect(radio).to_be_checked()
