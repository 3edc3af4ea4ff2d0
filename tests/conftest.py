"""Shared fixtures: a database per test on SQLite (default) or a throwaway PostgreSQL (DB=postgres)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from cf_portal.db import all_metadata, make_engine
from tests.support.app import CHROMIUM_ARGS
from tests.support.postgres import throwaway_postgres

DB_KIND = os.environ.get("DB", "sqlite").lower()
if DB_KIND not in {"sqlite", "postgres"}:
    raise pytest.UsageError(f"DB must be sqlite or postgres, not {DB_KIND!r}")


def pytest_report_header() -> str:
    return f"cf_portal database: {DB_KIND}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `only_on("sqlite")` or `only_on("postgres")` run in that pass of `make test` only: slow ones
    where the database makes no difference (or where only one can serve). The other pass deselects them (counted
    as deselected, not skipped)."""
    other = [item for item in items if (mark := item.get_closest_marker("only_on")) and mark.args[0] != DB_KIND]
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = [item for item in items if item not in other]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    if DB_KIND != "postgres":
        yield None
        return
    with throwaway_postgres() as url:
        yield url


@pytest.fixture
def empty_database_url(postgres_url: str | None, tmp_path) -> Iterator[str]:  # noqa: ANN001
    """The URL of a database with no tables at all (a fresh file, or an emptied PostgreSQL schema)."""
    if postgres_url is None:
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    yield postgres_url


@pytest.fixture
def engine(empty_database_url: str) -> Iterator[sa.Engine]:
    """An engine on a database with the models' schema."""
    eng = make_engine(empty_database_url)
    all_metadata().create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: sa.Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict:
    """pytest-playwright launches Debian's chromium (the tests' browser: nothing is downloaded)."""
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.fail("Debian's chromium is not installed; `make test` installs it")
    return {"executable_path": chromium, "args": CHROMIUM_ARGS}
