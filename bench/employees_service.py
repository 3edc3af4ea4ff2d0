"""Benchmark of the Employees section's services at scale (prints a markdown table).

Seeds its own database: one account with N employees, 4 licenses and 2 seats per employee
(20,000 assignments for 10,000 employees), then times the grid query (first page, search, filters,
the next page and a page halfway through by keyset), assign and move, each over many samples.

    .venv/bin/python bench/employees_service.py                 # 10,000 and 100,000 employees, SQLite
    DB=postgres .venv/bin/python bench/employees_service.py     # the same on a throwaway PostgreSQL
    .venv/bin/python bench/employees_service.py --sizes 10000 --samples 50
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cf_portal.cli import migrate  # noqa: E402
from cf_portal.db import make_engine, session_scope  # noqa: E402
from cf_portal.models import Account, Employee, License, Plan, SeatAssignment, User  # noqa: E402
from cf_portal.services import employees, seats  # noqa: E402
from cf_portal.services.actors import actor_for_user  # noqa: E402
from cf_portal.services.employees import GridQuery  # noqa: E402
from cf_portal.services.periods import period_bounds  # noqa: E402
from cf_portal.services.seats import Holder  # noqa: E402
from cf_portal.services.seed import DEMO_ACCOUNT_NAME, DEMO_OWNER_EMAIL, seed_demo  # noqa: E402

DEPARTMENTS = ["Engineering", "Sales", "Finance", "Human Resources", "Operations", "Legal", "Support", "Marketing"]
FIRST = ["Ava", "Liam", "Noah", "Mia", "Ethan", "Zoe", "Lucas", "Olivia", "James", "Sophia", "Ben", "Chloe", "Grace"]
LAST = ["Thompson", "Patel", "Kim", "Rossi", "Clarke", "Nakamura", "Moreau", "Brown", "Wilson", "Garcia", "Lee"]


def seed(engine: sa.Engine, n: int, *, into_demo_account: bool = False) -> tuple[int, int, list[int]]:
    """An account with n employees, 4 licenses and 2 open seats per employee. Returns (account, user, licenses).

    `into_demo_account` fills the seeded demo account (what the app shows in demo mode) instead of a new one.
    """
    rng = random.Random(n)
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        seed_demo(session)
        if into_demo_account:
            account = session.exec(sa.select(Account).where(Account.name == DEMO_ACCOUNT_NAME)).scalar_one()
            user = session.exec(sa.select(User).where(User.email == DEMO_OWNER_EMAIL)).scalar_one()
        else:
            account = Account(name=f"Bench {n}")
            session.add(account)
            session.flush()
            user = User(account_id=account.id, name="Bench owner", email=f"bench{n}@example.com", role="owner")
            session.add(user)
            session.flush()
        plans = session.exec(sa.select(Plan).limit(4)).scalars().all()
        licenses = []
        for i, plan in enumerate(plans):
            lic = License(account_id=account.id, plan_id=plan.id, reference_name=f"Bench license {i}",
                          quantity=n // 2 + 1000, unit_amount=plan.unit_amount, currency="usd", created_at=now,
                          period_start=now, period_end=period_bounds(now, 0)[1])
            session.add(lic)
            session.flush()
            licenses.append(lic.id)
        account_id, user_id = account.id, user.id
    with engine.begin() as conn:
        rows = [{"account_id": account_id, "name": f"{rng.choice(FIRST)} {rng.choice(LAST)} {i}",
                 "email": f"person{i}@bench.example", "department": rng.choice(DEPARTMENTS), "active": True,
                 "created_at": now} for i in range(n)]
        for start in range(0, n, 5000):
            conn.execute(sa.insert(Employee), rows[start:start + 5000])
        ids = [r[0] for r in conn.execute(sa.select(Employee.id).where(Employee.account_id == account_id)
                                          .order_by(Employee.id))]
        seats_rows, counts = [], dict.fromkeys(licenses, 0)
        for index, employee_id in enumerate(ids):
            for lic in (licenses[index % 4], licenses[(index + 1) % 4]):  # two seats each, spread evenly
                seats_rows.append({"account_id": account_id, "license_id": lic, "employee_id": employee_id,
                                   "assigned_at": now, "assigned_by_user_id": user_id})
                counts[lic] += 1
        for start in range(0, len(seats_rows), 5000):
            conn.execute(sa.insert(SeatAssignment), seats_rows[start:start + 5000])
        for lic, count in counts.items():
            conn.execute(sa.update(License).where(License.id == lic).values(seats_assigned=count))
    # Fresh planner statistics, as autovacuum (PostgreSQL) would have after a bulk load like this.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")
    return account_id, user_id, licenses


def timed(samples: int, fn) -> tuple[float, float]:  # noqa: ANN001
    values = []
    for i in range(samples):
        start = time.perf_counter()
        fn(i)
        values.append((time.perf_counter() - start) * 1000)
    values.sort()
    return statistics.median(values), values[max(0, int(round(0.95 * len(values))) - 1)]


def run(url: str, n: int, samples: int) -> list[tuple[str, float, float]]:
    engine = make_engine(url)
    built = time.perf_counter()
    account_id, user_id, licenses = seed(engine, n)
    print(f"| {n:,} | (data built in {time.perf_counter() - built:.0f} s) | | |", flush=True)
    with session_scope(engine, write=False) as session:
        actor = actor_for_user(session, user_id)
        extra = [Holder(kind="employee", id=i) for i in session.execute(
            sa.select(Employee.id).where(Employee.account_id == account_id).order_by(Employee.id.desc())
            .limit(samples * 6)).scalars()]
    results = []

    def grid(query: GridQuery):  # noqa: ANN202
        def call(_: int) -> None:
            with session_scope(engine, write=False) as session:
                employees.search_holders(session, account_id=account_id, query=query)
        return call

    results.append(("grid: first page (25 rows + count)", *timed(samples, grid(GridQuery()))))

    def first_visit(_: int) -> None:  # what opening the page reads (state/employees.py: grid_view with options)
        with session_scope(engine, write=False) as session:
            employees.search_holders(session, account_id=account_id, query=GridQuery())
            seats.assignable_licenses(session, account_id=account_id)
            employees.departments(session, account_id=account_id)
            employees.products(session)
    results.append(("page opened: first page, licenses, departments, products", *timed(samples, first_visit)))
    terms = ["patel", "person4711", "zoe", "bench.example", "nobody-matches"]
    results.append(("grid: search by name or email",
                    *timed(samples, lambda i: grid(GridQuery(search=terms[i % len(terms)]))(i))))
    for term in terms:
        results.append((f"grid: search '{term}'", *timed(max(5, samples // 4), grid(GridQuery(search=term)))))
    short = ["ze", "7", "qx"]  # under a trigram: no index (qx matches nobody: every row is read)
    results.append(("grid: search of 1-2 characters",
                    *timed(samples, lambda i: grid(GridQuery(search=short[i % len(short)]))(i))))
    results.append(("grid: department filter, sorted by email desc",
                    *timed(samples, grid(GridQuery(department="Sales", sort="email", descending=True)))))
    results.append(("grid: holders of one product", *timed(samples, grid(GridQuery(product_id=1)))))
    results.append(("grid: has no license", *timed(samples, grid(GridQuery(without_license=True)))))
    with session_scope(engine, write=False) as session:
        first = employees.search_holders(session, account_id=account_id, query=GridQuery())
        middle = session.execute(sa.select(sa.func.lower(Employee.name), Employee.id)
                                 .where(Employee.account_id == account_id)
                                 .order_by(sa.func.lower(Employee.name), Employee.id).offset(n // 2).limit(1)).one()
    results.append(("grid: next page (keyset)", *timed(samples, grid(GridQuery(after=first.last)))))
    halfway = employees.Cursor(key=middle[0], kind="employee", id=middle[1])
    results.append(("grid: a page halfway through (keyset)", *timed(samples, grid(GridQuery(after=halfway)))))
    results.append(("grid: Previous from halfway (keyset)", *timed(samples, grid(GridQuery(before=halfway)))))
    results.append(("grid: by name, descending", *timed(samples, grid(GridQuery(descending=True)))))

    # Room on one license for the samples; fresh holders for assign, then other fresh ones for move.
    target_license = licenses[0]
    with session_scope(engine) as session:
        session.execute(sa.update(License).where(License.id == target_license)
                        .values(quantity=License.seats_assigned + samples * 2))
        free = [h for h in extra if not seats._open_seat_holders(session, target_license, [h])]  # noqa: SLF001
    assignees, movers_to = free[:samples], free[samples:2 * samples]
    new_ids: list[int] = []

    def assign(i: int) -> None:
        with session_scope(engine) as session:
            new_ids.extend(seats.assign(session, actor=actor, license_id=target_license, holders=[assignees[i]]))

    def move(i: int) -> None:
        with session_scope(engine) as session:
            seats.move(session, actor=actor, assignment_id=new_ids[i], to=movers_to[i])

    count = min(samples, len(assignees), len(movers_to))
    results.append(("assign one seat (service, one transaction)", *timed(count, assign)))
    results.append(("move one seat (service, one transaction)", *timed(count, move)))
    engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    kind = os.environ.get("DB", "sqlite")
    print(f"## Employees services ({kind}, {os.cpu_count()} cores, {args.samples} samples each)\n")
    print("Load average before the run: " + " ".join(f"{v:.2f}" for v in os.getloadavg()) + "\n")
    print("| employees | operation | p50 ms | p95 ms |\n| ---: | --- | ---: | ---: |")
    for n in args.sizes:
        with ExitStack() as stack:
            if kind == "postgres":
                from tests.support.postgres import throwaway_postgres

                url = stack.enter_context(throwaway_postgres())
            else:
                url = f"sqlite:///{stack.enter_context(tempfile.TemporaryDirectory())}/bench.db"
            os.environ["REFLEX_DB_URL"] = url
            from cf_portal import settings

            settings.get_settings.cache_clear()
            migrate(url)
            for name, p50, p95 in run(url, n, args.samples):
                print(f"| {n:,} | {name} | {p50:.1f} | {p95:.1f} |", flush=True)
            print(f"| {n:,} | (load average after: " + " ".join(f"{v:.2f}" for v in os.getloadavg()) + ") | | |",
                  flush=True)


if __name__ == "__main__":
    main()
