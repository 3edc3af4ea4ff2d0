"""The command line as an operator runs it: `python -m cf_portal.cli <command>` in a process of its own, on the
test's database, judged by its exit code and what it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from cf_portal.db import make_engine, session_scope
from cf_portal.models import Account, AuthSession, Invoice, Plan, User
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services.actors import actor_for_user
from cf_portal.services.payment_methods import add_payment_method
from cf_portal.services.periods import period_bounds
from cf_portal.services.purchase import PurchaseRequest, create_license
from cf_portal.services.seed import DEMO_OWNER_EMAIL
from tests.factories import make_license

PROJECT = Path(__file__).resolve().parents[2]


def run_cli(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The command, from the checkout (so this checkout's cf_portal is run), with only the environment given."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("CF_", "REFLEX_", "STRIPE_")) and k != "DATABASE_URL"}
    clean |= {"REFLEX_DB_URL": url, "CF_DEMO_MODE": "true", **env}
    return subprocess.run([sys.executable, "-m", "cf_portal.cli", *args], cwd=PROJECT, env=clean,
                          capture_output=True, text=True, timeout=300)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return done.stdout


def test_migrate_seed_and_settings_on_an_empty_database(empty_database_url: str) -> None:
    url = empty_database_url
    settings = ok(run_cli(url, "settings"))
    assert "payments: sandbox; demo mode: True" in settings
    assert settings.startswith("database: ")
    assert ok(run_cli(url, "migrate")).strip() == "database schema is up to date"
    assert ok(run_cli(url, "migrate")).strip() == "database schema is up to date"  # again: nothing to do
    first = ok(run_cli(url, "seed"))
    assert first.startswith("demo data ready:")
    assert ok(run_cli(url, "seed")).startswith("demo data ready:")  # safe to re-run
    engine = make_engine(url)
    with session_scope(engine, write=False) as session:
        assert len(session.exec(select(Plan)).all()) == 7
        assert session.exec(select(Account).where(Account.name == "Acme Security Ltd")).one()
    engine.dispose()


@pytest.fixture
def migrated(empty_database_url: str) -> str:
    ok(run_cli(empty_database_url, "migrate"))
    ok(run_cli(empty_database_url, "seed"))
    return empty_database_url


def test_provider_commands_on_the_sandbox(migrated: str) -> None:
    url = migrated
    assert ok(run_cli(url, "sync-catalog")).strip() == ("The sandbox prices from the portal's own catalog: "
                                                        "nothing to sync.")
    assert ok(run_cli(url, "reconcile")).strip() == "every license matches the provider"
    assert ok(run_cli(url, "resolve-pending")).strip().splitlines() == [
        "purchases: 0 confirmed, 0 undone, 0 still unavailable, 0 waiting",
        "license changes: 0 confirmed, 0 undone, 0 still unavailable"]
    assert ok(run_cli(url, "reset-demo")).startswith("demo account reset to the seed")
    # A license the provider has never heard of: reconcile reports it and fails until repaired.
    engine = make_engine(url)
    with session_scope(engine) as session:
        account = session.exec(select(Account).where(Account.name == "Acme Security Ltd")).one()
        plan = session.exec(select(Plan).where(Plan.code == "phishing-standard")).one()
        lic = make_license(session, account, plan, reference_name="Lost team", provider_subscription_id="sub_gone")
    engine.dispose()
    drift = run_cli(url, "reconcile")
    assert drift.returncode == 1, (drift.stdout, drift.stderr)
    assert f"license {lic.id} 'Lost team' (account {lic.account_id}):" in drift.stdout and "sub_gone is missing at the provider" in drift.stdout
    assert drift.stdout.strip().endswith("1 differences with the provider")
    repaired = run_cli(url, "reconcile", "--repair")
    assert repaired.returncode == 0 and "(repaired)" in repaired.stdout
    assert ok(run_cli(url, "reconcile")).strip() == "every license matches the provider"


def test_bill_due_renews_once_whenever_it_runs(migrated: str) -> None:
    url = migrated
    assert ok(run_cli(url, "bill-due")).strip() == "No license was due."
    engine = make_engine(url)
    with session_scope(engine, write=False) as session:
        owner = session.exec(select(User.id).where(User.email == DEMO_OWNER_EMAIL)).one()
        actor = actor_for_user(session, owner)
        plan_id = session.exec(select(Plan.id).where(Plan.code == "phishing-standard")).one()
    provider = SandboxProvider(engine)
    bought_at = datetime.now(UTC)
    card = add_payment_method(engine, provider, actor=actor, number="4242424242424242", expiry="12/34", cvc="123",
                              today=bought_at.date())
    create_license(engine, provider, actor=actor, now=bought_at, request=PurchaseRequest(
        reference_name="Renewing team", plan_id=plan_id, quantity=2, coupon_code="", payment_method_id=card.id,
        expected_total=2400, idempotency_key=uuid.uuid4().hex))
    assert ok(run_cli(url, "bill-due")).strip() == "No license was due."  # its month has not ended
    next_month = period_bounds(bought_at, 1)[0].isoformat()
    assert ok(run_cli(url, "bill-due", "--now", next_month)).strip() == "1 license renewed"
    assert ok(run_cli(url, "bill-due", "--now", next_month)).strip() == "No license was due."
    with session_scope(engine, write=False) as session:
        assert session.exec(select(Invoice.total).where(Invoice.kind == "renewal")).all() == [2400]
    engine.dispose()
    refused = run_cli(url, "bill-due", "--now", "next tuesday")
    assert refused.returncode == 2 and "invalid iso_time value" in refused.stderr


def test_purge_expired_deletes_ended_sessions(migrated: str) -> None:
    url = migrated
    engine = make_engine(url)
    with session_scope(engine) as session:
        account = session.exec(select(Account).where(Account.name == "Acme Security Ltd")).one()
        user = session.exec(select(User).where(User.account_id == account.id)).first()
        session.add(AuthSession(token_hash="0" * 64, user_id=user.id, created_at=datetime.now(UTC) - timedelta(days=2),
                                expires_at=datetime.now(UTC) - timedelta(days=1)))
    out = ok(run_cli(url, "purge-expired"))
    assert out.splitlines()[0].startswith("1 ended sessions and ")
    assert out.splitlines()[1] == "0 expired demo accounts deleted (their subscriptions cancelled first)"
    with session_scope(engine, write=False) as session:
        assert session.exec(select(AuthSession)).all() == []
    engine.dispose()


def test_create_api_key_prints_only_the_key_which_works(migrated: str) -> None:
    from cf_portal.services import api_keys
    from cf_portal.services.seed import DEMO_OWNER_EMAIL

    url = migrated
    made = run_cli(url, "create-api-key", "--account-email", DEMO_OWNER_EMAIL.upper(), "--name", "Phishing Simulator")
    key = ok(made).strip()
    assert key.startswith("cfk_demo_") and len(key) == 52 and ok(made) == key + "\n"  # stdout: the key alone
    assert key not in made.stderr and "store it now" in made.stderr
    live = ok(run_cli(url, "create-api-key", "--account-email", DEMO_OWNER_EMAIL, "--name", "LMS",
                      CF_DEMO_MODE="false", CF_PAYMENT_PROVIDER="sandbox")).strip()
    assert live.startswith("cfk_live_")
    engine = make_engine(url)
    with session_scope(engine, write=False) as session:
        caller = api_keys.authenticate(session, key, scope=api_keys.ENTITLEMENTS_READ, now=datetime.now(UTC))
        owner = session.exec(select(User).where(User.email == DEMO_OWNER_EMAIL)).one()
        assert caller.account_id == owner.account_id
        viewer = session.exec(select(User).where(User.account_id == owner.account_id, User.role == "viewer")).first()
    engine.dispose()
    refused = run_cli(url, "create-api-key", "--account-email", viewer.email, "--name", "Mine")
    assert refused.returncode == 1 and refused.stdout == "" and "not an owner" in refused.stderr
    unknown = run_cli(url, "create-api-key", "--account-email", "nobody@nowhere.example", "--name", "Mine")
    assert unknown.returncode == 1 and unknown.stdout == "" and "was not found" in unknown.stderr
    blank = run_cli(url, "create-api-key", "--account-email", DEMO_OWNER_EMAIL, "--name", "  ")
    assert blank.returncode == 1 and blank.stdout == "" and "Name the key" in blank.stderr


def test_catalog_commands_outside_demo_mode(migrated: str, tmp_path: Path) -> None:
    url, env = migrated, {"CF_DEMO_MODE": "false", "CF_PAYMENT_PROVIDER": "sandbox"}
    assert "no catalog file is set" in ok(run_cli(url, "seed", **env))
    missing = run_cli(url, "load-catalog", **env)
    assert missing.returncode == 1 and "name the catalog file" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    refused = run_cli(url, "load-catalog", str(bad), **env)
    assert refused.returncode == 1 and refused.stderr.startswith("catalog not loaded:")
    good = tmp_path / "catalog.json"
    good.write_text(json.dumps({"products": [{"code": "vault", "name": "Password Vault",
                                              "plans": [{"code": "vault-team", "name": "Team", "unit_amount": 700}]}],
                                "coupons": [{"code": "VAULT5", "percent_off": 5, "duration": "forever"}]}))
    loaded = ok(run_cli(url, "load-catalog", str(good), **env))
    assert loaded.startswith(f"catalog of {good} loaded:")
    assert ok(run_cli(url, "seed", CF_CATALOG_FILE=str(good), **env)).startswith(f"catalog of {good} loaded:")
    engine = make_engine(url)
    with session_scope(engine, write=False) as session:
        assert session.exec(select(Plan.unit_amount).where(Plan.code == "vault-team")).one() == 700
    engine.dispose()


def test_an_unknown_command_or_unsafe_settings_stop_with_an_exit_code(empty_database_url: str) -> None:
    unknown = run_cli(empty_database_url, "frobnicate")
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr
    unsafe = run_cli(empty_database_url, "settings", CF_DEMO_MODE="false")  # no payment provider said
    assert unsafe.returncode != 0
