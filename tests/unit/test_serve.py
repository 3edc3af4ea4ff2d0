"""The production server's options (python -m cf_portal.serve); tests/topology/ runs it for real."""

from __future__ import annotations

import logging
from pathlib import Path

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


def test_a_process_without_a_build_needs_one_made_before_and_redis(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    monkeypatch.setattr(serve, "built_frontend", lambda: tmp_path)
    monkeypatch.setenv("REFLEX_REDIS_URL", "redis://127.0.0.1:6379/0")
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit):
            serve.parse_args(["--no-build"])  # nothing built here yet
        (tmp_path / "index.html").write_text("<html></html>")
        assert serve.parse_args(["--no-build"]).no_build is True
        assert serve.parse_args([]).no_build is False
        monkeypatch.delenv("REFLEX_REDIS_URL")
        get_settings.cache_clear()
        with pytest.raises(SystemExit):
            serve.parse_args(["--no-build"])  # beside another process, the tabs' state must be shared
    finally:
        get_settings.cache_clear()


def test_without_a_build_the_backend_serves_the_built_frontend(monkeypatch: pytest.MonkeyPatch) -> None:
    from reflex.utils import exec as reflex_exec

    calls: list[tuple[tuple, dict]] = []
    monkeypatch.setattr(reflex_exec, "run_backend_prod", lambda *args, **kwargs: calls.append((args, kwargs)))
    serve.serve_built_frontend()
    serve.serve_built_frontend()  # twice changes nothing
    reflex_exec.run_backend_prod("127.0.0.1", 3001, "info", False)  # as Reflex's backend-only mode calls it
    assert calls == [(("127.0.0.1", 3001, "info"), {"mount_frontend_compiled_app": True})]
    assert serve.built_frontend().parts[-3:] == (".web", "build", "client")


def test_the_config_names_no_frontend_port_in_a_backend_only_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reflex refuses to run backend-only when the config has a frontend port (`--no-build` is backend-only)."""
    import importlib

    import rxconfig

    try:
        monkeypatch.setenv("REFLEX_BACKEND_ONLY", "true")
        assert importlib.reload(rxconfig).config.frontend_port is None
        monkeypatch.delenv("REFLEX_BACKEND_ONLY")
        assert importlib.reload(rxconfig).config.frontend_port == get_settings().port
    finally:
        importlib.reload(rxconfig)
