"""Accounts and sessions: sign up, sign in with throttling, sessions that end, password changes.

The tests of sign-ins and sign-ups at the same moment are only real races on
PostgreSQL (on SQLite writers queue up behind `BEGIN IMMEDIATE`); `make test` runs them there
too. See tests/support/concurrency.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.models import Account, AuthSession, Role, Throttle, User
from cf_portal.services import auth, members, passwords, throttle
from cf_portal.services.auth import FormErrors
from cf_portal.services.errors import DomainError, SignInRequired
from tests.support.concurrency import run_at_once
from tests.unit.conftest import NOW, Seeded

PASSWORD = "correct horse battery"


def sign_up(engine: sa.Engine, email: str = "Founder@NewCo.example", *, client: str = "", at=NOW,  # noqa: ANN001
            **overrides: str) -> auth.SignedIn:
    values = dict(company="NewCo", name="Fay Founder", email=email, password=PASSWORD) | overrides
    return auth.sign_up(engine, client=client, now=at, **values)


def sign_in(engine: sa.Engine, email: str, password: str, *, client: str = "10.0.0.1", at=NOW,  # noqa: ANN001
            remember: bool = False) -> auth.SignedIn:
    return auth.sign_in(engine, email=email, password=password, remember=remember, client=client, now=at)


def actor_of(engine: sa.Engine, token: str, at=NOW):  # noqa: ANN001, ANN201
    with session_scope(engine, write=False) as session:
        return auth.actor_for_token(session, token, now=at)


def test_sign_up_makes_an_account_with_its_owner_signed_in(seeded: Seeded) -> None:
    signed_in = sign_up(seeded.engine)
    actor = actor_of(seeded.engine, signed_in.token)
    assert (actor.account_name, actor.user_name, actor.email, actor.role) == (
        "NewCo", "Fay Founder", "founder@newco.example", Role.OWNER.value)
    with session_scope(seeded.engine, write=False) as session:
        user = session.get(User, actor.user_id)
        stored = session.exec(select(AuthSession).where(AuthSession.user_id == user.id)).one()
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert stored.token_hash == auth.token_digest(signed_in.token) and signed_in.token not in stored.token_hash
    assert stored.expires_at - NOW == timedelta(hours=auth.SESSION_HOURS)


def test_sign_up_reports_every_wrong_field_at_once(seeded: Seeded) -> None:
    with pytest.raises(FormErrors) as caught:
        sign_up(seeded.engine, company=" ", name="", email="not-an-email", password="short")
    assert set(caught.value.by_field()) == {"company", "name", "email", "password"}
    with session_scope(seeded.engine, write=False) as session:
        assert session.exec(select(Account).where(Account.name == "NewCo")).first() is None


@pytest.mark.parametrize("password", ["password123", "Password123", "1234567890", "founder@newco.example",
                                      "aaaaaaaaaaaa", "qwertyuiop"])
def test_common_or_guessable_passwords_are_refused(seeded: Seeded, password: str) -> None:
    with pytest.raises(FormErrors) as caught:
        sign_up(seeded.engine, password=password)
    assert "password" in caught.value.by_field()


def test_the_same_email_cannot_sign_up_twice_in_any_case(seeded: Seeded) -> None:
    sign_up(seeded.engine)
    with pytest.raises(FormErrors) as caught:
        sign_up(seeded.engine, email="FOUNDER@newco.EXAMPLE", company="Other")
    assert caught.value.by_field() == {"email": auth.EMAIL_IN_USE}
    assert "sign in instead" in auth.EMAIL_IN_USE and "ask its owner to invite you" in auth.EMAIL_IN_USE


def test_sign_in_compares_emails_case_insensitively_and_remembers_for_30_days(seeded: Seeded) -> None:
    sign_up(seeded.engine)
    signed_in = sign_in(seeded.engine, "  FOUNDER@newco.example ", PASSWORD, remember=True)
    assert actor_of(seeded.engine, signed_in.token).email == "founder@newco.example"
    with session_scope(seeded.engine, write=False) as session:
        stored = session.exec(select(AuthSession).where(
            AuthSession.token_hash == auth.token_digest(signed_in.token))).one()
    assert stored.remember and stored.expires_at - NOW == timedelta(days=auth.REMEMBER_DAYS)


def test_wrong_password_and_unknown_email_get_the_same_message(seeded: Seeded) -> None:
    sign_up(seeded.engine)
    with pytest.raises(DomainError) as wrong:
        sign_in(seeded.engine, "founder@newco.example", "not the password")
    with pytest.raises(DomainError) as unknown:
        sign_in(seeded.engine, "nobody@newco.example", PASSWORD)
    assert wrong.value.message == unknown.value.message == auth.WRONG_CREDENTIALS


def test_members_without_a_password_cannot_sign_in(seeded: Seeded) -> None:
    """The seeded demo people have no password: only "Try the demo" reaches the owner."""
    with pytest.raises(DomainError, match="not right"):
        sign_in(seeded.engine, "owner@acme-security.example", "")


def wait_seconds(message: str) -> int:
    return int(message.split("Wait ")[1].split(" ")[0])


def test_failed_sign_ins_slow_down_then_lock_the_email_from_that_client_only(seeded: Seeded) -> None:
    sign_up(seeded.engine)
    email, at = "founder@newco.example", NOW
    for _ in range(3):  # free failures
        with pytest.raises(DomainError, match="not right"):
            sign_in(seeded.engine, email, "wrong password", at=at)
    # The next attempt, even with the right password, must wait: the password is not even checked.
    with pytest.raises(DomainError, match=r"Wait 1 second"):
        sign_in(seeded.engine, email, PASSWORD, at=at)
    waits = []
    for _ in range(6):
        at += timedelta(seconds=31)
        with pytest.raises(DomainError, match="not right"):
            sign_in(seeded.engine, email, "wrong password", at=at)
        try:
            sign_in(seeded.engine, email, PASSWORD, at=at)
        except DomainError as exc:
            waits.append(exc.message)
    assert all("Wait" in message for message in waits), waits
    at += timedelta(seconds=31)
    with pytest.raises(DomainError, match="not right"):  # the 10th failure in the window locks this client out
        sign_in(seeded.engine, email, "wrong password", at=at)
    with pytest.raises(DomainError, match=r"locked for 15 minutes"):
        sign_in(seeded.engine, email, PASSWORD, at=at + timedelta(seconds=40))
    # The same email from another client is only slowed down, never locked; the locked pair opens after the lock.
    assert sign_in(seeded.engine, email, PASSWORD, client="10.0.0.2", at=at + timedelta(seconds=40)).token
    assert sign_in(seeded.engine, email, PASSWORD, at=at + timedelta(minutes=15, seconds=1)).token


def test_a_stranger_cannot_lock_a_customer_out(seeded: Seeded) -> None:
    """OWASP: lock per (email, client) and slow the email down everywhere, so that failing on purpose from one
    place locks only that place out. The real owner, elsewhere, waits at most the longest delay (30 s)."""
    sign_up(seeded.engine)
    email, stranger, owner, at = "founder@newco.example", "203.0.113.66", "198.51.100.20", NOW
    failures = 0
    while True:
        try:
            sign_in(seeded.engine, email, f"guess {failures}", client=stranger, at=at)
        except DomainError as exc:
            if "locked" in exc.message:
                break
            if "Wait" in exc.message:
                at += timedelta(seconds=wait_seconds(exc.message))
                continue
            failures += 1
    assert failures == throttle.SIGN_IN_PAIR.lock_after
    with pytest.raises(DomainError, match="locked"):  # the stranger's place is locked, even with the password
        sign_in(seeded.engine, email, PASSWORD, client=stranger, at=at)
    try:
        signed_in = sign_in(seeded.engine, email, PASSWORD, client=owner, at=at)
    except DomainError as exc:
        assert "locked" not in exc.message and wait_seconds(exc.message) <= throttle.SIGN_IN_EMAIL.max_delay_s
        signed_in = sign_in(seeded.engine, email, PASSWORD, client=owner, at=at + timedelta(
            seconds=wait_seconds(exc.message)))
    assert actor_of(seeded.engine, signed_in.token).email == email


def test_guesses_at_one_email_from_many_clients_are_slowed_down_never_locked(seeded: Seeded) -> None:
    """Many clients (a botnet) at one email: each guess past the free ones waits 1, 2, 4 ... up to 30 seconds,
    whichever client sends it, and the email never locks: its owner gets in after the wait."""
    sign_up(seeded.engine)
    email, at, waits = "founder@newco.example", NOW, []
    for i in range(20):  # (within the 15 minutes of one window)
        try:
            sign_in(seeded.engine, email, f"guess {i}", client=f"192.0.2.{i}", at=at)
        except DomainError as exc:
            if exc.message != auth.WRONG_CREDENTIALS:
                waits.append(wait_seconds(exc.message))
                at += timedelta(seconds=waits[-1])
                with pytest.raises(DomainError, match="not right"):
                    sign_in(seeded.engine, email, f"guess {i}", client=f"192.0.2.{i}", at=at)
    assert waits == [1, 2, 4, 8, 16] + [30] * 12, waits
    assert sign_in(seeded.engine, email, PASSWORD, client="198.51.100.20", at=at + timedelta(seconds=30)).token


def test_a_client_guessing_across_many_emails_is_slowed_then_locked(seeded: Seeded) -> None:
    sign_up(seeded.engine)
    at, failures, refusals = NOW, 0, 0
    while True:
        try:
            sign_in(seeded.engine, f"guess{failures}@newco.example", "wrong password", client="203.0.113.9", at=at)
        except DomainError as exc:
            if "locked" in exc.message:
                break
            if "Wait" in exc.message:  # slowed down: wait as told
                refusals += 1
                at += timedelta(seconds=int(exc.message.split("Wait ")[1].split(" ")[0]))
                continue
            failures += 1
    assert failures == throttle.SIGN_IN_CLIENT.lock_after and refusals > 0
    assert at - NOW < throttle.SIGN_IN_CLIENT.window
    with pytest.raises(DomainError, match="locked"):  # the right password of a real member: refused too
        sign_in(seeded.engine, "founder@newco.example", PASSWORD, client="203.0.113.9", at=at)
    assert sign_in(seeded.engine, "founder@newco.example", PASSWORD, client="198.51.100.1", at=at).token


def test_parallel_wrong_passwords_get_no_more_tries_than_the_throttle_allows(seeded: Seeded) -> None:
    """Tries sent at once (other clients, one email) must not all pass the check made before the password is
    hashed: only the free failures are judged, the rest are told to wait."""
    sign_up(seeded.engine)
    messages = []

    def guess(i: int) -> None:
        try:
            sign_in(seeded.engine, "founder@newco.example", f"wrong password {i}", client=f"10.9.0.{i}")
        except DomainError as exc:
            messages.append(exc.message)

    run_at_once(8, guess)
    assert len(messages) == 8, messages  # every try refused in words, none crashed
    judged = messages.count(auth.WRONG_CREDENTIALS)
    assert judged == throttle.SIGN_IN_EMAIL.free, messages
    assert all(m.startswith("Too many failed sign-ins.") for m in messages if m != auth.WRONG_CREDENTIALS)
    with session_scope(seeded.engine, write=False) as session:
        counted = session.get(Throttle, "signin-email:founder@newco.example").failures
    assert counted == throttle.SIGN_IN_EMAIL.free


def test_passwords_are_hashed_and_checked_outside_any_transaction(seeded: Seeded,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A hash takes about 0.1 s: inside a write transaction it would hold SQLite's one write lock that long
    (for everyone), so no database connection may be held while hashing."""
    held: list[int] = []

    def watched(work):  # noqa: ANN001, ANN202
        def run(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            held.append(seeded.engine.pool.checkedout())
            return work(*args, **kwargs)
        return run

    monkeypatch.setattr(passwords, "hash_password", watched(passwords.hash_password))
    monkeypatch.setattr(passwords, "verify_password", watched(passwords.verify_password))
    signed_in = sign_up(seeded.engine)
    with pytest.raises(DomainError):
        sign_in(seeded.engine, "founder@newco.example", "not the password")
    sign_in(seeded.engine, "founder@newco.example", PASSWORD)
    auth.change_password(seeded.engine, actor=actor_of(seeded.engine, signed_in.token),
                         session_digest=auth.token_digest(signed_in.token), current=PASSWORD,
                         new="a much better passphrase", confirm="a much better passphrase", now=NOW)
    with session_scope(seeded.engine) as session:
        created = members.invite(session, actor=seeded.actor, email="new.hire@acme-security.example", role="viewer",
                                 base_url="", now=NOW)
    members.accept_invitation(seeded.engine, token=created.link.split("token=")[1], name="New Hire",
                              password=PASSWORD, confirm=PASSWORD, client="", now=NOW)
    assert len(held) == 6 and set(held) == {0}, held


def test_sign_ups_from_one_client_are_slowed_then_locked(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "hash_password", lambda password: "$argon2id$not-hashed-in-this-test")
    client, at, made, refusals = "203.0.113.5", NOW, 0, 0
    while True:
        try:
            sign_up(seeded.engine, f"founder{made}@newco.example", client=client, at=at, company=f"NewCo {made}")
            made += 1
        except DomainError as exc:
            if "locked" in exc.message:
                break
            assert exc.message.startswith("Too many sign-ups from your network. Wait"), exc.message
            refusals += 1
            at += timedelta(seconds=int(exc.message.split("Wait ")[1].split(" ")[0]))
    assert made == throttle.SIGN_UP_CLIENT.lock_after and refusals > 0
    assert sign_up(seeded.engine, "someone@else.example", client="198.51.100.7", at=at).token  # another client
    # Parallel sign-ups from a new client: only the free ones go ahead.
    outcomes = []

    def sign_up_now(i: int) -> None:
        try:
            sign_up(seeded.engine, f"parallel{i}@newco.example", client="192.0.2.1", company=f"Parallel {i}")
            outcomes.append("made")
        except DomainError as exc:
            outcomes.append(exc.message.split(".")[0])

    run_at_once(throttle.SIGN_UP_CLIENT.free + 4, sign_up_now)
    assert sorted(outcomes) == sorted(["made"] * throttle.SIGN_UP_CLIENT.free + ["Too many sign-ups from your network"] * 4)


def test_a_success_clears_the_email_count(seeded: Seeded) -> None:
    sign_up(seeded.engine)
    for _ in range(3):
        with pytest.raises(DomainError):
            sign_in(seeded.engine, "founder@newco.example", "wrong password")
    assert sign_in(seeded.engine, "founder@newco.example", PASSWORD, at=NOW + timedelta(seconds=2)).token
    with pytest.raises(DomainError, match="not right"):  # no wait: the count started again
        sign_in(seeded.engine, "founder@newco.example", "wrong password", at=NOW + timedelta(seconds=2))


def test_sessions_end_at_expiry_on_sign_out_and_for_removed_members(seeded: Seeded) -> None:
    signed_in = sign_up(seeded.engine)
    with pytest.raises(SignInRequired):
        actor_of(seeded.engine, signed_in.token, at=NOW + timedelta(hours=auth.SESSION_HOURS, seconds=1))
    with pytest.raises(SignInRequired):
        actor_of(seeded.engine, "")
    with pytest.raises(SignInRequired):
        actor_of(seeded.engine, signed_in.token + "x")
    with session_scope(seeded.engine) as session:
        auth.end_session(session, signed_in.token)
    with pytest.raises(SignInRequired):
        actor_of(seeded.engine, signed_in.token)


def test_changing_the_password_ends_every_session_and_keeps_this_one(seeded: Seeded) -> None:
    first = sign_up(seeded.engine)
    other_browser = sign_in(seeded.engine, "founder@newco.example", PASSWORD)
    actor = actor_of(seeded.engine, first.token)
    new_password = "a much better passphrase"
    with pytest.raises(FormErrors) as caught:
        auth.change_password(seeded.engine, actor=actor, session_digest=auth.token_digest(first.token),
                             current="wrong", new="short", confirm="other", now=NOW)
    assert set(caught.value.by_field()) == {"current_password", "new_password", "confirm_password"}
    renewed = auth.change_password(seeded.engine, actor=actor, session_digest=auth.token_digest(first.token),
                                   current=PASSWORD, new=new_password, confirm=new_password, now=NOW)
    assert not renewed.remember
    for old in (first, other_browser):
        with pytest.raises(SignInRequired):
            actor_of(seeded.engine, old.token)
    assert actor_of(seeded.engine, renewed.token).user_id == actor.user_id
    with pytest.raises(DomainError):
        sign_in(seeded.engine, "founder@newco.example", PASSWORD, at=NOW + timedelta(minutes=1))
    assert sign_in(seeded.engine, "founder@newco.example", new_password, at=NOW + timedelta(minutes=1)).token


def test_changing_the_password_keeps_remember_me(seeded: Seeded) -> None:
    sign_up(seeded.engine)
    remembered = sign_in(seeded.engine, "founder@newco.example", PASSWORD, remember=True)
    new_password = "a much better passphrase"
    renewed = auth.change_password(seeded.engine, actor=actor_of(seeded.engine, remembered.token),
                                   session_digest=auth.token_digest(remembered.token), current=PASSWORD,
                                   new=new_password, confirm=new_password, now=NOW)
    assert renewed.remember
    with session_scope(seeded.engine, write=False) as session:
        stored = session.exec(select(AuthSession).where(
            AuthSession.token_hash == auth.token_digest(renewed.token))).one()
    assert stored.remember and stored.expires_at - NOW == timedelta(days=auth.REMEMBER_DAYS)


def test_password_rules() -> None:
    assert passwords.check_new_password("four unrelated words") == "four unrelated words"
    assert passwords.verify_password(passwords.hash_password("four unrelated words"), "four unrelated words")
    assert not passwords.verify_password(None, "anything at all")
    assert not passwords.verify_password("not a hash", "anything at all")
    assert len(passwords.common_passwords()) >= 100


def test_purging_deletes_only_what_has_ended(seeded: Seeded) -> None:
    kept = sign_up(seeded.engine)
    with session_scope(seeded.engine) as session:
        ended = auth.start_session(session, user_id=actor_of(seeded.engine, kept.token).user_id, remember=False,
                                   now=NOW - timedelta(days=1))
        throttle.record_failure(session, "test:old", throttle.SIGN_IN_EMAIL, now=NOW - timedelta(days=2))
        throttle.record_failure(session, "test:recent", throttle.SIGN_IN_EMAIL, now=NOW)
    with session_scope(seeded.engine) as session:
        assert auth.purge_expired(session, now=NOW) == (1, 1)
    assert actor_of(seeded.engine, kept.token)
    with pytest.raises(SignInRequired):
        actor_of(seeded.engine, ended.token)
