"""The production server's options (python -m cf_portal.serve); tests/topology/ runs it for real."""

from __future__ import annotations

import pytest

from cf_portal import serve
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
