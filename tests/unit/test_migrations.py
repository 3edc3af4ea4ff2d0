"""The committed migrations and the models describe the same schema."""

from __future__ import annotations

import re

import sqlalchemy as sa

from alembic import command
from cf_portal.cli import alembic_config
from cf_portal.db import all_metadata, schema_differences


def _migrated_engine(url: str) -> sa.Engine:
    command.upgrade(alembic_config(url), "head")
    return sa.create_engine(url)


def test_migrations_give_exactly_the_models_schema(empty_database_url: str) -> None:
    engine = _migrated_engine(empty_database_url)
    with engine.connect() as conn:
        diff = schema_differences(conn)
    engine.dispose()
    assert diff == [], f"models and migrations disagree; write a migration for: {diff}"


def test_a_table_the_database_lacks_is_a_difference(empty_database_url: str) -> None:
    engine = _migrated_engine(empty_database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit_event RENAME TO audit_event_renamed"))
        diff = schema_differences(conn)
    engine.dispose()
    assert any(op[0] == "add_table" and op[1].name == "audit_event" for op in diff), diff


def test_migrations_create_every_check_constraint(empty_database_url: str) -> None:
    # compare_metadata does not look at CHECK constraints, so compare their names directly.
    engine = _migrated_engine(empty_database_url)
    inspector = sa.inspect(engine)
    checked = 0
    for table in all_metadata().sorted_tables:
        expected = {
            c.name for c in table.constraints if isinstance(c, sa.CheckConstraint) and c.name is not None
        }
        expected = {str(name) for name in expected}
        actual = {c["name"] for c in inspector.get_check_constraints(table.name)}
        assert expected <= actual, f"{table.name}: missing check constraints {expected - actual}"
        checked += len(expected)
    engine.dispose()
    assert checked >= 20  # the models do declare their rules


def _check_rules(engine: sa.Engine) -> dict[tuple[str, str], str]:
    inspector = sa.inspect(engine)
    return {
        (table, check["name"]): re.sub(r"[\s()\"'`]", "", check["sqltext"]).lower()
        for table in inspector.get_table_names()
        for check in inspector.get_check_constraints(table)
    }


def test_migrated_check_constraints_say_what_the_models_say(empty_database_url: str, tmp_path) -> None:  # noqa: ANN001
    migrated = _check_rules(_migrated_engine(empty_database_url))
    # The same database kind, built straight from the models.
    if empty_database_url.startswith("sqlite"):
        reference_url = f"sqlite:///{tmp_path / 'models.db'}"
    else:
        reference_url = empty_database_url
        engine = sa.create_engine(empty_database_url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
        engine.dispose()
    reference = sa.create_engine(reference_url)
    all_metadata().create_all(reference)
    assert migrated == _check_rules(reference)
    reference.dispose()


def test_migrations_downgrade_to_nothing_and_up_again(empty_database_url: str) -> None:
    cfg = alembic_config(empty_database_url)
    command.upgrade(cfg, "head")
    command.downgrade(cfg, "base")
    engine = sa.create_engine(empty_database_url)
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(cfg, "head")
    assert "license" in sa.inspect(engine).get_table_names()
    engine.dispose()


def _schema_objects(engine: sa.Engine) -> set[str]:
    """Every table, index and trigger by name, the ones the models cannot declare too (the search index)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        else:
            query = ("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' UNION "
                     "SELECT tablename FROM pg_tables WHERE schemaname = 'public' UNION "
                     "SELECT extname FROM pg_extension")
        return {name for name in conn.exec_driver_sql(query).scalars() if not name.startswith("alembic_version")}


def _employee_index_definitions(engine: sa.Engine) -> dict[str, str]:
    """PostgreSQL's own CREATE INDEX statement of each index on employee, storage options included."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'employee'")
        return {name: definition for name, definition in rows}


def test_migrations_and_the_models_create_the_same_search_index(empty_database_url: str, tmp_path) -> None:  # noqa: ANN001
    """compare_metadata leaves out the search index (and SQLite's expression indexes): compare them by name, and on
    PostgreSQL by definition (the trigram indexes' `fastupdate = off` too)."""
    migrated_engine = _migrated_engine(empty_database_url)
    migrated = _schema_objects(migrated_engine)
    definitions = _employee_index_definitions(migrated_engine) if empty_database_url.startswith("postgres") else {}
    migrated_engine.dispose()
    search = {"ix_employee_account_id_name_order", "ix_employee_account_id_department_order"}
    search |= ({"employee_search", "employee_search_insert", "employee_search_update", "employee_search_delete"}
               if empty_database_url.startswith("sqlite") else {"pg_trgm", "ix_employee_name_trgm", "ix_employee_email_trgm"})
    assert search <= migrated
    if empty_database_url.startswith("sqlite"):
        reference = sa.create_engine(f"sqlite:///{tmp_path / 'models.db'}")
    else:
        engine = sa.create_engine(empty_database_url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
        engine.dispose()
        reference = sa.create_engine(empty_database_url)
    all_metadata().create_all(reference)
    assert _schema_objects(reference) == migrated
    if definitions:
        assert _employee_index_definitions(reference) == definitions
        for index in ("ix_employee_name_trgm", "ix_employee_email_trgm"):
            assert "fastupdate=off" in definitions[index], definitions[index]
    reference.dispose()


def test_the_search_migration_indexes_the_employees_already_there(empty_database_url: str) -> None:
    from types import SimpleNamespace

    from cf_portal import clock
    from cf_portal.db import make_engine, session_scope
    from cf_portal.services import employees
    from cf_portal.services.employees import GridQuery
    from tests.factories import make_employee

    cfg = alembic_config(empty_database_url)
    command.upgrade(cfg, "0009_webhooks")
    engine = make_engine(empty_database_url)
    with session_scope(engine) as session:
        # The account row as of 0009 (the model may have columns of later migrations).
        account_id = session.execute(sa.text("INSERT INTO account (name, created_at) VALUES (:name, :at) RETURNING id"),
                                     {"name": "Stroud Ltd", "at": clock.now()}).scalar_one()
        make_employee(session, SimpleNamespace(id=account_id), name="Wilhelmina Stroud", email="w.stroud@x.example")
    command.upgrade(cfg, "head")
    with session_scope(engine, write=False) as session:
        page = employees.search_holders(session, account_id=account_id, query=GridQuery(search="helmina"))
    engine.dispose()
    assert [r.name for r in page.rows] == ["Wilhelmina Stroud"]
