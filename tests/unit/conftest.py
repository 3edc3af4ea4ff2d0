"""Unit-test fixtures: a seeded database and the sandbox provider on it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.models import Account, Plan, User
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services.actors import Actor, actor_for_user
from cf_portal.services.payment_methods import PaymentMethodView, add_payment_method
from cf_portal.services.seed import DEMO_OWNER_EMAIL, seed_demo

TODAY = date(2026, 11, 29)
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@dataclass
class Seeded:
    engine: sa.Engine
    actor: Actor
    plans: dict[str, Plan]

    def add_card(self, provider: SandboxProvider, number: str = "4242424242424242", actor: Actor | None = None,
                 expiry: str = "12/34") -> PaymentMethodView:
        return add_payment_method(self.engine, provider, actor=actor or self.actor, number=number, expiry=expiry,
                                  cvc="123", today=TODAY)

    def other_actor(self, name: str = "Other Corp") -> Actor:
        with session_scope(self.engine) as session:
            account = Account(name=name)
            session.add(account)
            session.flush()
            user = User(account_id=account.id, name="Other owner", email=f"owner{account.id}@other.example",
                        role="owner")
            session.add(user)
            session.flush()
            return actor_for_user(session, user.id)


@pytest.fixture
def seeded(engine: sa.Engine) -> Seeded:
    with session_scope(engine) as session:
        seed_demo(session)
        user = session.exec(select(User).where(User.email == DEMO_OWNER_EMAIL)).one()
        actor = actor_for_user(session, user.id)
        plans = {plan.code: plan for plan in session.exec(select(Plan))}
    return Seeded(engine=engine, actor=actor, plans=plans)


@pytest.fixture
def provider(engine: sa.Engine) -> SandboxProvider:
    return SandboxProvider(engine, today=lambda: TODAY)


@pytest.fixture
def cli_database(engine: sa.Engine, empty_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    """The command line (and `get_provider()`) pointed at the test's database, outside demo mode with the sandbox
    said explicitly."""
    from cf_portal import db, payments, settings

    monkeypatch.setenv("REFLEX_DB_URL", empty_database_url)
    monkeypatch.setenv("CF_DEMO_MODE", "false")
    monkeypatch.setenv("CF_PAYMENT_PROVIDER", "sandbox")
    monkeypatch.delenv("CF_CATALOG_FILE", raising=False)
    caches = (settings.get_settings, db.get_engine, payments.get_provider)
    for cache in caches:
        cache.cache_clear()
    yield engine
    db.get_engine().dispose()
    for cache in caches:
        cache.cache_clear()
