"""The database engine and sessions, shared by the app, the command line and the tests."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import sqlalchemy as sa
from sqlmodel import Session

from cf_portal.settings import get_settings

WRITE_OPTION = "cf_portal_write"


def make_engine(url: str) -> sa.Engine:
    """`hide_parameters`: a failing statement's error (which `log.exception` writes to the log) names no values,
    so no email, name or password hash typed by anyone reaches the log that way."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                                  hide_parameters=True)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # noqa: ANN001
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            if ":memory:" not in url and url != "sqlite://":
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # noqa: ANN001
            # A writing unit of work takes SQLite's write lock when it starts, so two writers
            # queue up (busy_timeout) instead of one failing half-way with "database is locked":
            # SQLite has no row locks, so this is its form of SELECT ... FOR UPDATE.
            immediate = conn.get_execution_options().get(WRITE_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        # Let SQLAlchemy's "begin" event, not pysqlite, start transactions.
        @sa.event.listens_for(engine, "connect", insert=True)
        def _no_autobegin(dbapi_connection, _record):  # noqa: ANN001
            dbapi_connection.isolation_level = None

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True)


@lru_cache
def get_engine() -> sa.Engine:
    settings = get_settings()
    settings.ensure_data_dir()
    return make_engine(settings.database_url)


@contextmanager
def session_scope(engine: sa.Engine | None = None, *, write: bool = True) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back if it raises.

    `write=False` is for read-only work; on SQLite it does not wait for the write lock.
    """
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        if write:
            session.connection(execution_options={WRITE_OPTION: True})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_scope(engine: sa.Engine | None = None) -> Iterator[Session]:
    """Reads where each statement may see its own snapshot (PostgreSQL's READ COMMITTED does just that inside a
    transaction too): on PostgreSQL in autocommit, saving the BEGIN and COMMIT round trips (the API's checks);
    on SQLite the same as `session_scope(write=False)`."""
    engine = engine or get_engine()
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    with session_scope(engine, write=False) as session:
        yield session


def schema_differences(connection: sa.Connection) -> list:
    """What the models declare that the database lacks, or the reverse (alembic's autogenerate comparison, with
    the filter alembic/env.py uses: the search index the models cannot declare is left out). SQLite's reflection
    cannot read expression indexes, so they are left out there too (tests/unit/test_migrations.py compares them
    by name)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from cf_portal.models import in_models_schema

    context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": in_models_schema})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index")
        return compare_metadata(context, all_metadata())


def all_metadata():  # noqa: ANN201
    """The metadata of every table: the app's and the sandbox payment provider's store."""
    from cf_portal import models
    from cf_portal.payments import sandbox_tables  # noqa: F401

    return models.SQLModel.metadata
