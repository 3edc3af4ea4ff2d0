"""Benchmark of `bill-due` (`renewals.bill_due`) over many due licenses (prints a markdown table).

Seeds its own database in bulk: several accounts, each with a customer, a card and a subscription per license at
the sandbox provider, and licenses bought a month ago (so every one is due now), a few with a coupon, a few billed
to a card that declines (they become past due) and a few cancelled at the period's end (they end). Then it times
one `bill_due` run, and a second run at the same moment, which must charge nothing: the sandbox's invoices are
counted before and after each run, and the benchmark fails if the counts say otherwise. "Its CPU s" is the CPU time
of this process during the first run (the sandbox's work included; on PostgreSQL the server's is not), and "load"
the machine's 1-minute load average when it started: on a shared machine, the wall time follows the load.

    .venv/bin/python bench/bill_due.py                    # 10,000 due licenses, SQLite
    DB=postgres .venv/bin/python bench/bill_due.py        # the same on a throwaway PostgreSQL
    .venv/bin/python bench/bill_due.py --licenses 1000 --accounts 10
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cf_portal.cli import migrate  # noqa: E402
from cf_portal.db import make_engine, session_scope  # noqa: E402
from cf_portal.models import Account, Coupon, License, PaymentMethod, Plan, Product, User  # noqa: E402
from cf_portal.payments.sandbox import SandboxProvider  # noqa: E402
from cf_portal.payments.sandbox_tables import (  # noqa: E402
    SandboxCustomer,
    SandboxInvoice,
    SandboxPaymentMethod,
    SandboxSubscription,
)
from cf_portal.services.periods import period_bounds  # noqa: E402
from cf_portal.services.renewals import bill_due  # noqa: E402
from cf_portal.services.seed import seed_demo  # noqa: E402

TARGET_S = 30.0
DECLINING_SHARE = 0.02  # billed to a card that declines: past due after the run
CANCELLING_SHARE = 0.01  # cancelled at the period's end: ended by the run
COUPONS = [None, None, None, "WELCOME20", "SPRING15", "TENOFF"]


def _rows(table, rows: list[dict], conn: sa.Connection) -> None:  # noqa: ANN001
    for start in range(0, len(rows), 2000):
        conn.execute(sa.insert(table), rows[start:start + 2000])


def seed(engine: sa.Engine, licenses: int, accounts: int, now: datetime) -> None:
    """`licenses` licenses spread over `accounts` accounts, each due at `now` (bought a month and a bit ago)."""
    rng = random.Random(licenses)
    with session_scope(engine) as session:
        seed_demo(session)
        plans = [(p.id, p.code, p.unit_amount, product) for p, product in session.execute(
            sa.select(Plan, Product.name).join(Product, Product.id == Plan.product_id)).all()]
        coupons = {c.code: c.id for c in session.exec(sa.select(Coupon)).scalars()}
    with engine.begin() as conn:
        account_ids = []
        for a in range(accounts):
            account_ids.append(conn.execute(sa.insert(Account).values(
                name=f"Bench customer {a}", provider_customer_id=f"cus_bench{a:04d}", created_at=now
            ).returning(Account.id)).scalar_one())
        _rows(User, [{"account_id": account_id, "name": f"Owner {i}", "email": f"owner{i}@bench.example",
                      "role": "owner", "created_at": now} for i, account_id in enumerate(account_ids)], conn)
        _rows(SandboxCustomer, [{"id": f"cus_bench{i:04d}", "account_id": account_id, "name": f"Bench customer {i}",
                                 "created_at": now} for i, account_id in enumerate(account_ids)], conn)
        cards = []  # per account: (good card, declining card), as (portal id, provider id)
        for i, account_id in enumerate(account_ids):
            pair = []
            for kind, last4, behaviour in (("good", "4242", "succeeds"), ("declining", "0341", "card_declined")):
                provider_id = f"pm_bench{i:04d}{kind}"
                conn.execute(sa.insert(SandboxPaymentMethod).values(
                    id=provider_id, customer_id=f"cus_bench{i:04d}", brand="visa", last4=last4, exp_month=12,
                    exp_year=2034, behaviour=behaviour, is_default=kind == "good", created_at=now))
                pair.append((conn.execute(sa.insert(PaymentMethod).values(
                    account_id=account_id, provider_id=provider_id, brand="visa", last4=last4, exp_month=12,
                    exp_year=2034, fingerprint=f"visa-{last4}", is_default=kind == "good", created_at=now
                ).returning(PaymentMethod.id)).scalar_one(), provider_id))
            cards.append(pair)
        subscriptions, rows = [], []
        for n in range(licenses):
            a = n % accounts
            plan_id, plan_code, unit_amount, product = plans[n % len(plans)]
            quantity = rng.randint(1, 50)
            declining = rng.random() < DECLINING_SHARE
            (card_id, card_provider_id) = cards[a][1 if declining else 0]
            coupon = COUPONS[n % len(COUPONS)]
            bought = now - timedelta(days=rng.randint(31, 33), minutes=rng.randint(0, 1440))
            start, end = period_bounds(bought, 0)
            sub_id = f"sub_bench{n:06d}"
            subscriptions.append({
                "id": sub_id, "customer_id": f"cus_bench{a:04d}", "payment_method_id": card_provider_id,
                "description": f"Team {n}", "plan_code": plan_code, "unit_amount": unit_amount, "currency": "usd",
                "quantity": quantity, "coupon_code": coupon, "status": "active", "metadata_json": "{}",
                "created_at": bought, "cancel_at_period_end": False})
            rows.append({
                "account_id": account_ids[a], "plan_id": plan_id, "reference_name": f"Team {n}",
                "quantity": quantity, "unit_amount": unit_amount, "currency": "usd",
                "coupon_id": coupons[coupon] if coupon else None, "payment_method_id": card_id, "status": "active",
                "provider_subscription_id": sub_id, "idempotency_key": secrets.token_hex(16), "created_at": bought,
                "period_start": start, "period_end": end, "periods_billed": 1,
                "cancel_at_period_end": rng.random() < CANCELLING_SHARE})
        _rows(SandboxSubscription, subscriptions, conn)
        _rows(License, rows, conn)
    # Fresh planner statistics, as autovacuum (PostgreSQL) would have after a bulk load like this.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")


def sandbox_invoices(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(SandboxInvoice)).scalar_one()


def run(url: str, licenses: int, accounts: int) -> list[str]:
    engine = make_engine(url)
    now = datetime.now(UTC).replace(microsecond=0)
    seed(engine, licenses, accounts, now)
    provider = SandboxProvider(engine, today=lambda: now.date())
    before = sandbox_invoices(engine)
    load = os.getloadavg()[0]
    started, cpu = time.perf_counter(), time.process_time()
    first = bill_due(engine, provider, now=now)
    first_s, first_cpu = time.perf_counter() - started, time.process_time() - cpu
    after_first = sandbox_invoices(engine)
    started = time.perf_counter()
    second = bill_due(engine, provider, now=now)
    second_s = time.perf_counter() - started
    after_second = sandbox_invoices(engine)
    engine.dispose()
    if after_first - before != first.get("renewed", 0) or first.get("errors"):
        raise SystemExit(f"the first run charged {after_first - before} invoices for {first}")
    if after_second != after_first or second.get("renewed"):
        raise SystemExit(f"the second run charged {after_second - after_first} invoices: {second}")
    if sum(first.values()) != licenses:
        raise SystemExit(f"the first run did not settle every due license: {first}")
    outcome = ", ".join(f"{count:,} {what}" for what, count in first.items())
    return [f"| {licenses:,} | {accounts} | {first_s:.1f} | {first_cpu:.1f} | {licenses / first_s:,.0f} | {outcome} | "
            f"{second_s:.2f} | {after_second - after_first} | {'yes' if first_s <= TARGET_S else 'no'} | {load:.1f} |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--licenses", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=50)
    args = parser.parse_args()
    kind = os.environ.get("DB", "sqlite")
    print(f"## bill-due ({kind}, {os.cpu_count()} cores)\n")
    print("| due licenses | accounts | first run s | its CPU s | licenses / s | first run did | second run s | "
          "charged by the second run | ≤ 30 s | load |\n| ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- "
          "| ---: |")
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
        for line in run(url, args.licenses, args.accounts):
            print(line, flush=True)


if __name__ == "__main__":
    main()
