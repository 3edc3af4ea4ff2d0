"""Event handlers run as Reflex runs them, without a server: state tests and the in-process benchmarks."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import reflex as rx
import wrapt

T = TypeVar("T")


class _UnlockedProxy(wrapt.ObjectProxy):
    """What a background handler gets as `self`, minus the state manager: `async with self` only marks where
    the handler would hold this tab's lock (one test, one tab: nothing else can change the state meanwhile)."""

    async def __aenter__(self) -> _UnlockedProxy:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


async def run_event(state: rx.State, handler: str, *args: object) -> list:
    """Run an event handler on the running event loop as Reflex runs it (sync, async, generators; background
    ones through a proxy) and return the events it returned or yielded."""
    event_handler = type(state).event_handlers[handler]
    result = event_handler.fn(_UnlockedProxy(state) if event_handler.is_background else state, *args)
    if inspect.isasyncgen(result):
        events = [event async for event in result]
    elif inspect.isawaitable(result):
        events = [await result]
    elif inspect.isgenerator(result):
        events = list(result)
    else:
        events = [result]
    return [event for event in events if event is not None]


def run_on_a_loop(coroutine: Coroutine[object, object, T]) -> T:
    """Run `coroutine` on a new event loop, in a thread of its own: after the browser tests, pytest's main
    thread has Playwright's loop running."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def run_now(state: rx.State, handler: str, *args: object) -> list:
    """`run_event` on a loop of its own, from synchronous test code."""
    return run_on_a_loop(run_event(state, handler, *args))
