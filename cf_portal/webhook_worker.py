"""The in-app outbox workers: the app delivers its outgoing webhooks (and emails: `email_worker`) itself, so a demo or a single-process install
needs no command of its own (CF_WEBHOOK_WORKER=app, the default; "off" when `cli deliver-webhooks --loop` runs as
its own process).

It is a lifespan task of the app (cf_portal/cf_portal.py): every few seconds one pass of
`services.webhooks.deliver_due` runs in a thread, so the event loop never waits on a receiver. Several app
processes may each run one: `deliver_due` claims each event for one worker at a time. On shutdown the loop is told
to stop and the pass under way is given a few seconds to end; an event it had claimed and not finished is claimed
again when its claim ends (delivery is at least once).

The email outbox (services/emails.py) has the same shape and runs in the same loop, `deliver_periodically` with
`emails.deliver_due` (CF_EMAIL_WORKER, `cli deliver-emails --loop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import sqlalchemy as sa

from cf_portal.services import emails, webhooks
from cf_portal.settings import get_settings

log = logging.getLogger(__name__)

INTERVAL_S = 5.0  # between passes when nothing more is due
SHUTDOWN_WAIT_S = 12.0  # a pass under way may be waiting on a receiver (webhooks.TIMEOUT_S)


async def deliver_periodically(stop: asyncio.Event, *, engine: sa.Engine | None = None,
                               interval_s: float = INTERVAL_S,
                               deliver: Callable[..., dict[str, int]] = webhooks.deliver_due,
                               batch: int | None = None, what: str = "webhook") -> None:
    """A pass of `deliver` (one batch) in a thread, then another at once if the batch was full, else after
    `interval_s` seconds; until `stop` is set. A failed pass (the database away for a moment) is logged and the
    next one tries again."""
    while not stop.is_set():
        try:
            counts = await asyncio.to_thread(deliver, engine, max_batches=1)
        except Exception:
            log.exception("%s delivery pass failed", what)
            counts = {}
        if sum(counts.values()) >= (webhooks.BATCH if batch is None else batch):
            continue  # more may be due
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


@contextlib.asynccontextmanager
async def webhook_worker(*, engine: sa.Engine | None = None, interval_s: float = INTERVAL_S,
                         shutdown_wait_s: float = SHUTDOWN_WAIT_S) -> AsyncIterator[None]:
    """The app's lifespan task: the worker runs while the app does, when CF_WEBHOOK_WORKER is "app"."""
    async with _outbox_worker("webhook", get_settings().webhook_worker == "app", webhooks.deliver_due,
                              None, engine=engine, interval_s=interval_s, shutdown_wait_s=shutdown_wait_s):
        yield


@contextlib.asynccontextmanager
async def email_worker(*, engine: sa.Engine | None = None, interval_s: float = INTERVAL_S,
                       shutdown_wait_s: float = SHUTDOWN_WAIT_S) -> AsyncIterator[None]:
    """The app's lifespan task for the email outbox, when CF_EMAIL_WORKER is "app" (`make run` delivers)."""
    async with _outbox_worker("email", get_settings().email_worker == "app", emails.deliver_due, emails.BATCH,
                              engine=engine, interval_s=interval_s, shutdown_wait_s=shutdown_wait_s):
        yield


@contextlib.asynccontextmanager
async def _outbox_worker(what: str, enabled: bool, deliver: Callable[..., dict[str, int]], batch: int | None, *,
                         engine: sa.Engine | None, interval_s: float, shutdown_wait_s: float) -> AsyncIterator[None]:
    if not enabled:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(deliver_periodically(stop, engine=engine, interval_s=interval_s, deliver=deliver,
                                                    batch=batch, what=what), name=f"{what} worker")
    log.info("%s worker started (every %g s)", what, interval_s)
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), shutdown_wait_s)
        except TimeoutError:
            log.warning("%s worker: the pass under way did not end within %g s", what, shutdown_wait_s)
        else:
            log.info("%s worker stopped", what)
