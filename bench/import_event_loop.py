"""Does a 20,000-row CSV import stall the other tabs? Prints markdown tables (issue 10, finding 9).

One process and one event loop, as one `reflex run` worker has. Tab A, the demo owner, previews and then imports
a 20,000-row CSV through EmployeesState's own handlers. Meanwhile tab B, another member of the account, sends an
event every 25 ms (LicensesState.load: the member resolved from the session, the licenses read, as opening the
Licenses page does), and each answer is timed from the moment the event was due, so an event that waited for a
busy loop counts its wait. For comparison, "before" runs the same work the way the handlers did before this fix
(the service called on the loop), and "thread" runs the handlers with the worker process swapped for a thread
(`asyncio.to_thread`, whose GIL the loop has to share); the demo account is reset between runs.

    .venv/bin/python bench/import_event_loop.py                  # SQLite, 20,000 rows
    DB=postgres .venv/bin/python bench/import_event_loop.py      # a throwaway PostgreSQL
    .venv/bin/python bench/import_event_loop.py --rows 5000 --no-before
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import reflex as rx  # noqa: E402

from bench.harness import percentile  # noqa: E402

INTERVAL_S = 0.025
IDLE_S = 1.5
TARGET_P95_MS = 100


def csv_of(rows: int, tag: str) -> bytes:
    lines = ["name,email,department"] + [f"Person {tag} {i},person{i}@{tag}.example,Department {i % 12}"
                                         for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


async def answered_late(tab_b: rx.State, work: Awaitable[object]) -> tuple[list[float], float]:
    """Tab B's events during `work`: how late each was answered (ms), and how long `work` took (s)."""
    from cf_portal.state.licenses import LicensesState
    from tests.state.conftest import substate
    from tests.support.events import run_event

    licenses = substate(tab_b, LicensesState)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    finished_at = float("inf")
    late: list[float] = []

    async def other_tab() -> None:
        # Events keep coming every INTERVAL_S whatever the loop does: those due while it was busy are answered
        # late, each timed from when it was due.
        due = loop.time()
        while not done.is_set() or due + INTERVAL_S <= finished_at:
            due += INTERVAL_S
            await asyncio.sleep(max(0.0, due - loop.time()))
            await run_event(licenses, "load")
            late.append((loop.time() - due) * 1000)

    async def timed_work() -> float:
        nonlocal finished_at
        started = time.perf_counter()
        try:
            await work
        finally:
            finished_at = loop.time()
            done.set()
        return time.perf_counter() - started

    _, took = await asyncio.gather(other_tab(), timed_work())
    return late, took


async def measure(rows: int, *, before: bool) -> list[tuple[str, str, float, list[float]]]:
    from datetime import UTC, datetime

    from cf_portal.db import session_scope
    from cf_portal.payments import get_provider
    from cf_portal.services import employee_import
    from cf_portal.services.demo import reset_template
    from cf_portal.state import work
    from cf_portal.state.employees import EmployeesState, ImportState
    from tests.state.conftest import demo_owner_id, new_root_state, sign_in_as, substate
    from tests.support.events import run_event

    def tab(user_id: int) -> rx.State:
        root = new_root_state()
        sign_in_as(root, user_id)
        return root

    with session_scope(write=False) as session:
        from sqlmodel import select

        from cf_portal.models import User

        second = session.exec(select(User.id).where(User.email == "auditor@acme-security.example")).one()
    tab_a, tab_b = tab(demo_owner_id()), tab(second)
    employees = substate(tab_a, EmployeesState)
    await run_event(employees, "load")
    importer = substate(tab_a, ImportState)
    results = []

    async def idle() -> None:
        await asyncio.sleep(IDLE_S)

    late, took = await answered_late(tab_b, idle())
    results.append(("—", "idle (nothing else running)", took, late))

    modes: list[tuple[str, Callable[[bytes], Awaitable[object]], Callable[[], Awaitable[object]]]] = []

    async def handler_preview(data: bytes) -> None:
        upload = rx.UploadFile(file=io.BytesIO(data), path=Path("people.csv"))
        await run_event(importer, "preview_csv", [upload])
        assert importer.preview.can_import, importer.preview

    async def handler_import() -> None:
        events = await run_event(importer, "import_csv")
        assert "imported" in str(events[-1]), events

    modes.append(("after (worker process)", handler_preview, handler_import))
    if before:
        actor = employees._require()
        pending: dict[str, bytes] = {}

        async def on_loop_preview(data: bytes) -> None:
            assert employee_import.preview_file(actor.account_id, data).can_import
            pending["data"] = data

        async def on_loop_import() -> None:
            assert employee_import.import_file(actor, pending["data"]).count == rows

        modes.append(("thread", handler_preview, handler_import))
        modes.append(("before (on the loop)", on_loop_preview, on_loop_import))

    process_pool = work._executor
    for number, (mode, preview, run_import) in enumerate(modes):
        if mode == "thread":
            threads = ThreadPoolExecutor(1)
            work._executor = lambda threads=threads: threads
        else:
            work._executor = process_pool
        data = csv_of(rows, f"run{number}")
        late, took = await answered_late(tab_b, preview(data))
        results.append((mode, f"preview of {rows:,} rows", took, late))
        late, took = await answered_late(tab_b, run_import())
        results.append((mode, f"import of {rows:,} rows", took, late))
        reset_template(None, get_provider(), now=datetime.now(UTC))
        await run_event(employees, "load")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--no-before", dest="before", action="store_false",
                        help="skip the comparison with the work on the loop")
    args = parser.parse_args()
    kind = os.environ.get("DB", "sqlite")
    with ExitStack() as stack:
        if kind == "postgres":
            from tests.support.postgres import throwaway_postgres

            url = stack.enter_context(throwaway_postgres())
        else:
            url = f"sqlite:///{stack.enter_context(tempfile.TemporaryDirectory())}/bench.db"
        os.environ["REFLEX_DB_URL"], os.environ["CF_DEMO_MODE"] = url, "true"
        from cf_portal import db, settings
        from cf_portal.cli import migrate
        from cf_portal.services.seed import seed_demo

        settings.get_settings.cache_clear()
        db.get_engine.cache_clear()
        migrate()
        with db.session_scope() as session:
            seed_demo(session)
        results = asyncio.run(measure(args.rows, before=args.before))
        db.get_engine().dispose()

    print(f"## A {args.rows:,}-row CSV import and another tab's events ({kind}, {os.cpu_count()} cores; "
          f"tab B sends LicensesState.load every {INTERVAL_S * 1000:.0f} ms)\n")
    print(f"| handlers | while tab A runs | took s | tab B events | p50 ms | p95 ms | max ms | "
          f"p95 ≤ {TARGET_P95_MS} ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for mode, phase, took, late in results:
        p95 = percentile(late, 0.95)
        print(f"| {mode} | {phase} | {took:.2f} | {len(late)} | {percentile(late, 0.5):.1f} | {p95:.1f} | "
              f"{max(late):.1f} | {'yes' if p95 <= TARGET_P95_MS else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
