"""Benchmark of the entitlements API over HTTP (issue 13's speed targets; prints a markdown table).

The app's backend runs as production runs it (Reflex's `run_backend_prod`: granian, one worker, from a copy of
the checkout) on a database of `size` open seats, 100 per account (1,000,000 seats: 10,000 accounts), and
another process drives it over plain HTTP/1.1 keep-alive connections (a small asyncio client: httpx would need
more CPU than the server on a 2-core machine). Per size it measures, in the same run:

- **single**: `GET /api/v1/entitlements/check` one at a time, interleaved with the trivial `GET /api/v1/health`;
  p50/p95 as the client saw them and as the server did (its `Server-Timing: app;dur=`, from the request reaching
  the portal's routes to its answer), and the ratio of the check's p95 to the trivial route's (target: ≤ 10 ms
  server-side, and ≤ 2× the trivial route as clients see them: whole requests through the same server. The
  server-side ratio is shown too; it cannot be near 2, the trivial route's own work taking some 0.03 ms);
- **checks/s**: checks from `--concurrency` connections at once (target ≥ 1,000), with their p95 and the
  server's CPU time per check; and the
  trivial route's requests/s the same way (what the server and this machine can do at best);
- **batch**: `POST` of 1,000 emails, one at a time (target p95 ≤ 100 ms);
- **first use**: single checks of seats never checked before, each of which stamps its seat's last use; the
  other phases check seats and keys stamped within the hour, as steady traffic does (both are stamped at most
  once an hour). The stamps are written after the answer is sent; the table counts them.

The checks/s column also gives the server's CPU time per check (its processes' user + system time over that
phase, divided by the checks): a figure that depends less on what else the machine is doing than the rate does.

Each check picks a random account (its own API key: the per-key rate of the API is never reached), one of its
people or an unknown address, and a product. The dataset is built once per size and database in
`.cache/bench/` (bulk inserts; on PostgreSQL COPY, and the whole cluster's folder is kept), then each run works
on a copy of it. "load" is the 1-minute load average when the size's run started: the machine may be shared.

    .venv/bin/python bench/entitlements_api.py                          # 10k, 100k, 1M seats on SQLite
    DB=postgres .venv/bin/python bench/entitlements_api.py              # the same on PostgreSQL
    .venv/bin/python bench/entitlements_api.py --sizes 10000 --quick    # a few seconds: that it works
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import SERVER_ERROR_MARKERS, cpu_seconds, percentile  # noqa: E402
from tests.support.app import copy_checkout, stop  # noqa: E402
from tests.support.postgres import _pg_bin, free_port  # noqa: E402

CACHE = ROOT / ".cache" / "bench" / "entitlements"
DATASET_VERSION = 1  # bump when the dataset's shape changes: older caches are then ignored
SEATS_PER_ACCOUNT = 100
PEOPLE = 49  # employees per account; each holds 2 of the 3 products, and one child account holds 2: 100 seats
PRODUCTS = ("awareness", "phishing", "darkweb")
NEVER_USED_EVERY = 10  # every 10th employee's seats were never checked (the "first use" phase checks them)
UNKNOWN_SHARE = 0.1  # of the checks: emails nobody in the account has
BATCH = 1000
TARGETS = {"server_p95_ms": 10.0, "ratio": 2.0, "checks_per_s": 1000.0, "batch_p95_ms": 100.0}


def api_key(account_index: int) -> str:
    """The API key of the n-th bench account (derived, so the cache needs no secrets file)."""
    return f"cfk_live_bench{account_index:08d}" + "k" * 30


def email(account_index: int, person: int) -> str:
    return f"p{person}@a{account_index}.bench.example"


def child_email(account_index: int) -> str:
    return f"team@a{account_index}.bench.example"


# --- The dataset ---------------------------------------------------------------------------------------------


def _insert(conn, table, rows: list[tuple], columns: list[str]) -> None:  # noqa: ANN001
    """Many rows at once: COPY on PostgreSQL, executemany of one prepared INSERT on SQLite."""
    if not rows:
        return
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(
                f'COPY "{table}" ({", ".join(columns)}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
    else:
        # As SQLAlchemy's DateTime keeps them on SQLite (UTC, no offset): sqlite3's own adapter would add one.
        stamps = {v: v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") for row in rows[:1000] for v in row
                  if isinstance(v, datetime)}
        marks = ", ".join("?" * len(columns))
        cursor = raw.cursor()
        cursor.executemany(f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({marks})',
                           (tuple(stamps[v] if isinstance(v, datetime) else v for v in row) for row in rows))
        cursor.close()


def build_dataset(url: str, size: int, now: datetime) -> None:
    """`size` open seats, SEATS_PER_ACCOUNT per account, on a migrated database with the demo catalog."""
    import sqlalchemy as sa

    from cf_portal.cli import migrate
    from cf_portal.db import make_engine, session_scope
    from cf_portal.models import Plan, Product
    from cf_portal.services.api_keys import ENTITLEMENTS_READ, key_digest, visible_prefix
    from cf_portal.services.periods import period_bounds
    from cf_portal.services.seed import seed_demo

    migrate(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        seed_demo(session)
        plan_of = {}
        for code in PRODUCTS:
            plan_of[code] = session.execute(sa.select(Plan.id, Plan.unit_amount).join(Product).where(
                Product.code == code).order_by(Plan.sort_order, Plan.id).limit(1)).one()

    def next_id(conn, table: str) -> int:  # noqa: ANN001
        return conn.exec_driver_sql(f'SELECT COALESCE(MAX(id), 0) + 1 FROM "{table}"').scalar_one()

    accounts = max(1, size // SEATS_PER_ACCOUNT)
    start, end = period_bounds(now - timedelta(days=3), 0)
    recently = now - timedelta(minutes=5)
    with engine.begin() as conn:
        a0, e0, c0, l0, s0, k0 = (next_id(conn, t) for t in ("account", "employee", "child_account", "license",
                                                             "seat_assignment", "api_key"))
        rows: dict[str, list[tuple]] = {t: [] for t in ("account", "employee", "child_account", "license",
                                                        "seat_assignment", "api_key")}
        seat_id = s0
        for a in range(accounts):
            account_id = a0 + a
            rows["account"].append((account_id, f"Bench customer {a}", now))
            key = api_key(a)
            rows["api_key"].append((k0 + a, account_id, "Bench", visible_prefix(key), key_digest(key),
                                    ENTITLEMENTS_READ, now, recently))
            child_id = c0 + a
            rows["child_account"].append((child_id, account_id, "Team", child_email(a), now))
            holders: dict[int, list[tuple[int | None, int | None, bool]]] = {p: [] for p in range(3)}
            for person in range(PEOPLE):
                employee_id = e0 + a * PEOPLE + person
                rows["employee"].append((employee_id, account_id, f"Person {person}", email(a, person), "",
                                         person % 50 != 48, now))  # every 50th deactivated
                for p in (person % 3, (person + 1) % 3):
                    holders[p].append((employee_id, None, person % NEVER_USED_EVERY == 0))
            for p in (0, 1):
                holders[p].append((None, child_id, False))
            for p, held in holders.items():
                license_id = l0 + a * 3 + p
                status = {0: "suspended", 1: "past_due"}.get((a * 3 + p) % 40, "active")
                plan_id, unit_amount = plan_of[PRODUCTS[p]]
                rows["license"].append((license_id, account_id, plan_id, f"{PRODUCTS[p].title()} team", len(held),
                                        unit_amount, "usd", status, len(held), now - timedelta(days=3), start, end,
                                        0, "", unit_amount, 1, False, 0))
                for employee_id, child, never_used in held:
                    rows["seat_assignment"].append((seat_id, account_id, license_id, employee_id, child,
                                                    now - timedelta(days=2), None if never_used else recently))
                    seat_id += 1
        _insert(conn, "account", rows["account"], ["id", "name", "created_at"])
        _insert(conn, "api_key", rows["api_key"], ["id", "account_id", "name", "prefix", "secret_hash", "scopes",
                                                   "created_at", "last_used_at"])
        _insert(conn, "child_account", rows["child_account"], ["id", "account_id", "name", "contact_email",
                                                               "created_at"])
        _insert(conn, "employee", rows["employee"], ["id", "account_id", "name", "email", "department", "active",
                                                     "created_at"])
        _insert(conn, "license", rows["license"], ["id", "account_id", "plan_id", "reference_name", "quantity",
                                                   "unit_amount", "currency", "status", "seats_assigned",
                                                   "created_at", "period_start", "period_end", "discount_amount",
                                                   "discount_description", "first_charge_amount", "periods_billed",
                                                   "cancel_at_period_end", "renewal_failures"])
        _insert(conn, "seat_assignment", rows["seat_assignment"], ["id", "account_id", "license_id", "employee_id",
                                                                   "child_account_id", "assigned_at",
                                                                   "last_used_at"])
        if conn.dialect.name == "postgresql":
            for table in rows:
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT MAX(id) FROM \"{table}\"))")
    # Fresh planner statistics, as autovacuum (PostgreSQL) would have after a bulk load like this.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if conn.dialect.name == "postgresql" else "ANALYZE")
    engine.dispose()


def _alembic_head() -> str:
    heads = sorted(p.stem for p in (ROOT / "alembic" / "versions").glob("0*.py"))
    return hashlib.sha256(" ".join(heads).encode()).hexdigest()[:8]


def _as_postgres(*cmd: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


@contextmanager
def postgres_on(data: Path, base: Path) -> Iterator[str]:
    """A PostgreSQL server on the cluster folder `data` (sockets and log in `base`); stopped on the way out."""
    port, log = free_port(), base / "server.log"
    sock = base / "sock"
    sock.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    subprocess.run(_as_postgres(_pg_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "120", "start",
                                "-o", f"-h 127.0.0.1 -p {port} -k {sock} -c fsync=off -c synchronous_commit=off "
                                      f"-c full_page_writes=off -c max_connections=200 -c shared_buffers=256MB"),
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/cf_portal"
    finally:
        subprocess.run(_as_postgres(_pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"),
                       capture_output=True)


def cached_dataset(kind: str, size: int, *, cache: Path) -> tuple[Path, float | None]:
    """The folder of the dataset (a SQLite file, or a PostgreSQL cluster folder), built if missing; with the
    seconds building it took (None: it was in the cache)."""
    from cf_portal import settings

    folder = cache / f"v{DATASET_VERSION}-{_alembic_head()}" / f"{kind}-{size}"
    target = folder / ("bench.db" if kind == "sqlite" else "data")
    if (folder / "done").exists():
        return target, None
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    if kind == "sqlite":
        url = f"sqlite:///{target}"
        os.environ["REFLEX_DB_URL"] = url
        settings.get_settings.cache_clear()
        build_dataset(url, size, now)
        # Everything into the file itself: the runs copy the file alone.
        with closing(sqlite3.connect(target)) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
        subprocess.run(_as_postgres(_pg_bin("initdb"), "-D", str(target), "-U", "postgres", "--auth=trust",
                                    "-E", "UTF8", "--no-sync"), check=True, capture_output=True)
        with postgres_on(target, folder) as url:
            subprocess.run(_as_postgres(_pg_bin("psql"), url.replace("+psycopg", "").rsplit("/", 1)[0] + "/postgres",
                                        "-c", "CREATE DATABASE cf_portal"), check=True, capture_output=True)
            os.environ["REFLEX_DB_URL"] = url
            settings.get_settings.cache_clear()
            build_dataset(url, size, now)
    took = time.perf_counter() - started
    (folder / "done").write_text(json.dumps({"size": size, "seconds": took, "built": now.isoformat()}))
    return target, took


@contextmanager
def working_copy(kind: str, dataset: Path, tmp: Path) -> Iterator[str]:
    """A URL of a copy of the cached dataset (the runs write to it: the stamps of last use)."""
    if kind == "sqlite":
        shutil.copy(dataset, tmp / "bench.db")
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    base = tmp / "pg"
    base.mkdir()
    os.chmod(tmp, 0o755)  # PostgreSQL runs as its own user
    subprocess.run(["cp", "-a", str(dataset), str(base / "data")], check=True)
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "postgres:postgres", str(base)], check=True)
    with postgres_on(base / "data", base) as url:
        yield url


def refresh_stamps(url: str, now: datetime) -> None:
    """Seats and keys used a few minutes ago, as under steady traffic (the never-used ones stay never used)."""
    import sqlalchemy as sa

    from cf_portal.db import make_engine
    from cf_portal.models import ApiKey, SeatAssignment

    engine = make_engine(url)
    recently = now - timedelta(minutes=5)
    with engine.begin() as conn:
        conn.execute(sa.update(SeatAssignment).where(SeatAssignment.last_used_at.is_not(None))
                     .values(last_used_at=recently))
        conn.execute(sa.update(ApiKey).values(last_used_at=recently))
    engine.dispose()


def stamps_since(url: str, started: datetime) -> tuple[int, int]:
    """How many keys and seats had their last use written since `started` (the writes the run caused)."""
    import sqlalchemy as sa

    from cf_portal.db import make_engine
    from cf_portal.models import ApiKey, SeatAssignment

    engine = make_engine(url)
    with engine.connect() as conn:
        counts = tuple(conn.execute(sa.select(sa.func.count()).where(column >= started)).scalar_one()
                       for column in (ApiKey.last_used_at, SeatAssignment.last_used_at))
    engine.dispose()
    return counts


# --- The server ----------------------------------------------------------------------------------------------


@contextmanager
def backend(tmp: Path, url: str) -> Iterator[tuple[str, Path, int]]:
    """The app's backend as `reflex run --env prod --backend-only` runs it (granian; one worker without Redis),
    from a copy of the checkout. (`reflex run --backend-only` itself refuses a frontend port, which rxconfig.py
    always sets, so its production function is called directly.)"""
    app_dir = copy_checkout(tmp / "app")
    port = free_port()
    env = {**os.environ, "REFLEX_DB_URL": url, "CF_DEMO_MODE": "true", "CF_PORT": str(port),
           "REFLEX_ENV_MODE": "prod", "REFLEX_TELEMETRY_ENABLED": "false", "REFLEX_CHECK_LATEST_VERSION": "false",
           "GRANIAN_WORKERS": "1", "PATH": f"{ROOT / '.tools' / 'bin'}:{Path(sys.executable).parent}:"
                                           f"{os.environ.get('PATH', '')}"}
    log_path = tmp / "app.log"
    script = ("from reflex.utils import exec\nfrom reflex_base.constants.base import LogLevel\n"
              f"exec.run_backend_prod('127.0.0.1', {port}, LogLevel.WARNING)\n")
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-c", script], cwd=app_dir, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the backend did not start:\n{log_path.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(f"{base}/api/v1/health", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    time.sleep(0.3)
            yield base, log_path, proc.pid
        finally:
            stop(proc)


# --- The load generator (runs in a process of its own) -------------------------------------------------------


@dataclass
class Sample:
    path: str
    client_ms: float
    server_ms: float
    status: int


def _request(method: str, target: str, host: str, key: str | None, body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Accept: application/json"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> tuple[int, float,
                                                                                                       bytes]:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, server_ms = 0, float("nan")
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.lower()
        if name == "content-length":
            length = int(value)
        elif name == "server-timing":
            server_ms = float(value.split("dur=", 1)[1].split(",")[0])
    body = await reader.readexactly(length)
    return status, server_ms, body


async def _drive(host: str, port: int, requests: list[tuple[str, bytes]], concurrency: int) -> tuple[list[Sample],
                                                                                                        float]:
    queue = list(reversed(requests))
    samples: list[Sample] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while queue:
                path, raw = queue.pop()
                started = time.perf_counter()
                status, server_ms, _ = await _exchange(reader, writer, raw)
                samples.append(Sample(path, (time.perf_counter() - started) * 1000, server_ms, status))
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples, time.perf_counter() - started


def drive(base: str, requests: list[tuple[str, bytes]], concurrency: int) -> tuple[list[Sample], float]:
    """Send the (label, raw HTTP request) pairs over `concurrency` keep-alive connections; the samples in the
    order answered, and the wall time."""
    parsed = urllib.parse.urlsplit(base)
    return asyncio.run(_drive(parsed.hostname, parsed.port, requests, concurrency))


# --- One run -------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    single: int  # interleaved single checks and trivial requests, each
    throughput: int  # checks sent at once from `concurrency` connections
    batches: int
    first_use: int
    warmup: int


FULL = Plan(single=2000, throughput=20000, batches=60, first_use=300, warmup=500)
QUICK = Plan(single=40, throughput=200, batches=3, first_use=10, warmup=20)


class Traffic:
    def __init__(self, base: str, size: int, seed: int) -> None:
        self.host = urllib.parse.urlsplit(base).netloc
        self.accounts = max(1, size // SEATS_PER_ACCOUNT)
        self.rng = random.Random(seed)
        self.never_used = [(a, p) for a in range(self.accounts) for p in range(0, PEOPLE, NEVER_USED_EVERY)]
        self.rng.shuffle(self.never_used)

    def check(self, *, never_used: bool = False) -> tuple[str, bytes]:
        rng = self.rng
        if never_used:
            a, person = self.never_used.pop()
            who, product = email(a, person), PRODUCTS[person % 3]
        else:
            a = rng.randrange(self.accounts)
            if rng.random() < UNKNOWN_SHARE:
                who = f"nobody{rng.randrange(10**6)}@a{a}.bench.example"
            elif rng.random() < 0.05:
                who = child_email(a)
            else:
                person = rng.choice([p for p in range(PEOPLE) if p % NEVER_USED_EVERY])
                who = email(a, person)
            product = rng.choice(PRODUCTS)
        query = urllib.parse.urlencode({"product": product, "email": who})
        return "check", _request("GET", f"/api/v1/entitlements/check?{query}", self.host, api_key(a))

    def health(self) -> tuple[str, bytes]:
        return "health", _request("GET", "/api/v1/health", self.host, None)

    def batch(self) -> tuple[str, bytes]:
        a = self.rng.randrange(self.accounts)
        people = [email(a, p) for p in range(PEOPLE) if p % NEVER_USED_EVERY]
        emails = [people[i % len(people)] if i % 10 else f"nobody{i}@a{a}.bench.example" for i in range(BATCH)]
        body = json.dumps({"product": self.rng.choice(PRODUCTS), "emails": emails}).encode()
        return "batch", _request("POST", "/api/v1/entitlements/check", self.host, api_key(a), body)


def _ms(samples: list[Sample], q: float, *, server: bool = False) -> float:
    return percentile([s.server_ms if server else s.client_ms for s in samples], q)


def measure(pool: ProcessPoolExecutor, base: str, size: int, plan: Plan, concurrency: int, server_pid: int) -> dict:
    traffic = Traffic(base, size, seed=size)
    figures: dict = {}
    failed: list[Sample] = []

    figures["requests"] = 0

    def run(requests: list[tuple[str, bytes]], conc: int) -> tuple[list[Sample], float]:
        samples, took = pool.submit(drive, base, requests, conc).result()
        figures["requests"] += len(samples)
        failed.extend(s for s in samples if s.status != 200)
        return samples, took

    run([traffic.check() for _ in range(plan.warmup)] + [traffic.batch() for _ in range(2)], 4)
    failed.clear()  # a cold start's failures (none expected) would show in the phases below
    mixed = [r for _ in range(plan.single) for r in (traffic.health(), traffic.check())]
    samples, _ = run(mixed, 1)
    checks = [s for s in samples if s.path == "check"]
    trivial = [s for s in samples if s.path == "health"]
    figures.update(check_p50=_ms(checks, .5), check_p95=_ms(checks, .95), check_server_p50=_ms(checks, .5, server=True),
                   check_server_p95=_ms(checks, .95, server=True), health_p95=_ms(trivial, .95),
                   health_server_p95=_ms(trivial, .95, server=True))
    cpu_before = cpu_seconds([server_pid])
    samples, took = run([traffic.check() for _ in range(plan.throughput)], concurrency)
    figures.update(checks_per_s=len(samples) / took, loaded_p95=_ms(samples, .95),
                   loaded_server_p95=_ms(samples, .95, server=True),
                   cpu_ms_per_check=(cpu_seconds([server_pid]) - cpu_before) / len(samples) * 1000)
    samples, took = run([traffic.health() for _ in range(plan.throughput // 2)], concurrency)
    figures.update(trivial_per_s=len(samples) / took)
    samples, _ = run([traffic.batch() for _ in range(plan.batches)], 1)
    figures.update(batch_p95=_ms(samples, .95), batch_server_p95=_ms(samples, .95, server=True))
    samples, _ = run([traffic.check(never_used=True) for _ in range(plan.first_use)], 1)
    figures.update(first_use_p95=_ms(samples, .95), first_use_server_p95=_ms(samples, .95, server=True))
    if failed:
        statuses = sorted({s.status for s in failed})
        raise SystemExit(f"{len(failed)} requests failed (HTTP {statuses}) at {size:,} seats")
    return figures


def run_size(kind: str, size: int, plan: Plan, concurrency: int, cache: Path, pool: ProcessPoolExecutor) -> str:
    dataset, seeding_s = cached_dataset(kind, size, cache=cache)
    load = os.getloadavg()[0]
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cf-bench-api-")))
        url = stack.enter_context(working_copy(kind, dataset, tmp))
        started = datetime.now(UTC)
        refresh_stamps(url, started)
        base, log_path, server_pid = stack.enter_context(backend(tmp, url))
        f = measure(pool, base, size, plan, concurrency, server_pid)
        keys, seats = stamps_since(url, started)
        errors = [line for line in log_path.read_text().splitlines()
                  if any(marker in line for marker in SERVER_ERROR_MARKERS)]
        if errors:
            raise SystemExit("the server logged errors:\n" + "\n".join(errors[:20]))
    ratio = f["check_p95"] / f["health_p95"]
    met = (f["check_server_p95"] <= TARGETS["server_p95_ms"] and ratio <= TARGETS["ratio"]
           and f["checks_per_s"] >= TARGETS["checks_per_s"] and f["batch_p95"] <= TARGETS["batch_p95_ms"])
    seeding = "cached" if seeding_s is None else f"{seeding_s:.0f} s"
    return (f"| {size:,} | {f['check_p50']:.2f} / {f['check_p95']:.2f} | {f['check_server_p50']:.2f} / "
            f"{f['check_server_p95']:.2f} | {f['health_p95']:.2f} / {f['health_server_p95']:.2f} | {ratio:.1f} "
            f"/ {f['check_server_p95'] / f['health_server_p95']:.0f} | "
            f"{f['checks_per_s']:,.0f} ({f['loaded_p95']:.1f} / {f['loaded_server_p95']:.1f}; "
            f"{f['cpu_ms_per_check']:.2f}) | "
            f"{f['trivial_per_s']:,.0f} | "
            f"{f['batch_p95']:.1f} / {f['batch_server_p95']:.1f} | {f['first_use_p95']:.2f} / "
            f"{f['first_use_server_p95']:.2f} | {f['requests']:,} ({keys:,} / {seats:,}) | {seeding} | {load:.1f} | "
            f"{'yes' if met else 'no'} |")


HEADER = ("| seats | single p50 / p95 ms (client) | single p50 / p95 ms (server) | trivial p95 ms (client / server) | "
          "p95 ÷ trivial p95 (client / server) | checks/s (p95 client / server ms; server CPU ms per check) | trivial requests/s | "
          "batch of 1,000 p95 ms (client / server) | "
          "first use p95 ms (client / server) | requests (stamps written: keys / seats) | seeding | load | "
          "targets met |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", help="open seats, 100 per account (default: 10,000, "
                        "100,000 and 1,000,000; 1,000 with --quick)")
    parser.add_argument("--concurrency", type=int, default=8, help="connections of the checks/s phase")
    parser.add_argument("--quick", action="store_true",
                        help="a few requests per phase, in a throwaway cache: that the benchmark works (seconds)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the datasets are kept")
    args = parser.parse_args(argv)
    kind = os.environ.get("DB", "sqlite")
    plan = QUICK if args.quick else FULL
    sizes = args.sizes or ([1000] if args.quick else [10_000, 100_000, 1_000_000])
    print(f"## Entitlements API ({kind}, {os.cpu_count()} cores, one server worker, "
          f"{args.concurrency} connections for checks/s)\n\n{HEADER}", flush=True)
    with ExitStack() as stack:
        cache = Path(stack.enter_context(tempfile.TemporaryDirectory())) if args.quick else args.cache
        if args.quick:
            os.chmod(cache, 0o755)  # PostgreSQL's user keeps its cluster in it
        pool = stack.enter_context(ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")))
        for size in sizes:
            print(run_size(kind, size, plan, args.concurrency, cache, pool), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
