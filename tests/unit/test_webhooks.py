"""Outgoing webhooks: events written with the change they tell of (never for a change that rolled back), signed,
delivered at least once to a real HTTP receiver, retried with backoff, each claimed by one worker at a time.

The two-workers test is a real race only on PostgreSQL (see tests/support/concurrency.py); `make test` runs it
there too."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.models import Account, License, LicenseStatus, Role, User, WebhookDelivery, WebhookEvent
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services import license_changes as changes
from cf_portal.services import renewals, seats, webhooks
from cf_portal.services.actors import Actor, actor_for_user
from cf_portal.services.errors import DomainError, NotAllowed, NotFound
from cf_portal.services.seats import Holder, NotEnoughSeats
from tests.factories import make_account, make_child_account, make_employee, make_license, make_plan
from tests.support.concurrency import run_at_once
from tests.support.webhook_receiver import Receiver
from tests.unit.conftest import NOW, Seeded
from tests.unit.test_license_changes import buy

DAY = timedelta(days=1)
ALL = list(webhooks.EVENT_TYPES)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


class World:
    """An account with a license of 3 seats, people, a child account, and another account alike."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        with session_scope(engine) as session:
            account, user = make_account(session)
            self.actor = actor_for_user(session, user.id)
            plan = make_plan(session)
            self.license_id = make_license(session, account, plan, quantity=3, reference_name="Sales").id
            self.people = [Holder(kind="employee", id=make_employee(session, account).id) for _ in range(4)]
            self.child = Holder(kind="child", id=make_child_account(session, account).id)
            other, other_user = make_account(session)
            self.other_actor = actor_for_user(session, other_user.id)
            self.other_license_id = make_license(session, other, plan, quantity=3).id
            self.other_person = Holder(kind="employee", id=make_employee(session, other).id)

    def endpoint(self, receiver: Receiver, types: list[str] = ALL, actor: Actor | None = None) -> int:
        with session_scope(self.engine) as session:
            created = webhooks.create_endpoint(session, actor=actor or self.actor, url=receiver.url("new"),
                                               event_types=types)
        path = f"/hooks/{created.endpoint.id}"
        with session_scope(self.engine) as session:  # each endpoint its own path, so the receiver knows its secret
            row = session.get(webhooks.WebhookEndpoint, created.endpoint.id)
            row.url = receiver.url(str(created.endpoint.id))
        receiver.secrets[path] = created.secret
        return created.endpoint.id

    def assign(self, *holders: Holder, actor: Actor | None = None, license_id: int | None = None) -> list[int]:
        with session_scope(self.engine) as session:
            return seats.assign(session, actor=actor or self.actor, license_id=license_id or self.license_id,
                                holders=list(holders), now=NOW)

    def outbox(self) -> list[WebhookEvent]:
        with session_scope(self.engine, write=False) as session:
            return list(session.exec(select(WebhookEvent).order_by(WebhookEvent.id)).all())


@pytest.fixture
def world(engine: sa.Engine) -> World:
    return World(engine)


def payloads(world: World) -> list[dict]:
    return [json.loads(row.payload) for row in world.outbox()]


def deliver(world: World, now=NOW, **kwargs) -> dict[str, int]:  # noqa: ANN001
    return webhooks.deliver_due(world.engine, now=now, **kwargs)


# --- The outbox ---------------------------------------------------------------------------------------------


def test_assign_free_and_move_each_write_exactly_their_events(world: World, receiver: Receiver) -> None:
    world.endpoint(receiver)
    first, second = world.assign(world.people[0], world.child)
    assert [(p["type"], p["data"]["holder"]["kind"]) for p in payloads(world)] == [
        ("seat.assigned", "employee"), ("seat.assigned", "child_account")]
    event = payloads(world)[0]
    assert event["id"].startswith("evt_") and event["account"] == {"id": world.actor.account_id}
    assert event["data"]["license"]["id"] == world.license_id and event["data"]["license"]["reference"] == "Sales"
    assert event["data"]["seat"]["id"] == first and "@" in event["data"]["holder"]["email"]

    with session_scope(world.engine) as session:
        seats.unassign(session, actor=world.actor, assignment_id=second, now=NOW)
    with session_scope(world.engine) as session:
        moved_to = seats.move(session, actor=world.actor, assignment_id=first, to=world.people[1], now=NOW)
    events = payloads(world)
    assert [p["type"] for p in events] == ["seat.assigned", "seat.assigned", "seat.unassigned", "seat.moved"]
    assert events[2]["data"]["holder"]["kind"] == "child_account"
    move = events[3]["data"]
    assert (move["from"]["id"], move["to"]["id"]) == (world.people[0].id, world.people[1].id)
    assert (move["seat"]["previous_id"], move["seat"]["id"]) == (first, moved_to)
    assert len({p["id"] for p in events}) == 4


def test_a_rolled_back_or_refused_assignment_writes_no_event(world: World, receiver: Receiver) -> None:
    world.endpoint(receiver)
    with pytest.raises(RuntimeError), session_scope(world.engine) as session:
        seats.assign(session, actor=world.actor, license_id=world.license_id, holders=[world.people[0]], now=NOW)
        assert len(session.exec(select(WebhookEvent)).all()) == 1  # written in the change's transaction …
        raise RuntimeError("the request failed after the assignment")
    assert world.outbox() == []  # … and gone with it
    with pytest.raises(NotEnoughSeats):
        world.assign(*world.people)  # 4 people, 3 seats
    assert world.outbox() == []
    assert deliver(world) == {} and receiver.received == []


def test_freeing_all_seats_of_a_deactivated_person_tells_of_each(world: World, receiver: Receiver) -> None:
    world.endpoint(receiver, types=["seat.unassigned"])
    with session_scope(world.engine) as session:
        other_license = make_license(session, session.get(Account, world.actor.account_id), make_plan(session)).id
    world.assign(world.people[0])
    world.assign(world.people[0], license_id=other_license)
    with session_scope(world.engine) as session:
        assert seats.free_all_seats_of(session, actor=world.actor, holder=world.people[0], now=NOW) == 2
    assert sorted(p["data"]["license"]["id"] for p in payloads(world)) == sorted([world.license_id, other_license])


def test_an_endpoint_gets_only_its_accounts_events_of_the_types_it_chose(world: World, receiver: Receiver) -> None:
    only_assigned = world.endpoint(receiver, types=["seat.assigned"])
    everything = world.endpoint(receiver)
    others = world.endpoint(receiver, actor=world.other_actor)
    (seat,) = world.assign(world.people[0])
    with session_scope(world.engine) as session:
        seats.unassign(session, actor=world.actor, assignment_id=seat, now=NOW)
    world.assign(world.other_person, actor=world.other_actor, license_id=world.other_license_id)
    assert deliver(world) == {"delivered": 4}
    assert [e["type"] for e in receiver.events(f"/hooks/{only_assigned}")] == ["seat.assigned"]
    assert sorted(e["type"] for e in receiver.events(f"/hooks/{everything}")) == ["seat.assigned", "seat.unassigned"]
    (theirs,) = receiver.events(f"/hooks/{others}")
    assert theirs["account"]["id"] == world.other_actor.account_id
    assert theirs["data"]["holder"]["id"] == world.other_person.id
    # One event id for the same event at every endpoint that wants it, so receivers can deduplicate.
    assert receiver.events(f"/hooks/{only_assigned}")[0]["id"] in {e["id"] for e in receiver.events(f"/hooks/{everything}")}
    assert receiver.refused == 0


def test_a_disabled_endpoint_is_sent_nothing(world: World, receiver: Receiver) -> None:
    endpoint = world.endpoint(receiver)
    with session_scope(world.engine) as session:
        assert not webhooks.set_enabled(session, actor=world.actor, endpoint_id=endpoint, enabled=False).enabled
    world.assign(world.people[0])
    assert world.outbox() == []


# --- Delivery -----------------------------------------------------------------------------------------------


def test_a_delivery_is_signed_and_the_receiver_verifies_it(world: World, receiver: Receiver) -> None:
    endpoint = world.endpoint(receiver)
    world.assign(world.people[0])
    assert deliver(world) == {"delivered": 1}
    (got,) = receiver.received
    assert got["event"] == payloads(world)[0]
    assert got["headers"]["CF-Event-Id"] == got["event"]["id"] and got["headers"]["CF-Event-Type"] == "seat.assigned"
    (row,) = world.outbox()
    assert (row.status, row.attempts, row.delivered_at, row.claim_token) == ("delivered", 1, NOW, None)
    with session_scope(world.engine, write=False) as session:
        (attempt,) = webhooks.attempts_of(session, actor=world.actor, webhook_event_id=row.id)
        (line,) = webhooks.delivery_log(session, actor=world.actor, endpoint_id=endpoint)
    assert (attempt.status_code, attempt.error) == (200, "")
    assert (line.status, line.last_status_code, line.next_attempt_at) == ("delivered", 200, None)
    assert deliver(world) == {}  # delivered once


def test_signatures_are_refused_when_tampered_wrong_or_old() -> None:
    body, now = b'{"id":"evt_1"}', int(time.time())
    header = webhooks.sign("whsec_a", body, now)
    assert webhooks.verify_signature("whsec_a", header, body)
    assert not webhooks.verify_signature("whsec_b", header, body)
    assert not webhooks.verify_signature("whsec_a", header, body + b" ")
    assert not webhooks.verify_signature("whsec_a", webhooks.sign("whsec_a", body, now - 301), body)
    assert not webhooks.verify_signature("whsec_a", "", body)
    assert not webhooks.verify_signature("whsec_a", f"t={now}", body)


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(world: World, receiver: Receiver) -> None:
    endpoint = world.endpoint(receiver)
    world.assign(world.people[0])
    receiver.script = [500, "sleep"]
    assert deliver(world) == {"retrying": 1}
    assert world.outbox()[0].next_attempt_at == NOW + timedelta(minutes=1)
    assert deliver(world, now=NOW + timedelta(seconds=59)) == {}  # not yet due
    later = NOW + timedelta(minutes=1)
    assert deliver(world, now=later, timeout_s=0.5) == {"retrying": 1}  # no answer in time
    assert world.outbox()[0].next_attempt_at == later + timedelta(minutes=5)
    assert deliver(world, now=later + timedelta(minutes=5)) == {"delivered": 1}
    with session_scope(world.engine, write=False) as session:
        row = world.outbox()[0]
        attempts = webhooks.attempts_of(session, actor=world.actor, webhook_event_id=row.id)
        (line,) = webhooks.delivery_log(session, actor=world.actor, endpoint_id=endpoint)
    assert [(a.status_code, a.error) for a in attempts] == [
        (500, "answered HTTP 500"), (None, "no answer within 0.5 s"), (200, "")]
    assert (line.status, line.attempts) == ("delivered", 3)
    assert len(receiver.received) == 1


def test_after_the_last_retry_the_event_fails_and_resend_queues_it_again(world: World, receiver: Receiver) -> None:
    world.endpoint(receiver)
    world.assign(world.people[0])
    receiver.script = [503] * webhooks.MAX_ATTEMPTS
    moment = NOW
    for delay in (*webhooks.RETRY_DELAYS, None):
        outcome = deliver(world, now=moment)
        assert outcome == ({"retrying": 1} if delay else {"failed": 1})
        moment += delay or timedelta(0)
    (row,) = world.outbox()
    assert (row.status, row.attempts) == ("failed", webhooks.MAX_ATTEMPTS)
    assert deliver(world, now=moment + 30 * DAY) == {}
    with session_scope(world.engine) as session:
        webhooks.resend(session, actor=world.actor, webhook_event_id=row.id, now=moment + DAY)
    assert deliver(world, now=moment + DAY) == {"delivered": 1}
    # A delivered event can be sent again too: the receiver sees the same event id twice.
    with session_scope(world.engine) as session:
        webhooks.resend(session, actor=world.actor, webhook_event_id=row.id, now=moment + 2 * DAY)
    assert deliver(world, now=moment + 2 * DAY) == {"delivered": 1}
    assert [e["id"] for e in receiver.events()] == [row.event_id, row.event_id]


def test_an_event_being_sent_is_not_resent_and_a_dead_workers_claim_runs_out(world: World,
                                                                             receiver: Receiver) -> None:
    world.endpoint(receiver)
    world.assign(world.people[0])
    (claim,) = webhooks._claim(world.engine, now=NOW, batch=5, timeout_s=1)  # a worker that then died
    with pytest.raises(DomainError, match="being sent"), session_scope(world.engine) as session:
        webhooks.resend(session, actor=world.actor, webhook_event_id=claim.id, now=NOW)
    assert deliver(world, now=NOW + timedelta(seconds=30)) == {}  # still claimed
    assert deliver(world, now=NOW + timedelta(minutes=5)) == {"delivered": 1}
    # The late worker's outcome is not kept: the claim is no longer its own.
    assert webhooks._record(world.engine, claim, status_code=500, error="answered HTTP 500", started=NOW,
                            duration_ms=1, now=NOW + timedelta(minutes=6)) == "taken_over"
    assert world.outbox()[0].status == "delivered"


def test_two_workers_at_once_deliver_each_event_once(world: World, receiver: Receiver) -> None:
    world.endpoint(receiver)
    with session_scope(world.engine) as session:
        account = session.get(Account, world.actor.account_id)
        license_id = make_license(session, account, make_plan(session), quantity=40).id
        people = [Holder(kind="employee", id=make_employee(session, account).id) for _ in range(40)]
    world.assign(*people, license_id=license_id)
    outcomes: list[dict[str, int]] = []
    run_at_once(4, lambda _: outcomes.append(deliver(world, batch=3)))
    ids = [e["id"] for e in receiver.events()]
    assert len(ids) == len(set(ids)) == 40
    assert sum(o.get("delivered", 0) for o in outcomes) == 40
    assert all(row.status == "delivered" and row.attempts == 1 for row in world.outbox())
    with session_scope(world.engine, write=False) as session:
        assert session.exec(select(sa.func.count()).select_from(WebhookDelivery)).one() == 40


def test_a_pass_with_nothing_due_takes_no_lock(world: World, receiver: Receiver) -> None:
    """The app's worker looks every 5 s: with nothing due it only reads (no SQLite write lock, no row lock)."""
    world.endpoint(receiver)
    statements: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        statements.append(statement.upper())

    sa.event.listen(world.engine, "before_cursor_execute", seen)
    try:
        assert deliver(world) == {}
        locking = [s for s in statements if "BEGIN IMMEDIATE" in s or "FOR UPDATE" in s or s.startswith("UPDATE")]
        assert statements and locking == [], locking
        world.assign(world.people[0])
        statements.clear()
        assert deliver(world) == {"delivered": 1}  # something due: claimed under the lock
        assert any("BEGIN IMMEDIATE" in s or "FOR UPDATE" in s for s in statements)
    finally:
        sa.event.remove(world.engine, "before_cursor_execute", seen)


# --- Licenses suspended and canceled --------------------------------------------------------------------------


def test_a_license_suspended_after_its_last_retry_and_one_canceled_are_told(seeded: Seeded, provider: SandboxProvider,
                                                                           receiver: Receiver) -> None:
    world = World.__new__(World)
    world.engine, world.actor = seeded.engine, seeded.actor
    world.endpoint(receiver, types=["license.suspended", "license.canceled"])
    good = seeded.add_card(provider)
    failing_id = buy(seeded, provider, quantity=3, card_id=good.id)
    ending_id = buy(seeded, provider, quantity=4, plan="awareness-business", card_id=good.id)
    bad = seeded.add_card(provider, number="4000000000000341")
    changes.change_card(seeded.engine, provider, actor=seeded.actor, license_id=failing_id, payment_method_id=bad.id,
                        now=NOW)
    changes.set_cancel(seeded.engine, provider, actor=seeded.actor, license_id=ending_id, cancel=True, now=NOW)
    with session_scope(seeded.engine, write=False) as session:
        end = session.get(License, failing_id).period_end
    renewals.bill_due(seeded.engine, provider, now=end + timedelta(hours=1))
    assert [p["type"] for p in payloads(world)] == ["license.canceled"]  # the other is past due: no news yet
    for days in (1, 3):  # past due, not yet suspended: nothing to tell
        renewals.bill_due(seeded.engine, provider, now=end + days * DAY + timedelta(hours=1))
    assert [p["type"] for p in payloads(world)] == ["license.canceled"]
    renewals.bill_due(seeded.engine, provider, now=end + 5 * DAY + timedelta(hours=1))
    with session_scope(seeded.engine, write=False) as session:
        assert session.get(License, failing_id).status == LicenseStatus.SUSPENDED.value
    canceled, suspended = payloads(world)
    assert (canceled["type"], canceled["data"]["license"]["id"]) == ("license.canceled", ending_id)
    assert canceled["data"]["license"]["status"] == "canceled" and canceled["data"]["seats_freed"] == 0
    assert (suspended["type"], suspended["data"]["license"]["id"]) == ("license.suspended", failing_id)
    assert suspended["data"]["license"]["product"] == "phishing"
    # Failing again while suspended (a person retries the payment) is no news.
    assert renewals.pay_now(seeded.engine, provider, actor=seeded.actor, license_id=failing_id,
                            now=end + 6 * DAY) == "suspended"
    assert len(payloads(world)) == 2
    assert webhooks.deliver_due(seeded.engine, now=end + 6 * DAY) == {"delivered": 2}
    assert [e["type"] for e in receiver.events()] == ["license.canceled", "license.suspended"]


def test_the_payment_providers_news_of_a_suspended_or_ended_subscription_is_told(
        seeded: Seeded, provider: SandboxProvider, receiver: Receiver) -> None:
    from cf_portal.payments.stripe_webhook import parse_event
    from cf_portal.services.provider_events import handle_event
    from tests.unit.test_provider_events import T0, event

    world = World.__new__(World)
    world.engine, world.actor = seeded.engine, seeded.actor
    world.endpoint(receiver, types=["license.suspended", "license.canceled"])
    license_id = buy(seeded, provider, quantity=3)
    with session_scope(seeded.engine) as session:
        subscription_id = session.get(License, license_id).provider_subscription_id
        person = make_employee(session, session.get(Account, seeded.actor.account_id))
        seats.assign(session, actor=seeded.actor, license_id=license_id,
                     holders=[Holder(kind="employee", id=person.id)], now=NOW)

    def apply(kind: str, status: str, at: int) -> str:
        with session_scope(seeded.engine) as session:
            sub = {"id": subscription_id, "object": "subscription", "status": status}
            return handle_event(session, event=parse_event(event(kind, sub, at=at)), now=NOW)

    assert apply("customer.subscription.updated", "unpaid", T0 + 10) == "status suspended"
    assert apply("customer.subscription.updated", "unpaid", T0 + 20) == "status suspended"  # no news
    assert apply("customer.subscription.deleted", "canceled", T0 + 30) == "status canceled"
    apply("customer.subscription.deleted", "canceled", T0 + 30)  # a replay
    suspended, canceled = payloads(world)
    assert (suspended["type"], suspended["data"]["reason"]) == ("license.suspended", "payment_provider")
    assert (canceled["type"], canceled["data"]["seats_freed"]) == ("license.canceled", 1)


# --- Endpoints: owners only, safe addresses, the secret shown once --------------------------------------------


def test_the_secret_is_shown_once_and_never_stored(world: World, receiver: Receiver) -> None:
    with session_scope(world.engine) as session:
        created = webhooks.create_endpoint(session, actor=world.actor, url="https://hooks.example.com/cf",
                                           event_types=["seat.moved", "seat.assigned"], description="CRM")
    assert created.secret.startswith("whsec_") and created.endpoint.event_types == ["seat.assigned", "seat.moved"]
    with world.engine.connect() as conn:
        dump = json.dumps([list(r) for r in conn.execute(sa.text("SELECT * FROM webhook_endpoint"))], default=str)
        dump += json.dumps([list(r) for r in conn.execute(sa.text("SELECT * FROM audit_event"))], default=str)
    assert created.secret not in dump and created.secret.removeprefix("whsec_") not in dump
    with session_scope(world.engine) as session:
        listed = webhooks.list_endpoints(session, actor=world.actor)
        rolled = webhooks.roll_secret(session, actor=world.actor, endpoint_id=created.endpoint.id)
    assert listed == [created.endpoint] and "secret" not in listed[0].model_dump()
    assert rolled.secret != created.secret


@pytest.mark.parametrize(("url", "demo_mode", "fine"), [
    ("https://hooks.example.com/cf?x=1", False, True),
    ("http://hooks.example.com/cf", False, False),
    ("http://hooks.example.com/cf", True, False),
    ("http://localhost:8000/hook", True, True),
    ("http://127.0.0.1:8000/hook", True, True),
    ("https://localhost/hook", False, False),
    ("https://127.0.0.1/hook", False, False),
    ("https://10.0.0.5/hook", True, False),
    ("https://169.254.169.254/latest/meta-data", True, False),
    ("https://[::1]/hook", False, False),
    ("https://[fd00::1]/hook", True, False),
    ("https://user:pass@hooks.example.com/cf", False, False),
    ("https://printer.local/hook", False, False),
    ("ftp://hooks.example.com/cf", False, False),
    ("https://hooks.example.com:99999/cf", False, False),
    ("https://hooks.example.com/cf#top", False, False),
    ("hooks.example.com/cf", False, False),
])
def test_endpoint_addresses_are_checked(url: str, demo_mode: bool, fine: bool) -> None:
    if fine:
        assert webhooks.check_url(url, demo_mode=demo_mode) == url
    else:
        with pytest.raises(DomainError):
            webhooks.check_url(url, demo_mode=demo_mode)


def test_a_name_that_resolves_to_a_private_address_is_not_posted_to(world: World) -> None:
    posted = []
    with session_scope(world.engine) as session:
        webhooks.create_endpoint(session, actor=world.actor, url="https://localtest.me/hook", event_types=ALL)
    world.assign(world.people[0])
    # A public-looking name that resolves to a private address (demo mode allows loopback only) is not posted to.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(webhooks.socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("10.1.2.3", 443))])
        assert deliver(world, http_post=lambda *a: posted.append(a) or 200) == {"retrying": 1}
    assert posted == []
    with session_scope(world.engine, write=False) as session:
        (attempt,) = webhooks.attempts_of(session, actor=world.actor, webhook_event_id=world.outbox()[0].id)
    assert "private or local address" in attempt.error


@pytest.mark.parametrize("role", [Role.BILLING_ADMIN, Role.LICENSE_ADMIN, Role.VIEWER])
def test_only_owners_manage_webhooks(world: World, role: Role) -> None:
    with session_scope(world.engine) as session:
        member = User(account_id=world.actor.account_id, name="Member", email=f"m-{role.value}@example.com",
                      role=role.value)
        session.add(member)
        session.flush()
        actor = actor_for_user(session, member.id)
    with pytest.raises(NotAllowed, match="Only owners can manage webhooks"), session_scope(world.engine) as session:
        webhooks.create_endpoint(session, actor=actor, url="https://hooks.example.com/x", event_types=ALL)
    with pytest.raises(NotAllowed), session_scope(world.engine) as session:
        webhooks.list_endpoints(session, actor=actor)


def test_another_accounts_endpoints_and_events_are_not_found(world: World, receiver: Receiver) -> None:
    endpoint = world.endpoint(receiver)
    world.assign(world.people[0])
    (row,) = world.outbox()
    stranger = world.other_actor
    calls = [
        lambda s: webhooks.delivery_log(s, actor=stranger, endpoint_id=endpoint),
        lambda s: webhooks.attempts_of(s, actor=stranger, webhook_event_id=row.id),
        lambda s: webhooks.resend(s, actor=stranger, webhook_event_id=row.id, now=NOW),
        lambda s: webhooks.roll_secret(s, actor=stranger, endpoint_id=endpoint),
        lambda s: webhooks.set_enabled(s, actor=stranger, endpoint_id=endpoint, enabled=False),
        lambda s: webhooks.delete_endpoint(s, actor=stranger, endpoint_id=endpoint),
    ]
    for call in calls:
        with pytest.raises(NotFound), session_scope(world.engine) as session:
            call(session)
    with session_scope(world.engine) as session:
        assert webhooks.list_endpoints(session, actor=stranger) == []
        webhooks.delete_endpoint(session, actor=world.actor, endpoint_id=endpoint)
    assert world.outbox() == []


def test_outside_demo_mode_webhooks_need_the_servers_signing_key(world: World,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from cf_portal.settings import Settings

    def create() -> webhooks.NewSecret:
        with session_scope(world.engine) as session:
            return webhooks.create_endpoint(session, actor=world.actor, url="https://hooks.example.com/x",
                                            event_types=ALL)

    def secret_now(endpoint_id: int) -> str:
        with session_scope(world.engine, write=False) as session:
            return webhooks.endpoint_secret(endpoint_id, session.get(webhooks.WebhookEndpoint, endpoint_id).secret_salt)

    live = {"CF_DEMO_MODE": "false", "CF_PAYMENT_PROVIDER": "sandbox"}
    monkeypatch.setattr(webhooks, "get_settings", lambda: Settings(**live))
    with pytest.raises(DomainError, match="CF_WEBHOOK_SIGNING_KEY"):
        create()
    monkeypatch.setattr(webhooks, "get_settings", lambda: Settings(**live, CF_WEBHOOK_SIGNING_KEY="k" * 32))
    created = create()
    assert secret_now(created.endpoint.id) == created.secret  # worked out again from the key and the salt
    # Another server key: every endpoint's secret changes.
    monkeypatch.setattr(webhooks, "get_settings", lambda: Settings(**live, CF_WEBHOOK_SIGNING_KEY="j" * 32))
    assert secret_now(created.endpoint.id) != created.secret
    with pytest.raises(ValueError, match="at least 32"):
        Settings(**live, CF_WEBHOOK_SIGNING_KEY="short")


def test_finished_events_are_deleted_after_thirty_days_and_pending_ones_kept(world: World,
                                                                             receiver: Receiver) -> None:
    world.endpoint(receiver)
    world.assign(world.people[0], world.people[1])
    receiver.script = [200, 500]
    assert deliver(world) == {"delivered": 1, "retrying": 1}
    with session_scope(world.engine) as session:
        assert webhooks.purge_finished(session, now=NOW + 29 * DAY) == 0
        assert webhooks.purge_finished(session, now=NOW + 31 * DAY) == 1
    assert [row.status for row in world.outbox()] == ["pending"]


def test_the_command_sends_what_is_due(world: World, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from cf_portal import cli, db

    world.endpoint(receiver)
    world.assign(world.people[0])
    monkeypatch.setattr(db, "get_engine", lambda: world.engine)
    assert cli.main(["deliver-webhooks"]) == 0
    assert "1 delivered" in capsys.readouterr().out
    assert cli.main(["deliver-webhooks"]) == 0
    assert "nothing due" in capsys.readouterr().out
    assert len(receiver.received) == 1
