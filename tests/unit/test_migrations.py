"""The committed migrations and the models describe the same schema."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from cf_portal.cli import alembic_config
from cf_portal.models import SQLModel


def _migrated_engine(url: str) -> sa.Engine:
    command.upgrade(alembic_config(url), "head")
    return sa.create_engine(url)


def test_migrations_give_exactly_the_models_schema(empty_database_url: str) -> None:
    engine = _migrated_engine(empty_database_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, SQLModel.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations disagree; write a migration for: {diff}"


def test_migrations_create_every_check_constraint(empty_database_url: str) -> None:
    # compare_metadata does not look at CHECK constraints, so compare their names directly.
    engine = _migrated_engine(empty_database_url)
    inspector = sa.inspect(engine)
    checked = 0
    for table in SQLModel.metadata.sorted_tables:
        expected = {
            c.name for c in table.constraints if isinstance(c, sa.CheckConstraint) and c.name is not None
        }
        expected = {str(name) for name in expected}
        actual = {c["name"] for c in inspector.get_check_constraints(table.name)}
        assert expected <= actual, f"{table.name}: missing check constraints {expected - actual}"
        checked += len(expected)
    engine.dispose()
    assert checked >= 20  # the models do declare their rules


def test_migrations_downgrade_to_nothing_and_up_again(empty_database_url: str) -> None:
    cfg = alembic_config(empty_database_url)
    command.upgrade(cfg, "head")
    command.downgrade(cfg, "base")
    engine = sa.create_engine(empty_database_url)
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(cfg, "head")
    assert "license" in sa.inspect(engine).get_table_names()
    engine.dispose()
