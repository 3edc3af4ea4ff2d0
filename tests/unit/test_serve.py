"""The production server's options (python -m cf_portal.serve); tests/topology/ runs it for real."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from alembic import command
from cf_portal import serve
from cf_portal.cli import alembic_config
from cf_portal.settings import get_settings


def test_several_workers_are_refused_without_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REFLEX_REDIS_URL", raising=False)
    monkeypatch.delenv("GRANIAN_WORKERS", raising=False)
    get_settings.cache_clear()
    try:
        assert serve.parse_args([]).workers == 1
        with pytest.raises(SystemExit):
            serve.parse_args(["--workers", "2"])
        monkeypatch.setenv("REFLEX_REDIS_URL", "redis://127.0.0.1:6379/0")
        get_settings.cache_clear()
        assert serve.parse_args(["--workers", "2"]).workers == 2
        with pytest.raises(SystemExit):
            serve.parse_args(["--workers", "0"])
    finally:
        get_settings.cache_clear()


def test_the_granian_server_reflex_starts_respawns_its_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    import granian.server

    monkeypatch.setattr(granian.server, "Server", granian.server.Server)  # put back after the test
    serve.enable_worker_respawn()
    serve.enable_worker_respawn()  # twice changes nothing
    server = granian.server.Server(target="cf_portal.cf_portal:app", respawn_failed_workers=False)
    assert server.respawn_failed_workers is True


def _check_schema_of(url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> list[str]:
    from cf_portal.db import get_engine

    monkeypatch.setenv("REFLEX_DB_URL", url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    try:
        with caplog.at_level(logging.ERROR, logger="cf_portal.serve"):
            serve.check_schema_at_start()
        assert get_engine.cache_info().currsize == 0  # no pooled connection left for the forked workers
    finally:
        get_settings.cache_clear()
        get_engine.cache_clear()
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def test_the_start_up_check_is_quiet_on_a_migrated_database_with_its_search_index(
        empty_database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # Reflex's own check reported the search index (which the models cannot declare) at every start.
    command.upgrade(alembic_config(empty_database_url), "head")
    assert _check_schema_of(empty_database_url, monkeypatch, caplog) == []


def test_the_start_up_check_reports_a_database_behind_or_unlike_the_models(
        empty_database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    command.upgrade(alembic_config(empty_database_url), "head")
    command.downgrade(alembic_config(empty_database_url), "-1")
    assert any("not at the newest migration" in m for m in _check_schema_of(empty_database_url, monkeypatch, caplog))
    caplog.clear()
    command.upgrade(alembic_config(empty_database_url), "head")
    engine = sa.create_engine(empty_database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit_event RENAME TO audit_event_renamed"))
    engine.dispose()
    assert any("models and the database's schema differ" in m
               for m in _check_schema_of(empty_database_url, monkeypatch, caplog))
