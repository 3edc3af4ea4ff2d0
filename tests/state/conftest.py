"""State tests: Reflex states without a browser, on a migrated and seeded database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import reflex as rx
import sqlalchemy as sa

from cf_portal import db, settings
from cf_portal.cli import migrate
from cf_portal.services.seed import seed_demo


@pytest.fixture
def app_engine(empty_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    """Point the app's settings at a fresh, migrated and seeded database."""
    monkeypatch.setenv("REFLEX_DB_URL", empty_database_url)
    monkeypatch.setenv("CF_DEMO_MODE", "true")
    settings.get_settings.cache_clear()
    db.get_engine.cache_clear()
    migrate()
    with db.session_scope() as session:
        seed_demo(session)
    yield db.get_engine()
    db.get_engine().dispose()
    settings.get_settings.cache_clear()
    db.get_engine.cache_clear()


@pytest.fixture(autouse=True)
def work_in_a_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Work the app sends to its worker process (`state.work.in_process`) runs in a thread here: a process
    would not see each test's database, nor the tests' stand-ins. tests/unit/test_work.py checks the process."""
    from cf_portal.state import work

    with ThreadPoolExecutor(1) as pool:
        monkeypatch.setattr(work, "_executor", lambda: pool)
        yield


def new_root_state() -> rx.State:
    import cf_portal.cf_portal  # noqa: F401  (registers every page's states)

    return rx.State(_reflex_internal_init=True)


def sign_in_as(root: rx.State, user_id: int) -> str:
    """Give this browser state a session of `user_id`, as signing in would; returns the token."""
    from cf_portal.services.auth import start_session
    from cf_portal.state.portal import now

    with db.session_scope() as session:
        token = start_session(session, user_id=user_id, remember=False, now=now()).token
    connect_with_cookie(root, token)
    return token


def connect_with_cookie(root: rx.State, token: str) -> None:
    """What the state sees of a websocket opened by a browser whose session cookie holds `token` ('' for none):
    the handshake's headers after cf_portal.middleware has put the token's digest in place of the cookie."""
    from reflex.istate.data import HeaderData

    from cf_portal.middleware import scope_with_session_digest

    cookie = [(b"cookie", f"cf_session={token}; theme=light".encode())] if token else []
    scope = scope_with_session_digest({"type": "websocket", "path": "/_event", "headers": cookie})
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    root.rx_router_headers = HeaderData.from_router_data({"headers": headers})


def at_url(root: rx.State, path: str) -> None:
    """What the state sees of the page it was opened on (`path` with its query), the websocket kept as it was."""
    from reflex.istate.data import RouterData, URLData

    router = RouterData.from_router_data({"pathname": path.split("?")[0], "asPath": path})
    root.rx_router_url, root.rx_router_page = URLData.from_url(router.url), router._page


def demo_owner_id() -> int:
    from sqlmodel import select

    from cf_portal.models import User
    from cf_portal.services.seed import DEMO_OWNER_EMAIL

    with db.session_scope(write=False) as session:
        return session.exec(select(User.id).where(User.email == DEMO_OWNER_EMAIL)).one()


@pytest.fixture
def signed_out_state(app_engine: sa.Engine) -> rx.State:
    return new_root_state()


@pytest.fixture
def root_state(app_engine: sa.Engine) -> rx.State:
    """A browser's state, signed in as the owner of the demo account."""
    root = new_root_state()
    sign_in_as(root, demo_owner_id())
    return root


def substate(root: rx.State, cls: type[rx.State]) -> rx.State:
    return root.get_substate(cls.get_full_name().split("."))


@dataclass(frozen=True)
class Followed:
    """What the browser got from the route a sign-in (or sign-out) sent it to."""

    location: str  # where the route sent the browser next
    set_cookie: str  # the Set-Cookie header ('' when none)
    token: str  # the session token the cookie now holds ('' when none or cleared)


def follow_form_post(root: rx.State, event: rx.event.EventSpec, *, cookie_token: str = "") -> Followed:
    """Do what the browser does with an event of `post_form` (cf_portal/state/portal.py): post its fields to
    the portal's real HTTP route (with the session cookie `cookie_token`, if any), then open the websocket
    again with the cookie that route left (as the new page does)."""
    import re
    from urllib.parse import urlsplit

    from starlette.testclient import TestClient

    from cf_portal.api import api
    from cf_portal.middleware import SESSION_COOKIE

    script = " ".join(str(getattr(value, "_var_value", value)) for _, value in event.args)
    action = json.loads(re.search(r"form\.action = (\"[^\"]*\")", script).group(1))
    fields = json.loads(re.search(r"Object\.entries\((\{.*?\})\)", script).group(1))
    client = TestClient(api, base_url="http://127.0.0.1:3000")
    if cookie_token:
        client.cookies.set(SESSION_COOKIE, cookie_token)
    response = client.post(action, data=fields, headers={"sec-fetch-site": "same-origin"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    set_cookie = next((c for c in response.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}=")), "")
    token = re.match(rf"{SESSION_COOKIE}=([^;]*)", set_cookie).group(1) if set_cookie else cookie_token
    connect_with_cookie(root, token)
    return Followed(location=urlsplit(response.headers["location"]).path + (
        f"?{urlsplit(response.headers['location']).query}" if urlsplit(response.headers["location"]).query else ""),
        set_cookie=set_cookie, token=token)
