"""State tests: Reflex states without a browser, on a migrated and seeded database."""

from __future__ import annotations

from collections.abc import Iterator

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


@pytest.fixture
def root_state(app_engine: sa.Engine) -> rx.State:
    import cf_portal.cf_portal  # noqa: F401  (registers every page's states)

    return rx.State(_reflex_internal_init=True)


def substate(root: rx.State, cls: type[rx.State]) -> rx.State:
    return root.get_substate(cls.get_full_name().split("."))
