"""State tests: Reflex states without a browser, on a migrated and seeded database."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

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
    from cf_portal.state.portal import PortalState, now

    with db.session_scope() as session:
        token = start_session(session, user_id=user_id, remember=False, now=now()).token
    substate(root, PortalState).session_token = token
    return token


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

