"""API keys: made by owners only, shown once and stored as a digest, listed without secrets, revoked at once."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.models import Account, ApiKey, AuditEvent, User
from cf_portal.services import api_keys
from cf_portal.services.actors import Actor, actor_for_user
from cf_portal.services.errors import DomainError, NotAllowed, NotFound
from tests.unit.conftest import NOW, Seeded


def make_key(seeded: Seeded, actor: Actor | None = None, *, name: str = "Phishing Simulator",
             demo_mode: bool = False) -> api_keys.NewApiKey:
    with session_scope(seeded.engine) as session:
        return api_keys.create(session, actor=actor or seeded.actor, name=name, demo_mode=demo_mode, now=NOW)


def authenticate(seeded: Seeded, key: str, *, now=NOW) -> api_keys.ApiCaller:  # noqa: ANN001
    with session_scope(seeded.engine, write=False) as session:
        return api_keys.authenticate(session, key, scope=api_keys.ENTITLEMENTS_READ, now=now)


def member(seeded: Seeded, role: str) -> Actor:
    with session_scope(seeded.engine) as session:
        user = User(account_id=seeded.actor.account_id, name=f"A {role}", email=f"{role}@acme.example", role=role)
        session.add(user)
        session.flush()
        return actor_for_user(session, user.id)


@pytest.mark.parametrize(("demo_mode", "prefix"), [(True, "cfk_demo_"), (False, "cfk_live_")])
def test_a_key_is_256_random_bits_with_a_visible_prefix_stored_only_as_a_digest(seeded: Seeded, demo_mode: bool,
                                                                               prefix: str) -> None:
    made = make_key(seeded, demo_mode=demo_mode)
    other = make_key(seeded, demo_mode=demo_mode)
    assert made.secret.startswith(prefix) and len(made.secret) == len(prefix) + 43  # base64url of 32 bytes
    assert made.secret != other.secret
    assert made.key.prefix == made.secret[:len(prefix) + 6] and made.key.scopes == ["entitlements:read"]
    assert made.secret not in repr(made)  # a DTO that is printed or logged does not show it
    with session_scope(seeded.engine, write=False) as session:
        row = session.get(ApiKey, made.key.id)
        stored = " ".join(str(value) for value in row.model_dump().values())
    assert made.secret not in stored and made.secret[len(prefix) + 6:] not in stored
    assert row.secret_hash == api_keys.key_digest(made.secret)
    assert authenticate(seeded, made.secret).account_id == seeded.actor.account_id


@pytest.mark.parametrize("role", ["billing_admin", "license_admin", "viewer"])
def test_only_owners_make_list_and_revoke_keys(seeded: Seeded, role: str) -> None:
    made = make_key(seeded)
    someone = member(seeded, role)
    with session_scope(seeded.engine) as session:
        with pytest.raises(NotAllowed, match="Only owners can manage API keys"):
            api_keys.create(session, actor=someone, name="Mine", demo_mode=False)
        with pytest.raises(NotAllowed):
            api_keys.list_keys(session, actor=someone)
        with pytest.raises(NotAllowed):
            api_keys.revoke(session, actor=someone, key_id=made.key.id)
    authenticate(seeded, made.secret)  # still works


@pytest.mark.parametrize(("name", "message"), [("   ", "Name the key"), ("x" * 81, "at most 80"),
                                               ("Evil\u202eName", "invisible characters"), ("Line\nbreak", "line")])
def test_the_name_is_checked_like_every_name(seeded: Seeded, name: str, message: str) -> None:
    with pytest.raises(DomainError, match=message):
        make_key(seeded, name=name)


def test_the_list_shows_name_prefix_dates_and_creator_never_the_secret(seeded: Seeded) -> None:
    first = make_key(seeded, name="Awareness LMS")
    second = make_key(seeded, name="Dark web monitor")
    with session_scope(seeded.engine) as session:
        api_keys.record_use(session, caller=authenticate(seeded, first.secret), now=NOW + timedelta(minutes=5))
        api_keys.revoke(session, actor=seeded.actor, key_id=second.key.id, now=NOW + timedelta(minutes=6))
    with session_scope(seeded.engine, write=False) as session:
        listed = api_keys.list_keys(session, actor=seeded.actor)
    assert [(k.name, k.prefix, k.created_by) for k in listed] == [
        ("Dark web monitor", second.key.prefix, seeded.actor.user_name),
        ("Awareness LMS", first.key.prefix, seeded.actor.user_name)]
    assert listed[1].last_used_at == NOW + timedelta(minutes=5) and listed[1].revoked_at is None
    assert listed[0].revoked_at == NOW + timedelta(minutes=6)
    shown = " ".join(k.model_dump_json() for k in listed)
    assert first.secret not in shown and second.secret not in shown
    assert api_keys.key_digest(first.secret) not in shown


def test_a_revoked_key_is_refused_at_once_and_revoking_again_changes_nothing(seeded: Seeded) -> None:
    made = make_key(seeded)
    authenticate(seeded, made.secret)
    with session_scope(seeded.engine) as session:
        api_keys.revoke(session, actor=seeded.actor, key_id=made.key.id, now=NOW)
    with pytest.raises(api_keys.InvalidApiKey, match="revoked"):
        authenticate(seeded, made.secret)
    with session_scope(seeded.engine) as session:
        api_keys.revoke(session, actor=seeded.actor, key_id=made.key.id, now=NOW + timedelta(hours=1))
    with session_scope(seeded.engine, write=False) as session:
        assert session.get(ApiKey, made.key.id).revoked_at == NOW
        actions = session.exec(select(AuditEvent.action).where(AuditEvent.object_type == "api_key")
                               .order_by(AuditEvent.id)).all()
    assert actions == ["api_key.created", "api_key.revoked"]


def test_another_accounts_key_cannot_be_revoked_nor_listed(seeded: Seeded) -> None:
    other = seeded.other_actor()
    theirs = make_key(seeded, other)
    with session_scope(seeded.engine) as session:
        with pytest.raises(NotFound):
            api_keys.revoke(session, actor=seeded.actor, key_id=theirs.key.id)
        assert api_keys.list_keys(session, actor=seeded.actor) == []
    assert authenticate(seeded, theirs.secret).account_id == other.account_id


@pytest.mark.parametrize("presented", ["", "Bearer", "cfk_live_", "cfk_live_" + "A" * 43, "sk_live_abc",
                                       "cfk_" + "x" * 200, "cfk_live_\n"])
def test_unknown_or_malformed_keys_are_refused(seeded: Seeded, presented: str) -> None:
    make_key(seeded)
    with pytest.raises(api_keys.InvalidApiKey):
        authenticate(seeded, presented)


def test_a_key_of_a_demo_copy_stops_with_the_copy(seeded: Seeded) -> None:
    made = make_key(seeded)
    with session_scope(seeded.engine) as session:
        session.get(Account, seeded.actor.account_id).demo_expires_at = NOW + timedelta(hours=1)
    authenticate(seeded, made.secret)
    with pytest.raises(api_keys.InvalidApiKey, match="expired"):
        authenticate(seeded, made.secret, now=NOW + timedelta(hours=1))


def test_a_key_without_the_scope_is_refused(seeded: Seeded) -> None:
    made = make_key(seeded)
    with session_scope(seeded.engine) as session:
        session.execute(sa.update(ApiKey).values(scopes="webhooks:write"))
    with pytest.raises(api_keys.MissingScope, match="entitlements:read"):
        authenticate(seeded, made.secret)


def test_the_last_use_is_written_at_most_once_an_hour(seeded: Seeded) -> None:
    made = make_key(seeded)
    caller = authenticate(seeded, made.secret)
    assert caller.use_to_record(NOW)
    with session_scope(seeded.engine) as session:
        assert api_keys.record_use(session, caller=caller, now=NOW)
        assert not api_keys.record_use(session, caller=caller, now=NOW + timedelta(minutes=59))
        assert api_keys.record_use(session, caller=caller, now=NOW + timedelta(minutes=61))
    assert not authenticate(seeded, made.secret).use_to_record(NOW + timedelta(minutes=100))


def test_keys_go_with_a_demo_reset(seeded: Seeded, provider) -> None:  # noqa: ANN001
    """Resetting the demo puts the account back to the seed, which has no keys."""
    from cf_portal.services.demo import reset_demo_account

    made = make_key(seeded)
    reset_demo_account(seeded.engine, provider, actor=seeded.actor, now=NOW)
    with pytest.raises(api_keys.InvalidApiKey):
        authenticate(seeded, made.secret)


def test_the_owner_is_found_by_email_for_the_command_line(seeded: Seeded) -> None:
    viewer = member(seeded, "viewer")
    with session_scope(seeded.engine) as session:
        assert api_keys.owner_by_email(session, f"  {seeded.actor.email.upper()} ").user_id == seeded.actor.user_id
        with pytest.raises(NotAllowed, match="not an owner"):
            api_keys.owner_by_email(session, viewer.email)
        with pytest.raises(NotFound):
            api_keys.owner_by_email(session, "nobody@nowhere.example")


def test_making_and_using_a_key_logs_no_secret(seeded: Seeded, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    made = make_key(seeded)
    with session_scope(seeded.engine) as session:
        api_keys.record_use(session, caller=authenticate(seeded, made.secret), now=NOW)
        api_keys.revoke(session, actor=seeded.actor, key_id=made.key.id, now=NOW)
    with pytest.raises(api_keys.InvalidApiKey) as refused:
        authenticate(seeded, made.secret)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert made.secret not in logged and made.secret not in str(refused.value)
    with session_scope(seeded.engine, write=False) as session:
        details = " ".join(session.exec(select(AuditEvent.detail)).all())
    assert made.secret not in details and made.key.prefix in details
