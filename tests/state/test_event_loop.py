"""Slow handlers leave the event loop free: every tab of a worker shares one loop, so work that can take long
(a 20,000-row CSV, an export, resetting the demo) runs in the worker process or a thread, never on the loop
(in these tests the worker process is a thread too: see conftest.work_in_a_thread).

No clock is read here. The slow call is held until a coroutine *on the loop* lets it go: when the call runs
in a thread, that coroutine runs and lets it go at once; when it runs on the loop, the coroutine cannot run
until the call returns, so the call waits in vain and fails with `LoopBlocked` (after GIVE_UP_S, a time that
is only ever reached by a broken handler). How fast the loop answers is measured in
bench/import_event_loop.py.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import reflex as rx

from cf_portal.services import demo, employee_import, employees
from cf_portal.state.account_settings import AccountSettingsState
from cf_portal.state.employees import EmployeesState, ImportState, MoveState
from tests.state.conftest import substate
from tests.state.test_access import toast
from tests.support.events import run_event, run_now, run_on_a_loop

GIVE_UP_S = 10
CSV = b"name,email,department\nCasey Import,casey@acme-security.example,Sales\nDev Import,dev@acme-security.example,\n"


class LoopBlocked(AssertionError):
    pass


class LoopGate:
    """Wraps a slow function: each call waits until `open_from_the_loop` (a coroutine) has run."""

    def __init__(self) -> None:
        self.called, self.opened = threading.Event(), threading.Event()
        self.threads: list[int] = []

    def wrap(self, slow: Callable) -> Callable:
        def gated(*args: object, **kwargs: object) -> object:
            self.threads.append(threading.get_ident())
            self.called.set()
            if not self.opened.wait(timeout=GIVE_UP_S):
                raise LoopBlocked(f"{slow.__name__} ran on the event loop: nothing else could run meanwhile")
            return slow(*args, **kwargs)
        return gated

    async def open_from_the_loop(self) -> None:
        for _ in range(GIVE_UP_S * 1000):
            if self.called.is_set():
                break
            await asyncio.sleep(0.001)
        self.opened.set()

    def run(self, handler_run: asyncio.Future | object) -> list:
        async def both() -> list:
            loop_thread = threading.get_ident()
            events, _ = await asyncio.gather(handler_run, self.open_from_the_loop())
            assert self.threads and loop_thread not in self.threads
            return events
        return run_on_a_loop(both())


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Callable[[object, str], LoopGate]:
    def gate_on(module: object, name: str) -> LoopGate:
        gate = LoopGate()
        monkeypatch.setattr(module, name, gate.wrap(getattr(module, name)))
        return gate
    return gate_on


def employees_page(root: rx.State) -> EmployeesState:
    state = substate(root, EmployeesState)
    run_now(state, "load")
    return state


def test_the_csv_preview_runs_off_the_event_loop(root_state: rx.State, gate: Callable) -> None:
    employees_page(root_state)
    importer = substate(root_state, ImportState)
    upload = rx.UploadFile(file=io.BytesIO(CSV), path=Path("people.csv"))
    gate(employee_import, "preview_import").run(run_event(importer, "preview_csv", [upload]))
    assert (importer.preview.valid_rows, importer.preview.can_import) == (2, True)


def test_the_csv_import_runs_off_the_event_loop(root_state: rx.State, gate: Callable) -> None:
    state = employees_page(root_state)
    importer = substate(root_state, ImportState)
    importer._data = CSV  # as a preview leaves it
    events = gate(employee_import, "apply_import").run(run_event(importer, "import_csv"))
    assert toast(events[-1]) == ("success", "2 employees imported.")
    assert state.total == 29 and importer.importing is False


def test_the_export_runs_off_the_event_loop(root_state: rx.State, gate: Callable) -> None:
    state = employees_page(root_state)
    events = gate(employee_import, "export_assignments_csv").run(run_event(state, "export_csv"))
    assert "license-assignments.csv" in str(events[-1])


def test_resetting_the_demo_runs_off_the_event_loop(root_state: rx.State, gate: Callable) -> None:
    state = substate(root_state, AccountSettingsState)
    events = gate(demo, "reset_demo_account").run(run_event(state, "reset_demo"))
    assert toast(events[-1]) == ("success", "The demo data is back to the seed.")


@pytest.mark.parametrize(("handler", "args"), [
    ("load", ()), ("set_search", ("patel",)), ("set_department", ("Finance",)), ("set_product_filter", ("1",)),
    ("set_without_license", (True,)), ("set_show_inactive", (True,)), ("sort_by", ("email",)),
    ("next_page", ()), ("set_query", ("patel",)),
])
def test_the_grids_queries_run_off_the_event_loop(root_state: rx.State, gate: Callable, handler: str,
                                                  args: tuple) -> None:
    """Each waits for the database (a page, a capped count: tens of ms at 100,000 employees, docs/benchmarks.md)."""
    state = employees_page(root_state)
    target = substate(root_state, MoveState) if handler == "set_query" else state  # the Move dialog's search
    gate(employees, "search_holders").run(run_event(target, handler, *args))
    assert state.loaded
