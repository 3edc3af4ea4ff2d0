"""The in-app webhook worker (cf_portal/webhook_worker.py): it delivers due events to a real HTTP receiver on
127.0.0.1 (which checks each CF-Signature with `verify_signature`), keeps going after a failed pass, stops when
asked, and does not run when CF_WEBHOOK_WORKER=off."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from cf_portal import settings, webhook_worker
from cf_portal.models import WebhookEventStatus
from cf_portal.services import webhooks
from tests.support.events import run_on_a_loop
from tests.support.webhook_receiver import Receiver
from tests.unit.test_webhooks import World, receiver, world  # noqa: F401  (fixtures)


@pytest.fixture
def worker_setting(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """CF_WEBHOOK_WORKER as each test sets it, read afresh."""
    settings.get_settings.cache_clear()
    yield monkeypatch
    settings.get_settings.cache_clear()


async def until(condition, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_the_setting_defaults_to_the_app_and_can_be_turned_off(worker_setting: pytest.MonkeyPatch) -> None:
    worker_setting.delenv("CF_WEBHOOK_WORKER", raising=False)
    assert settings.Settings().webhook_worker == "app"
    worker_setting.setenv("CF_WEBHOOK_WORKER", "off")
    assert settings.Settings().webhook_worker == "off"
    worker_setting.setenv("CF_WEBHOOK_WORKER", "sometimes")
    with pytest.raises(ValueError, match="webhook_worker|CF_WEBHOOK_WORKER"):
        settings.Settings()


def test_the_app_worker_delivers_signed_events_and_stops_when_asked(
        world: World, receiver: Receiver, worker_setting: pytest.MonkeyPatch) -> None:  # noqa: F811
    worker_setting.setenv("CF_WEBHOOK_WORKER", "app")
    endpoint_id = world.endpoint(receiver, types=["seat.assigned"])
    world.assign(world.people[0])  # due at once

    async def scenario() -> None:
        async with webhook_worker.webhook_worker(engine=world.engine, interval_s=0.05):
            await until(lambda: len(receiver.received) == 1)
            world.assign(world.people[1])  # a later change: the next pass takes it
            await until(lambda: len(receiver.received) == 2)
        # Stopped: the worker's task is gone, and nothing more is delivered.
        assert [t for t in asyncio.all_tasks() if t.get_name() == "webhook worker"] == []
        world.assign(world.people[2])
        await asyncio.sleep(0.3)

    run_on_a_loop(asyncio.wait_for(scenario(), 20))
    assert receiver.refused == 0  # every signature verified with the endpoint's secret
    assert [e["type"] for e in receiver.events(f"/hooks/{endpoint_id}")] == ["seat.assigned", "seat.assigned"]
    assert [row.status for row in world.outbox()] == [WebhookEventStatus.DELIVERED.value] * 2 + [
        WebhookEventStatus.PENDING.value]


def test_a_failed_pass_is_logged_and_the_next_one_delivers(world: World, receiver: Receiver,  # noqa: F811
                                                            caplog: pytest.LogCaptureFixture) -> None:
    world.endpoint(receiver)
    world.assign(world.people[0])
    calls = []

    def flaky(engine: sa.Engine | None, **kwargs: int) -> dict[str, int]:
        calls.append(kwargs)
        if len(calls) == 1:
            raise sa.exc.OperationalError("SELECT", {}, Exception("database is locked"))
        return webhooks.deliver_due(engine, **kwargs)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(webhook_worker.deliver_periodically(stop, engine=world.engine, interval_s=0.05,
                                                                       deliver=flaky))
        await until(lambda: len(receiver.received) == 1)
        stop.set()
        await asyncio.wait_for(task, 5)

    with caplog.at_level(logging.ERROR, logger="cf_portal.webhook_worker"):
        run_on_a_loop(scenario())
    assert "webhook delivery pass failed" in caplog.text
    assert calls[0] == {"max_batches": 1}  # one batch a pass: shutdown never waits for more than one


def test_a_full_batch_is_followed_by_another_pass_at_once(world: World, receiver: Receiver,  # noqa: F811
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    world.endpoint(receiver, types=["seat.assigned"])
    world.assign(*world.people[:3])
    monkeypatch.setattr(webhooks, "BATCH", 2)

    def small_batches(engine: sa.Engine | None, **kwargs: int) -> dict[str, int]:
        return webhooks.deliver_due(engine, batch=2, **kwargs)

    async def scenario() -> float:
        stop = asyncio.Event()
        started = time.monotonic()
        task = asyncio.create_task(webhook_worker.deliver_periodically(stop, engine=world.engine, interval_s=30,
                                                                       deliver=small_batches))
        await until(lambda: len(receiver.received) == 3, timeout=10)
        took = time.monotonic() - started
        stop.set()
        await asyncio.wait_for(task, 5)
        return took

    assert run_on_a_loop(scenario()) < 10  # not 30 s: the second pass did not wait for the interval


def test_off_runs_no_worker(world: World, receiver: Receiver, worker_setting: pytest.MonkeyPatch) -> None:  # noqa: F811
    worker_setting.setenv("CF_WEBHOOK_WORKER", "off")
    world.endpoint(receiver)
    world.assign(world.people[0])

    async def scenario() -> None:
        async with webhook_worker.webhook_worker(engine=world.engine, interval_s=0.05):
            assert [t for t in asyncio.all_tasks() if t.get_name() == "webhook worker"] == []
            await asyncio.sleep(0.3)

    run_on_a_loop(scenario())
    assert receiver.received == []


def test_the_app_registers_the_worker_as_a_lifespan_task() -> None:
    from cf_portal.cf_portal import app

    assert webhook_worker.webhook_worker in app.get_lifespan_tasks()
