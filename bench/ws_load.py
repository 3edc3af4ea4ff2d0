"""Many tabs at once over the app's websocket (issue 14, "Many people at once"; prints a markdown table).

The app's production build runs (tests/support/app.py `running_app`, from a copy of the checkout) in one of two
setups, and one process here plays N browser tabs over Reflex's own protocol (socket.io at /_event, the
events and deltas the compiled frontend's state.js sends and reads; python-socketio's AsyncClient):

- **sqlite**: one server worker, SQLite, Reflex's state in the worker's memory;
- **postgres**: two server workers (`GRANIAN_WORKERS=2`), PostgreSQL (a throwaway cluster), and Redis for
  Reflex's state (`REFLEX_REDIS_URL`; Debian's `redis-server` on a free loopback port).

`DB=postgres` picks the second (as the test suite's PostgreSQL pass does), `--setup` either.

Every tab signs in as the demo owner the way a browser finishes signing in: a session and its one-time hand-off
code are made as the sign-in service makes them, and the tab trades the code at `POST /auth/session` for its
session cookie (the password hash itself, 0.1 s of CPU, is left out: it runs in its own pool and is not what is
measured here). The tab then opens its websocket with that cookie, as the browser does, the page's hydrate
event riding in the socket.io CONNECT packet. All tabs of a run share one account and one license of 1.5 × N
seats, so their seat changes race for the same seats. Each tab then loops, with a think time of `--think`
seconds on average (0.5–1.5 ×) between events, until `--seconds` have passed:

1. on Add License: two quantity changes, a coupon typed (the whole code, as the debounced field sends it) and
   cleared: each one event whose delta carries the new price panel;
2. opens Employees (a navigation: hydrate + the page's on_load, until `is_hydrated`);
3. assigns the license to the next of its three own employees (open the dialog, choose the license, Assign);
   the license may be full: that refusal is the app's answer, not an error;
4. when it holds two seats, frees the older one (open the person's details, Unassign, confirm, close; freed
   when the details come back without the seat);
5. opens Add License again.

**Latency** is one event's: from the event sent to the delta that shows its outcome received (a tab waits
for it before its next event, as a person does). "events" are steps 1, 3 and 4; "page" is a navigation, from the
hydrate sent to the on_load's last delta. **Errors**: an event unanswered after 15 s, a dropped websocket, a
refusal other than a full license, and any error line in the server's log. **Counted afterwards** from the
database, per run: the license's `seats_assigned`, its open seats and every tab's own record must agree (seats
assigned = successful assigns − successful unassigns, every assign one row, no person holding the license
twice, never more seats than bought). **CPU**: the server's processes' (the app's workers; PostgreSQL and
Redis apart) user + system time over the phase, per event sent (navigations count as one event each here,
although each is a hydrate and an on_load); Redis commands per event from its INFO counters. "load" is the
1-minute load average when the run started (this machine may be shared); the load generator's own CPU use is
printed too: it shares the machine's cores with the server.

    .venv/bin/python bench/ws_load.py                         # 25, 100, 200 tabs: 1 worker + SQLite
    DB=postgres .venv/bin/python bench/ws_load.py             # the same: 2 workers + PostgreSQL + Redis
    .venv/bin/python bench/ws_load.py --quick                 # 4 tabs for a few seconds: that it works
    .venv/bin/python bench/ws_load.py --tabs 200 --profile /tmp/prof   # and where the workers' CPU goes

`--profile DIR` samples each app worker with py-spy (`--gil`: only the thread holding the GIL, i.e. Python's
CPU) over each run's working phase, keeps the raw stacks in DIR and prints the heaviest functions to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import psutil
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import SERVER_ERROR_MARKERS, cpu_seconds, percentile, running_app  # noqa: E402
from tests.support.postgres import throwaway_postgres  # noqa: E402
from tests.support.redis_server import throwaway_redis  # noqa: E402

NAMESPACE = "/_event"
ADD_LICENSE, EMPLOYEES = "/licenses/new", "/employees"
COUPON = "WELCOME20"
EMPLOYEES_PER_TAB = 3
ANSWER_TIMEOUT_S = 15.0
TARGET_P95_MS = 150.0


def seats_for(tabs: int) -> int:
    """The license's seats: each tab holds one or two at a time, so the license is full now and then."""
    return max(2, tabs * 3 // 2)


def bench_email(tabs: int, tab: int, person: int) -> str:
    return f"r{tabs}t{tab}p{person}@ws-load.bench.example"


def license_name(tabs: int) -> str:
    return f"Load test {tabs} tabs"


# --- The app's state names (what events are addressed to and deltas keyed by) ---------------------------------

class Names:
    def __init__(self) -> None:
        import reflex as rx

        from cf_portal.state.add_license import AddLicenseState
        from cf_portal.state.employees import AssignState, EmployeesState

        self.root = rx.State.get_full_name()
        self.add_license = AddLicenseState.get_full_name()
        self.employees = EmployeesState.get_full_name()
        self.assign = AssignState.get_full_name()


def vars_of(update: dict, state: str) -> dict:
    """The vars of one state in an update's delta, by their Python names."""
    raw = (update.get("delta") or {}).get(state) or {}
    return {name.removesuffix("_rx_state_"): value for name, value in raw.items()}


def hydrated(update: dict) -> bool:
    return any(vars_of(update, state).get("is_hydrated") is True for state in (update.get("delta") or {}))


# --- Servers ------------------------------------------------------------------------------------------------

def redis_info(port: int, section: str = "stats") -> dict[str, str] | None:
    """One section of Redis's INFO as a dict (None when it does not answer): a raw RESP exchange, no client
    needed."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.sendall(f"*2\r\n$4\r\nINFO\r\n${len(section)}\r\n{section}\r\n".encode())
            data = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
                if data.startswith(b"$"):
                    size = int(data[1:data.index(b"\r\n")])
                    if len(data) >= data.index(b"\r\n") + 2 + size:
                        break
    except OSError:
        return None
    pairs = (line.split(":", 1) for line in data.decode().splitlines() if ":" in line)
    return {k: v for k, v in pairs}


def commands_by_name(port: int) -> Counter:
    """How many times Redis ran each command so far (INFO commandstats: `cmdstat_get:calls=12,...`)."""
    stats = redis_info(port, "commandstats") or {}
    return Counter({name.removeprefix("cmdstat_"): int(value.split(",", 1)[0].removeprefix("calls="))
                    for name, value in stats.items() if name.startswith("cmdstat_")})


def app_pids(app_dir: Path) -> list[int]:
    """The app's processes (reflex run, granian and its workers): those running from its folder."""
    found = []
    for process in psutil.process_iter(["pid", "cwd"]):
        try:
            if process.info["cwd"] and Path(process.info["cwd"]) == app_dir:
                found.append(process.info["pid"])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def postgres_pids(url: str) -> list[int]:
    port = url.rsplit(":", 1)[1].split("/", 1)[0]
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if cmdline and cmdline[0].endswith("postgres") and f"-p {port}" in " ".join(cmdline):
            found.append(process.info["pid"])
    return found


# --- The data: a license per run and three employees per tab, in the demo account ---------------------------

def prepare(tab_counts: list[int]) -> Callable[[str], None]:
    def load(url: str) -> None:
        from sqlmodel import select

        from cf_portal.db import make_engine, session_scope
        from cf_portal.models import Employee, License, Plan, User
        from cf_portal.services.seed import DEMO_OWNER_EMAIL

        engine = make_engine(url)
        now = datetime.now(UTC)
        with session_scope(engine) as session:
            owner = session.exec(select(User).where(User.email == DEMO_OWNER_EMAIL)).one()
            plan = session.exec(select(Plan).order_by(Plan.id)).first()
            for tabs in tab_counts:
                session.add(License(account_id=owner.account_id, plan_id=plan.id, reference_name=license_name(tabs),
                                    quantity=seats_for(tabs), unit_amount=plan.unit_amount, currency=plan.currency,
                                    status="active", seats_assigned=0, created_at=now,
                                    first_charge_amount=plan.unit_amount * seats_for(tabs),
                                    period_start=now - timedelta(days=1), period_end=now + timedelta(days=29)))
                for tab in range(tabs):
                    for person in range(EMPLOYEES_PER_TAB):
                        session.add(Employee(account_id=owner.account_id, name=f"Load {tabs} tab {tab} person {person}",
                                             email=bench_email(tabs, tab, person), department="Load test",
                                             created_at=now))
        engine.dispose()
    return load


def ids_of_run(url: str, tabs: int) -> tuple[int, list[list[int]]]:
    """The run's license id and each tab's employee ids."""
    from sqlmodel import select

    from cf_portal.db import make_engine, session_scope
    from cf_portal.models import Employee, License

    engine = make_engine(url)
    with session_scope(engine, write=False) as session:
        license_id = session.exec(select(License.id).where(License.reference_name == license_name(tabs))).one()
        by_email = dict(session.exec(select(Employee.email, Employee.id)
                                     .where(Employee.email.like(f"r{tabs}t%@ws-load.bench.example"))).all())
    engine.dispose()
    return license_id, [[by_email[bench_email(tabs, t, p)] for p in range(EMPLOYEES_PER_TAB)] for t in range(tabs)]


def handoff_codes(url: str, count: int) -> list[str]:
    """`count` sessions of the demo owner, each with its one-time hand-off code, as signing in makes them."""
    from sqlmodel import select

    from cf_portal.db import make_engine, session_scope
    from cf_portal.models import User
    from cf_portal.services.auth import hand_off, start_session
    from cf_portal.services.seed import DEMO_OWNER_EMAIL

    engine = make_engine(url)
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        user_id = session.exec(select(User.id).where(User.email == DEMO_OWNER_EMAIL)).one()
        codes = [hand_off(session, start_session(session, user_id=user_id, remember=False, now=now), now=now)
                 for _ in range(count)]
    engine.dispose()
    return codes


def count_seats(url: str, license_id: int) -> dict:
    import sqlalchemy as sa

    from cf_portal.db import make_engine, session_scope
    from cf_portal.models import License, SeatAssignment

    engine = make_engine(url)
    with session_scope(engine, write=False) as session:
        lic = session.get(License, license_id)
        rows = session.execute(sa.select(SeatAssignment.employee_id, SeatAssignment.unassigned_at)
                               .where(SeatAssignment.license_id == license_id)).all()
        counted = dict(quantity=lic.quantity, seats_assigned=lic.seats_assigned, rows=len(rows))
    engine.dispose()
    open_rows = [employee for employee, ended in rows if ended is None]
    counted.update(open=len(open_rows), open_holders=Counter(open_rows))
    return counted


# --- A tab ----------------------------------------------------------------------------------------------------

class Unanswered(Exception):
    pass


@dataclass
class Tally:
    samples: dict[str, list[float]] = field(default_factory=lambda: {"price": [], "seats": [], "page": []})
    errors: Counter = field(default_factory=Counter)
    refused_full: int = 0
    events: int = 0


class Tab:
    def __init__(self, base: str, names: Names, cookie: str, employees: list[int], license_id: int,
                 tally: Tally, rng: random.Random, think_s: float) -> None:
        self.base, self.names, self.cookie = base, names, cookie
        self.employees, self.license_id = employees, license_id
        self.tally, self.rng, self.think_s = tally, rng, think_s
        self.held: list[int] = []  # employee ids holding a seat of the license, oldest first
        self.assigned = self.unassigned = 0
        self.unsure = 0  # assigns or unassigns whose answer never came: their outcome is unknown here
        self.turn = 0
        self.updates: asyncio.Queue = asyncio.Queue()
        # The cookie goes in the handshake's headers as it is (engine.io's own cookie jar would refuse an IP host).
        self.sio = socketio.AsyncClient(reconnection=False,
                                        websocket_extra_options={"headers": {"Cookie": f"cf_session={cookie}"}})
        self.sio.on("event", self._received, namespace=NAMESPACE)
        self.sio.on("disconnect", self._dropped, namespace=NAMESPACE)
        self.closing = False

    async def _received(self, update: dict) -> None:
        self.updates.put_nowait((time.perf_counter(), update))

    async def _dropped(self, *args: object) -> None:
        if not self.closing:
            self.tally.errors["websocket dropped"] += 1

    def _event(self, name: str, payload: dict, path: str) -> dict:
        return {"name": name, "payload": payload, "router_data": {"pathname": path, "asPath": path}}

    async def connect(self) -> None:
        """Open the websocket on Add License, as a browser tab does, and wait until the page has loaded."""
        boot = self._event(f"{self.names.root}.hydrate_and_load", {}, ADD_LICENSE)
        await self.sio.connect(f"{self.base}?token={uuid.uuid4()}", transports=["websocket"], namespaces=[NAMESPACE], socketio_path="/_event",
                               auth={"event": boot}, wait_timeout=60)
        await self._until(hydrated, time.perf_counter(), timeout=60)

    async def close(self) -> None:
        self.closing = True
        await self.sio.disconnect()

    async def _until(self, done: Callable[[dict], bool], sent: float, timeout: float = ANSWER_TIMEOUT_S) -> tuple[
            float, dict]:
        deadline = sent + timeout
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise Unanswered
            try:
                received, update = await asyncio.wait_for(self.updates.get(), left)
            except TimeoutError:
                raise Unanswered from None
            if done(update):
                return (received - sent) * 1000, update

    async def send(self, kind: str, state: str, handler: str, payload: dict, path: str,
                   done: Callable[[dict], bool]) -> dict:
        """One event, timed until the delta `done` recognises."""
        while not self.updates.empty():
            self.updates.get_nowait()  # anything left of earlier events (toasts' follow-ups)
        sent = time.perf_counter()
        await self.sio.emit("event", self._event(f"{state}.{handler}", payload, path), namespace=NAMESPACE)
        self.tally.events += 1
        ms, update = await self._until(done, sent)
        self.tally.samples[kind].append(ms)
        return update

    async def think(self) -> None:
        await asyncio.sleep(self.rng.uniform(0.5, 1.5) * self.think_s)

    async def open_page(self, path: str) -> None:
        await self.send("page", self.names.root, "hydrate_and_load", {}, path, hydrated)

    # --- what a person does ---

    async def price(self) -> None:
        al = self.names.add_license
        for _ in range(2):
            quantity = str(self.rng.randint(1, 60))
            await self.send("price", al, "set_quantity", {"value": quantity}, ADD_LICENSE,
                            lambda u, q=quantity: vars_of(u, al).get("quantity") == q and "panel" in vars_of(u, al))
            await self.think()
        for code in (COUPON, ""):
            update = await self.send("price", al, "set_coupon_code", {"value": code}, ADD_LICENSE,
                                     lambda u, c=code: vars_of(u, al).get("coupon_code") == c)
            panel = vars_of(update, al).get("panel") or {}
            if code and panel.get("coupon_status") != "valid":
                self.tally.errors[f"coupon not accepted: {panel.get('coupon_message') or panel}"[:120]] += 1
            await self.think()

    async def assign_next(self) -> None:
        n, emp = self.names, self.employees[self.turn % len(self.employees)]
        self.turn += 1
        if emp in self.held:
            return
        await self.send("seats", n.assign, "open_for", {"keys": [f"employee:{emp}"]}, EMPLOYEES,
                        lambda u: vars_of(u, n.assign).get("is_open") is True)
        await self.think()
        lic = str(self.license_id)
        await self.send("seats", n.assign, "set_license", {"value": lic}, EMPLOYEES,
                        lambda u: vars_of(u, n.assign).get("license_id") == lic)
        await self.think()
        try:
            update = await self.send("seats", n.assign, "assign", {}, EMPLOYEES,
                                     lambda u: vars_of(u, n.assign).get("is_open") is False
                                     or bool(vars_of(u, n.assign).get("error")))
        except Unanswered:
            self.unsure += 1
            raise
        error = vars_of(update, n.assign).get("error")
        if not error:
            self.held.append(emp)
            self.assigned += 1
            return
        if "seat" in error and ("left on this license" in error):
            self.tally.refused_full += 1
        else:
            self.tally.errors[f"assign refused: {error}"[:120]] += 1
        await self.think()
        await self.send("seats", n.assign, "set_open", {"is_open": False}, EMPLOYEES,
                        lambda u: vars_of(u, n.assign).get("is_open") is False)

    async def free_oldest(self) -> None:
        n, emp = self.names, self.held[0]
        key = f"employee:{emp}"
        update = await self.send("seats", n.employees, "open_details", {"key": key}, EMPLOYEES,
                                 lambda u: (vars_of(u, n.employees).get("details") or {}).get("key") == key)
        seats = [s for s in vars_of(update, n.employees)["details"]["seats"] if s["license_id"] == self.license_id]
        if len(seats) != 1:
            self.tally.errors[f"details showed {len(seats)} seats of the license"] += 1
            return
        seat = seats[0]
        await self.think()
        await self.send("seats", n.employees, "ask_unassign", {"seat_id": seat["assignment_id"], "label": seat["label"]},
                        EMPLOYEES, lambda u: vars_of(u, n.employees).get("unassign_seat_id") == seat["assignment_id"])
        await self.think()
        try:
            update = await self.send("seats", n.employees, "unassign", {}, EMPLOYEES,
                                     lambda u: vars_of(u, n.employees).get("unassign_seat_id") == 0)
        except Unanswered:
            self.unsure += 1
            raise
        # Freed: the open details are shown again, without the seat (a refusal only shows a toast).
        details = vars_of(update, n.employees).get("details")
        if details is not None and not any(s["license_id"] == self.license_id for s in details["seats"]):
            self.held.pop(0)
            self.unassigned += 1
        else:
            self.tally.errors[f"unassign refused: {json.dumps(update.get('events') or [])[:100]}"] += 1
        await self.think()
        await self.send("seats", n.employees, "set_details_open", {"is_open": False}, EMPLOYEES,
                        lambda u: vars_of(u, n.employees).get("details_open") is False)

    async def work(self, until: float) -> None:
        await asyncio.sleep(self.rng.uniform(0, 2 * self.think_s))  # tabs do not all start at once
        on_add_license = True
        while time.monotonic() < until:
            try:
                if not on_add_license:
                    await self.open_page(ADD_LICENSE)
                    on_add_license = True
                    await self.think()
                await self.price()
                await self.open_page(EMPLOYEES)
                on_add_license = False
                await self.think()
                await self.assign_next()
                await self.think()
                if len(self.held) >= 2:
                    await self.free_oldest()
                    await self.think()
            except Unanswered:
                self.tally.errors["no answer within 15 s"] += 1
            except (socketio.exceptions.SocketIOError, ConnectionError) as exc:
                self.tally.errors[f"websocket: {type(exc).__name__}"] += 1
                return


async def sign_in(session: aiohttp.ClientSession, base: str, code: str) -> str:
    """Trade a hand-off code for the session cookie at /auth/session, as the sign-in page's form does."""
    async with session.post(f"{base}/auth/session", data={"code": code, "next": ADD_LICENSE},
                            headers={"Origin": base}, allow_redirects=False) as response:
        for value in response.headers.getall("Set-Cookie", []):
            name, _, rest = value.partition("=")
            if name == "cf_session" and rest.split(";", 1)[0]:
                return rest.split(";", 1)[0]
    raise RuntimeError(f"/auth/session gave no session cookie (HTTP {response.status})")


async def drive(base: str, url: str, tabs: int, seconds: float, think_s: float, cpu: Callable[[], dict],
                profiler: Profiler | None = None) -> dict:
    names = Names()
    license_id, employees = ids_of_run(url, tabs)
    tally = Tally()
    codes = handoff_codes(url, tabs)
    connected: list[Tab] = []
    started = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        cookies = await asyncio.gather(*(sign_in(http, base, code) for code in codes))
    gate = asyncio.Semaphore(20)  # tabs opening at the same moment (a page load each)

    async def open_tab(i: int) -> None:
        tab = Tab(base, names, cookies[i], employees[i], license_id, tally, random.Random(i), think_s)
        async with gate:
            try:
                await tab.connect()
                connected.append(tab)
            except (Unanswered, socketio.exceptions.SocketIOError, OSError) as exc:
                tally.errors[f"tab could not connect: {type(exc).__name__}"] += 1

    await asyncio.gather(*(open_tab(i) for i in range(tabs)))
    signed_in_s = time.perf_counter() - started
    if profiler is not None:
        profiler.start(tabs, seconds)
    before = cpu()
    phase_started = time.perf_counter()
    await asyncio.gather(*(tab.work(time.monotonic() + seconds) for tab in connected))
    phase_s = time.perf_counter() - phase_started
    after = cpu()
    if profiler is not None:
        profiler.finish()
    await asyncio.gather(*(tab.close() for tab in connected), return_exceptions=True)
    counted = count_seats(url, license_id)
    assigned, unassigned = sum(t.assigned for t in connected), sum(t.unassigned for t in connected)
    unsure = sum(t.unsure for t in connected)
    expected = Counter(emp for t in connected for emp in t.held)
    problems = []
    if counted["seats_assigned"] != counted["open"]:
        problems.append(f"license says {counted['seats_assigned']} assigned, {counted['open']} seats open")
    if counted["open"] > counted["quantity"]:
        problems.append(f"{counted['open']} seats open of {counted['quantity']} bought")
    if any(n > 1 for n in counted["open_holders"].values()):
        problems.append("someone holds the license twice")
    if not unsure:
        if counted["rows"] != assigned:
            problems.append(f"{counted['rows']} seat rows for {assigned} successful assigns")
        if counted["rows"] - counted["open"] != unassigned:
            problems.append(f"{counted['rows'] - counted['open']} freed seats for {unassigned} successful unassigns")
        if counted["open_holders"] != expected:
            problems.append("the open seats are not the ones the tabs hold")
    elif abs(counted["rows"] - assigned) > unsure:
        problems.append(f"{counted['rows']} seat rows for {assigned} successful assigns ({unsure} unsure)")
    return dict(tally=tally, connected=len(connected), signed_in_s=signed_in_s, phase_s=phase_s, before=before,
                after=after, assigned=assigned, unassigned=unassigned, unsure=unsure, counted=counted,
                problems=problems)


# --- One setup ------------------------------------------------------------------------------------------------

@dataclass
class Plan:
    tabs: list[int]
    seconds: float
    think_s: float
    profile: Path | None = None


class Profiler:
    """py-spy on each app worker (the app's processes without children) over a run's working phase."""

    def __init__(self, folder: Path, setup: str, pids: list[int]) -> None:
        self.folder, self.setup, self.pids = folder, setup, pids
        self.running: list[tuple[subprocess.Popen, Path]] = []
        folder.mkdir(parents=True, exist_ok=True)
        self.py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")

    def workers(self) -> list[int]:
        leaves = []
        for pid in self.pids:
            try:
                if not psutil.Process(pid).children():
                    leaves.append(pid)
            except psutil.NoSuchProcess:
                continue
        return leaves

    def start(self, tabs: int, seconds: float) -> None:
        for pid in self.workers():
            out = self.folder / f"{self.setup}-{tabs}tabs-{pid}.raw"
            self.running.append((subprocess.Popen(
                [self.py_spy, "record", "-p", str(pid), "-d", str(int(seconds) + 600), "-r", "100", "--gil",
                 "--nonblocking", "-f", "raw", "-o", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out))

    def finish(self) -> None:
        """Stopped when the phase ends (its last events included: a tab finishes its round after `--seconds`);
        py-spy writes its file on SIGINT."""
        for proc, _ in self.running:
            proc.send_signal(signal.SIGINT)
        for proc, out in self.running:
            proc.wait(timeout=120)
            if out.exists():
                print(f"<!-- profile {out.name}:\n{summarise(out)}\n-->", file=sys.stderr, flush=True)
        self.running = []


def summarise(raw: Path, top: int = 25) -> str:
    """The portal's functions by share of the samples (inclusive), and the samples' own frames by package."""
    total, inclusive, packages = 0, Counter(), Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [re.sub(r" \((?:.*/site-packages/|.*/app/)?(.*):\d+\)$", r" (\1)", f) for f in stack.split(";")]
        for frame in set(frames):
            if "(cf_portal/" in frame:
                inclusive[frame] += n
        leaf = re.search(r"\((.*)\)$", frames[-1])
        packages[(leaf.group(1) if leaf else frames[-1]).split("/")[0]] += n
    share = lambda n: f"{n / max(total, 1) * 100:5.1f} %"  # noqa: E731
    lines = [f"{total} samples (100 per second while a thread holds the GIL)", "own time by package:"]
    lines += [f"  {share(n)} {name}" for name, n in packages.most_common(8)]
    lines += ["the portal's functions, with what they call:"]
    lines += [f"  {share(n)} {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


HEADER = ("| tabs | events (events/s) | event p50 / p95 ms | price p95 ms | seats p95 ms | page open p50 / p95 ms | "
          "errors | full-license refusals | assigns / unassigns | counted afterwards | server CPU ms per event "
          "(app; db + redis) | Redis commands per event | generator CPU % | load | p95 ≤ 150 ms |\n"
          "| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |")


def row(tabs: int, r: dict, load: float) -> str:
    tally: Tally = r["tally"]
    events = tally.samples["price"] + tally.samples["seats"]
    pages = tally.samples["page"]
    sent = tally.events
    b, a = r["before"], r["after"]
    app_ms = (a["app"] - b["app"]) / max(sent, 1) * 1000
    others_ms = (a["others"] - b["others"]) / max(sent, 1) * 1000
    redis = "–" if a["redis"] is None else f"{(a['redis'] - b['redis']) / max(sent, 1):.1f}"
    gen = (a["self"] - b["self"]) / r["phase_s"] * 100
    errors = sum(tally.errors.values())
    error_text = str(errors) if not errors else f"{errors}: " + "; ".join(
        f"{n}× {what}" for what, n in tally.errors.most_common(3))
    if r["connected"] < tabs:
        error_text += f" ({r['connected']} of {tabs} tabs connected)"
    p95 = percentile(events, .95) if events else float("nan")
    fmt = lambda v, q: f"{percentile(v, q):.0f}" if v else "–"  # noqa: E731
    counted = "ok" if not r["problems"] else "; ".join(r["problems"])
    if r["unsure"] and not r["problems"]:
        counted += f" ({r['unsure']} unanswered: partly checked)"
    return (f"| {tabs} | {sent:,} ({sent / r['phase_s']:.0f}) | {fmt(events, .5)} / {fmt(events, .95)} | "
            f"{fmt(tally.samples['price'], .95)} | {fmt(tally.samples['seats'], .95)} | {fmt(pages, .5)} / "
            f"{fmt(pages, .95)} | {error_text} | {tally.refused_full} | {r['assigned']} / {r['unassigned']} | "
            f"{counted} | {app_ms:.1f}; {others_ms:.1f} | {redis} | {gen:.0f} | {load:.1f} | "
            f"{'yes' if p95 <= TARGET_P95_MS and not errors and not r['problems'] else 'no'} |")


def run_setup(setup: str, plan: Plan) -> tuple[list[str], bool]:
    rows, ok = [], True
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cf-bench-ws-")))
        os.chmod(tmp, 0o755)
        extra_env, database_url, redis_port, others = {}, None, None, []
        if setup == "postgres":
            database_url = stack.enter_context(throwaway_postgres())
            redis = stack.enter_context(throwaway_redis(tmp / "redis"))
            redis_port = redis.port
            others = [redis.pid, *postgres_pids(database_url)]
            extra_env = {"REFLEX_REDIS_URL": redis.url, "GRANIAN_WORKERS": "2"}
        base, app_dir, log_path, env = stack.enter_context(
            running_app(tmp, database_url=database_url, prepare=prepare(plan.tabs), extra_env=extra_env))
        url = env["REFLEX_DB_URL"]
        pids = app_pids(app_dir)
        me = psutil.Process()
        profiler = Profiler(plan.profile, setup, pids) if plan.profile else None

        def cpu() -> dict:
            info = redis_info(redis_port) if redis_port else None
            return dict(app=cpu_seconds(pids), others=cpu_seconds(others) if others else 0.0,
                        redis=int(info["total_commands_processed"]) if info else None,
                        redis_by_command=commands_by_name(redis_port) if redis_port else Counter(),
                        self=sum(me.cpu_times()[:2]))

        checked_to = len(log_path.read_text(errors="replace"))
        for tabs in plan.tabs:
            load = os.getloadavg()[0]
            result = asyncio.run(drive(base, url, tabs, plan.seconds, plan.think_s, cpu, profiler))
            text = log_path.read_text(errors="replace")
            logged = [line for line in text[checked_to:].splitlines()
                      if any(marker in line for marker in SERVER_ERROR_MARKERS)]
            checked_to = len(text)
            if logged:
                result["tally"].errors["server logged an error"] += len(logged)
                print("\n".join(logged[:20]), file=sys.stderr)
            line = row(tabs, result, load)
            print(line, flush=True)
            rows.append(line)
            if redis_port:
                per_command = result["after"]["redis_by_command"] - result["before"]["redis_by_command"]
                sent = max(result["tally"].events, 1)
                print(f"<!-- {tabs} tabs, Redis commands per event: " + ", ".join(
                    f"{name} {calls / sent:.2f}" for name, calls in per_command.most_common(8)) + " -->",
                      file=sys.stderr, flush=True)
            ok = ok and not result["problems"] and result["connected"] == tabs and not logged
    return rows, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setup", choices=("sqlite", "postgres"),
                        default="postgres" if os.environ.get("DB") == "postgres" else "sqlite",
                        help="1 worker + SQLite, or 2 workers + PostgreSQL + Redis (default: from DB)")
    parser.add_argument("--tabs", type=int, nargs="+", help="tab counts, one run each (default 25 100 200)")
    parser.add_argument("--seconds", type=float, help="how long the tabs work, per run (default 60)")
    parser.add_argument("--think", type=float, default=1.0, help="mean think time between a tab's events (s)")
    parser.add_argument("--quick", action="store_true", help="4 tabs for a few seconds: that the benchmark works")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="sample the app's workers with py-spy during each run; raw stacks in DIR, summary on stderr")
    args = parser.parse_args(argv)
    plan = Plan(tabs=args.tabs or ([4] if args.quick else [25, 100, 200]),
                seconds=args.seconds or (6 if args.quick else 60), think_s=0.2 if args.quick else args.think,
                profile=args.profile)
    workers = "2 workers + PostgreSQL + Redis" if args.setup == "postgres" else "1 worker + SQLite"
    print(f"## Many tabs at once ({workers}, {os.cpu_count()} cores, {plan.seconds:.0f} s per run, think time "
          f"{plan.think_s:g} s)\n\n{HEADER}", flush=True)
    _, ok = run_setup(args.setup, plan)
    if not ok:
        print("lost or duplicated updates, server errors, or tabs that could not connect: see the table",
              file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
