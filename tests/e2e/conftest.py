"""End-to-end fixtures: the production build of the app in a subprocess, driven by Debian's chromium."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Locator, Page, expect
from sqlmodel import select as sa_select

from cf_portal.db import session_scope
from cf_portal.middleware import SESSION_COOKIE
from cf_portal.models import PaymentMethod
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services.actors import Actor
from cf_portal.services.payment_methods import CardAlreadySaved, add_payment_method
from cf_portal.services.seed import DEMO_OWNER_EMAIL
from tests.support.app import SERVER_ERROR_MARKERS, running_app, session_token


def saved_visa(engine: sa.Engine, actor: Actor) -> int:
    """The id of the account's sandbox Visa (4242, 12/34), saved on first need: the same card is saved once."""
    try:
        return add_payment_method(engine, SandboxProvider(engine), actor=actor, number="4242424242424242",
                                  expiry="12/34", cvc="123", today=datetime.now(UTC).date()).id
    except CardAlreadySaved:
        with session_scope(engine, write=False) as session:
            return session.exec(sa_select(PaymentMethod.id).where(
                PaymentMethod.account_id == actor.account_id, PaymentMethod.last4 == "4242",
                PaymentMethod.exp_month == 12, PaymentMethod.exp_year == 2034)).one()


PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def _new_postgres_database(postgres_url: str) -> str:
    """A database of its own in the suite's PostgreSQL cluster (unit tests empty the main one)."""
    name = f"e2e_{secrets.token_hex(4)}"
    engine = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return postgres_url.rsplit("/", 1)[0] + "/" + name


class PortalServer:
    def __init__(self, url: str, app_dir: Path, log_path: Path, env: dict[str, str]) -> None:
        self.url = url
        self.app_dir = app_dir
        self.log_path = log_path
        self.env = env
        self._checked_to = 0

    def new_server_errors(self) -> list[str]:
        text = self.log_path.read_text(errors="replace")
        fresh, self._checked_to = text[self._checked_to:], len(text)
        return [line for line in fresh.splitlines() if any(m in line for m in SERVER_ERROR_MARKERS)]

    def engine(self) -> sa.Engine:
        from cf_portal.db import make_engine

        return make_engine(self.env["REFLEX_DB_URL"])

    def session_token(self, email: str) -> str:
        """A new session of the member `email`, as signing in would make (for tests about other things)."""
        return session_token(self.env["REFLEX_DB_URL"], email)

    def sign_in(self, page: Page, email: str = DEMO_OWNER_EMAIL) -> None:
        """Give the browser a session cookie of `email` (the sign-in page has tests of its own)."""
        page.context.add_cookies([{"name": SESSION_COOKIE, "value": self.session_token(email), "url": self.url,
                                   "sameSite": "Strict", "httpOnly": True}])

    def cli(self, *args: str) -> str:
        """Run `python -m cf_portal.cli ...` against the app's database."""
        done = subprocess.run([sys.executable, "-m", "cf_portal.cli", *args], cwd=self.app_dir, env=self.env,
                              capture_output=True, text=True, check=True)
        return done.stdout


@pytest.fixture(scope="session")
def portal(postgres_url: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalServer]:
    """The production build of the app (from a copy of the checkout) on a migrated, seeded database."""
    tmp_dir = tmp_path_factory.mktemp("portal")
    database_url = _new_postgres_database(postgres_url) if postgres_url else None  # else SQLite in tmp_dir
    with running_app(tmp_dir, database_url=database_url) as (url, app_dir, log_path, env):
        startup = log_path.read_text()
        # cf_portal.serve's start-up check (Reflex's own could not leave the search index out)
        assert "schema differ" not in startup and "newest migration" not in startup, startup[-2000:]
        server = PortalServer(url, app_dir, log_path, env)
        server.new_server_errors()
        yield server


@pytest.fixture(autouse=True)
def no_server_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that runs an app fails when the app's log shows an error during it, with or without a tab (a
    tab's fixture checks first; this catches what a test without one leaves, so it is not blamed on the next)."""
    servers = [request.getfixturevalue(name) for name in ("portal", "stripe_portal") if name in request.fixturenames]
    yield
    for server in servers:
        errors = server.new_server_errors()
        assert errors == [], f"the app logged errors: {errors}"


@pytest.fixture
def app_page(portal: PortalServer, anon_page: Page) -> Page:
    """A browser tab signed in as the owner of the demo account; fails the test on console or server errors."""
    portal.sign_in(anon_page)
    return anon_page


@pytest.fixture
def anon_page(portal: PortalServer, page: Page) -> Iterator[Page]:
    """A browser tab on the app, signed out; the test fails if the console or the app's log shows an error."""
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


def wait_for_animations(page: Page) -> None:
    """Let opening animations (a dialog fading in) end, so that axe measures the colours people read; endless
    ones (spinners) are not waited for."""
    page.evaluate("() => Promise.all(document.getAnimations()"
                  ".filter((a) => a.effect && a.effect.getComputedTiming().iterations !== Infinity)"
                  ".map((a) => a.finished.catch(() => null)))")


def assert_accessible(page: Page) -> None:
    """No axe violation on what people read: while axe runs the page asks for reduced motion (a toast fading
    out, which Sonner then no longer animates, would otherwise be measured half-transparent), once animations
    end. Motion comes back afterwards: a Radix dialog closed under reduced motion can leave its overlay behind."""
    page.emulate_media(reduced_motion="reduce")
    try:
        wait_for_animations(page)
        results = Axe().run(page)
    finally:
        page.emulate_media(reduced_motion="no-preference")
    assert results.violations_count == 0, results.generate_report()
