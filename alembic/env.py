"""Alembic environment: the models' metadata and the database of cf_portal.settings."""

from __future__ import annotations

from logging.config import fileConfig

import sqlalchemy as sa
from sqlmodel.sql.sqltypes import AutoString

from alembic import context
from cf_portal.db import all_metadata, get_engine, make_engine
from cf_portal.models import UTCDateTime, in_models_schema

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = all_metadata()


def render_item(type_: str, obj, autogen_context):  # noqa: ANN001, ANN201
    """Write plain SQLAlchemy types into migrations, so they never import the app's code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
        include_name=in_models_schema,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # handed in by the tests or cf_portal.cli
        configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.attributes.get("url")
    engine = make_engine(url) if url else get_engine()
    with engine.connect() as connection:
        configure(connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them against a database")
run_migrations_online()
