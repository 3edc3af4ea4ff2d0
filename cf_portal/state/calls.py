"""How a state calls the services: the one way, for every state.

A handler does three things, always in this order:

1. Under the state's lock, it resolves the member from this tab's session digest (never the cookie's token),
   with the permission it needs: `PortalState._require(needs)`, or `_read`/`_write(work, needs)` when the
   service also needs a session (`work(session, actor)`, in one unit of work).
2. Outside the lock (a background event, after `async with self:`), it runs the service with `run`: in a
   thread of the default pool, in the bounded pool of password work (`PASSWORDS`), or in the worker process
   (`PROCESS`, for long CPU-bound work such as a CSV file). The service is wrapped by `outcome`, which turns a
   refusal (`DomainError`) into what the state shows and any other failure into a logged, user-readable one.
3. Under the lock again, it assigns the outcome to its vars.

The payment provider is resolved here only (`provider()`, as FastAPI's deps.py injects a dependency): no
state module imports `cf_portal.payments` or `cf_portal.models` (tests/unit/test_layering.py); this one takes the
provider from `services/providers.py`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from cf_portal.services.auth import FormErrors
from cf_portal.services.errors import DomainError
from cf_portal.services.providers import PaymentProvider, get_provider
from cf_portal.state.password_work import run_password_work
from cf_portal.state.work import in_process

log = logging.getLogger(__name__)
T = TypeVar("T")


def provider() -> PaymentProvider:
    """The payment provider every service call of a state gets (tests swap `get_provider` here)."""
    return get_provider()


class Unexpected(DomainError):
    """A failure no rule foresaw: logged where it happened; the state shows this message instead."""


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What a service call came to: its `result`, or the `error` to show (an `Unexpected` one when it failed
    in a way no rule foresaw)."""

    result: T | None = None
    error: DomainError | None = None

    @property
    def message(self) -> str:
        return self.error.message if self.error is not None else ""


def errors_by_field(exc: DomainError, *, default: str = "form") -> dict[str, str]:
    """A refusal's messages by form field (several for a form's `FormErrors`); `default` for one without a field."""
    return exc.by_field() if isinstance(exc, FormErrors) else {exc.field or default: exc.message}


class Where(enum.Enum):
    THREAD = "thread"  # calls that mostly wait: the payment provider, the database
    PASSWORDS = "passwords"  # work that hashes a password: its own bounded pool (state/password_work.py)
    PROCESS = "process"  # long CPU-bound Python: the worker process (state/work.py)


async def run(work: Callable[..., T], *args: object, where: Where = Where.THREAD) -> T:
    """`work(*args)` off the event loop, where `where` says; call it outside `async with self:`."""
    if where is Where.PASSWORDS:
        return await run_password_work(work, *args)
    if where is Where.PROCESS:
        return await in_process(work, *args)
    return await asyncio.to_thread(work, *args)


def outcome(work: Callable[[], T], *, failed: str, log_as: str) -> Outcome[T]:
    """`work()`, its refusal kept for the state to show; any other exception is logged as `log_as` and shown as
    `failed` (written for the person: what happened, and what to do)."""
    try:
        return Outcome(result=work())
    except Exception as exc:  # noqa: BLE001 (sorted out by _failure)
        return _failure(exc, failed=failed, log_as=log_as)


async def call(work: Callable[..., T], *args: object, where: Where = Where.THREAD, failed: str,
               log_as: str) -> Outcome[T]:
    """`outcome` of `work(*args)` run off the event loop, where `where` says (outside `async with self:`)."""
    try:
        return Outcome(result=await run(work, *args, where=where))
    except Exception as exc:  # noqa: BLE001 (sorted out by _failure)
        return _failure(exc, failed=failed, log_as=log_as)


def _failure(exc: Exception, *, failed: str, log_as: str) -> Outcome:
    """Called while `exc` is handled: a refusal is shown as it is, anything else is logged and shown as `failed`."""
    if isinstance(exc, DomainError):
        return Outcome(error=exc)
    log.exception(log_as)
    return Outcome(error=Unexpected(failed))
