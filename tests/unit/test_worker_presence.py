"""cf_portal.worker_presence against a real Redis: a tab whose worker died keeps its token, a tab open twice while
both are alive does not, and keyspace notifications come back after Redis restarts. The Reflex internals it
relies on are pinned: a Reflex upgrade fails here until the override is checked again."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio
import reflex.constants
from reflex.app import App, EventNamespace
from reflex.utils.token_manager import RedisTokenManager, SocketRecord

from cf_portal.worker_presence import PresenceTokenManager, install_presence_token_manager
from tests.support.events import run_on_a_loop
from tests.support.redis_server import RedisServer, throwaway_redis


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with throwaway_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


def source_digest(function: object) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]


def test_the_reflex_internals_the_override_relies_on_are_those_of_reflex_0_10_1() -> None:
    # If this fails after a Reflex upgrade: read the new RedisTokenManager (is a dead worker's socket record still
    # taken for a duplicate tab? same key, same pickled SocketRecord?) and EventNamespace (still `_token_manager`,
    # instance_id still reset in App._setup_event_processor?), adapt cf_portal/worker_presence.py, then the digests.
    assert reflex.constants.Reflex.VERSION == "0.10.1"
    assert {
        "link_token_to_sid": source_digest(RedisTokenManager.link_token_to_sid),
        "_get_redis_key": source_digest(RedisTokenManager._get_redis_key),
        "EventNamespace.__init__": source_digest(EventNamespace.__init__),
        "_setup_event_processor": source_digest(App._setup_event_processor),
    } == {
        "link_token_to_sid": "bfeebab3ab359bde",
        "_get_redis_key": "79044ad32d3ed188",
        "EventNamespace.__init__": "c78bd829063b76c1",
        "_setup_event_processor": "cf9aeb0ef2e3833e",
    }
    assert [f.name for f in SocketRecord.__dataclass_fields__.values()] == ["instance_id", "sid"]


async def wait_present(manager: PresenceTokenManager) -> None:
    manager.ensure_presence()
    await asyncio.wait_for(manager._present.wait(), 5)


def test_a_tab_whose_worker_died_keeps_its_token_and_a_duplicate_tab_does_not(redis_url: str) -> None:
    async def scenario() -> None:
        worker_a = PresenceTokenManager(redis.asyncio.from_url(redis_url))
        worker_b = PresenceTokenManager(redis.asyncio.from_url(redis_url))
        try:
            await wait_present(worker_a)
            await wait_present(worker_b)
            assert await worker_a.link_token_to_sid("tab-1", "sid-a1") is None

            # The same tab opened twice while its first worker lives: a new token, as Reflex does.
            duplicate = await worker_b.link_token_to_sid("tab-1", "sid-b1")
            assert duplicate not in (None, "tab-1")

            # Worker A dies without cleaning up: its connections close, its socket record stays in Redis.
            assert await worker_b.redis.exists(worker_b._get_redis_key("tab-1"))
            await worker_a.close()
            assert not await worker_b.is_instance_alive(worker_a.instance_id)

            # The tab reconnects to worker B: it keeps its token (and so its state), and B now holds it.
            assert await worker_b.link_token_to_sid("tab-1", "sid-b2") is None
            assert worker_b.token_to_socket["tab-1"].sid == "sid-b2"
            assert await worker_b._get_token_owner("tab-1", refresh=True) == worker_b.instance_id
        finally:
            await worker_b.close()
            await worker_a.close()

    run_on_a_loop(scenario())


def test_only_reflexs_redis_token_manager_is_replaced() -> None:
    class Namespace:
        def __init__(self, manager: object) -> None:
            self._token_manager = manager

    class FakeApp:
        def __init__(self, manager: object) -> None:
            self.event_namespace = Namespace(manager)

    local = object()  # one worker without Redis: Reflex's LocalTokenManager stays
    app = FakeApp(local)
    install_presence_token_manager(app)
    assert app.event_namespace._token_manager is local


def test_keyspace_notifications_are_turned_on_again_after_redis_restarts(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, notify_keyspace_events="")  # Redis's default: none
    server.start()
    client = redis.Redis.from_url(server.url)

    def flags() -> str:
        try:
            return client.config_get("notify-keyspace-events")["notify-keyspace-events"]
        except redis.ConnectionError:
            return ""

    def wait_flags() -> None:
        deadline = time.monotonic() + 10
        while not flags():
            assert time.monotonic() < deadline, "keyspace notifications not turned on"
            time.sleep(0.05)

    async def scenario() -> None:
        manager = PresenceTokenManager(redis.asyncio.from_url(server.url))
        try:
            assert flags() == ""
            await wait_present(manager)
            await asyncio.to_thread(wait_flags)
            server.stop()
            server.start()
            await asyncio.to_thread(wait_flags)
            await asyncio.wait_for(manager._present.wait(), 10)
        finally:
            await manager.close()

    try:
        run_on_a_loop(scenario())
    finally:
        client.close()
        server.stop()
