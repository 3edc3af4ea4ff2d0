"""Members: invitations that work once and expire, roles, removal, and the last owner who stays.

The tests of invitations, acceptances and demotions at the same moment are only real races on
PostgreSQL (on SQLite writers queue up behind `BEGIN IMMEDIATE`); `make test` runs them there
too. See tests/support/concurrency.py."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.models import AuditEvent, Invitation, Role, Throttle, User
from cf_portal.services import auth, members, throttle
from cf_portal.services.actors import Actor, actor_for_user
from cf_portal.services.errors import DomainError, NotAllowed, NotFound, SignInRequired
from tests.support.concurrency import pausing_for_each_other, run_at_once
from tests.unit.conftest import NOW, Seeded

PASSWORD = "correct horse battery"
BASE = "https://portal.example"


def invite(seeded: Seeded, email: str = "new.hire@acme-security.example", role: str = "license_admin",
           actor: Actor | None = None, at=NOW) -> members.InvitationCreated:  # noqa: ANN001
    with session_scope(seeded.engine) as session:
        return members.invite(session, actor=actor or seeded.actor, email=email, role=role, base_url=BASE, now=at)


def token_of(created: members.InvitationCreated) -> str:
    return created.link.split("token=", 1)[1]


def accept(seeded: Seeded, token: str, at=NOW, name: str = "New Hire", client: str = "") -> auth.SignedIn:  # noqa: ANN001
    return members.accept_invitation(seeded.engine, token=token, name=name, password=PASSWORD, confirm=PASSWORD,
                                     client=client, now=at)


def member_actor(seeded: Seeded, email: str) -> Actor:
    with session_scope(seeded.engine, write=False) as session:
        return actor_for_user(session, session.exec(select(User.id).where(User.email == email)).one())


def two_owners(seeded: Seeded) -> list[Actor]:
    """The demo owner and the billing admin, made an owner too."""
    billing = member_actor(seeded, "billing@acme-security.example")
    with session_scope(seeded.engine) as session:
        members.change_role(session, actor=seeded.actor, user_id=billing.user_id, role="owner", now=NOW)
    return [seeded.actor, member_actor(seeded, "billing@acme-security.example")]


def test_an_invitation_link_signs_the_invitee_in_with_the_role(seeded: Seeded, caplog) -> None:  # noqa: ANN001
    caplog.set_level("INFO")
    created = invite(seeded, email="New.Hire@Acme-Security.example")
    assert created.link.startswith(f"{BASE}/invitation?token=") and created.email == "new.hire@acme-security.example"
    assert token_of(created) not in caplog.text  # shown once to the owner; the log is no outbox (test_logs.py)
    with session_scope(seeded.engine, write=False) as session:
        stored = session.exec(select(Invitation)).one()
        preview = members.preview_invitation(session, token=token_of(created), now=NOW)
    assert token_of(created) not in stored.token_hash and stored.expires_at - NOW == timedelta(days=7)
    assert (preview.account_name, preview.email, preview.role_label) == (
        "Acme Security Ltd", "new.hire@acme-security.example", "License admin")
    signed_in = accept(seeded, token_of(created))
    with session_scope(seeded.engine, write=False) as session:
        actor = auth.actor_for_token(session, signed_in.token, now=NOW)
    assert (actor.account_id, actor.role, actor.user_name) == (seeded.actor.account_id, "license_admin", "New Hire")


def test_an_invitation_works_once(seeded: Seeded) -> None:
    token = token_of(invite(seeded))
    accept(seeded, token)
    with pytest.raises(DomainError, match="already been used"):
        accept(seeded, token, name="Someone Else")


def test_two_tabs_accepting_at_once_make_one_member(seeded: Seeded) -> None:
    token = token_of(invite(seeded))
    barrier, outcomes = threading.Barrier(4), []

    def attempt() -> None:
        barrier.wait()
        try:
            accept(seeded, token)
            outcomes.append("joined")
        except DomainError as exc:
            outcomes.append(exc.message)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 4 and outcomes.count("joined") == 1, outcomes  # the others refused in words
    with session_scope(seeded.engine, write=False) as session:
        assert len(session.exec(select(User).where(User.email == "new.hire@acme-security.example")).all()) == 1


def test_expired_withdrawn_and_unknown_links_are_refused(seeded: Seeded) -> None:
    expired = token_of(invite(seeded, email="late@acme-security.example"))
    with pytest.raises(DomainError, match="expired"):
        accept(seeded, expired, at=NOW + timedelta(days=7, seconds=1))
    withdrawn = invite(seeded, email="withdrawn@acme-security.example")
    with session_scope(seeded.engine, write=False) as session:
        invitation_id = session.exec(select(Invitation.id).where(
            Invitation.email == "withdrawn@acme-security.example")).one()
    with session_scope(seeded.engine) as session:
        members.revoke_invitation(session, actor=seeded.actor, invitation_id=invitation_id, now=NOW)
    with pytest.raises(DomainError, match="withdrawn"):
        accept(seeded, token_of(withdrawn))
    with pytest.raises(DomainError, match="not valid"):
        accept(seeded, "made-up-token")


def test_inviting_again_replaces_the_earlier_link(seeded: Seeded) -> None:
    first = invite(seeded, role="viewer")
    second = invite(seeded, role="billing_admin")
    with pytest.raises(DomainError, match="withdrawn"):
        accept(seeded, token_of(first))
    accept(seeded, token_of(second))
    assert member_actor(seeded, "new.hire@acme-security.example").role == "billing_admin"


def test_two_owners_inviting_one_email_at_once_both_get_a_link(seeded: Seeded,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Each invitation pauses after revoking the earlier ones until the other has revoked too: without the
    # account lock both would then insert an open invitation for the email, against its unique index.
    monkeypatch.setattr(auth, "new_token", pausing_for_each_other(auth.new_token))
    owners, outcomes = two_owners(seeded), []

    def invite_now(i: int) -> None:
        try:
            outcomes.append(invite(seeded, actor=owners[i]).link)
        except Exception as exc:  # noqa: BLE001
            outcomes.append(type(exc).__name__)

    run_at_once(2, invite_now)
    assert all(outcome.startswith(BASE) for outcome in outcomes), outcomes
    with session_scope(seeded.engine, write=False) as session:
        assert len(members.list_invitations(session, account_id=seeded.actor.account_id, now=NOW)) == 1


def test_invitations_refuse_members_and_bad_input(seeded: Seeded) -> None:
    with pytest.raises(DomainError, match="already a member"):
        invite(seeded, email="auditor@acme-security.example")
    with pytest.raises(auth.FormErrors) as caught:
        invite(seeded, email="not an email", role="superuser")
    assert set(caught.value.by_field()) == {"email", "role"}


def test_inviting_tells_nothing_about_other_accounts(seeded: Seeded) -> None:
    """An owner learns nothing about addresses outside the account: one with an account elsewhere is invited
    like any other; its acceptance is refused, with the reason, and counts like a sign-up from that client."""
    other = seeded.other_actor()
    elsewhere, nowhere = invite(seeded, email=other.email), invite(seeded, email="nobody.yet@elsewhere.example")
    assert (elsewhere.email, elsewhere.role_label) == (other.email, "License admin")
    assert type(elsewhere) is type(nowhere) and elsewhere.link != nowhere.link
    with session_scope(seeded.engine, write=False) as session:
        preview = members.preview_invitation(session, token=token_of(elsewhere), now=NOW)  # no hint here either
    assert preview.email == other.email
    with pytest.raises(DomainError, match="already belongs to a ChatFortress account") as refused:
        accept(seeded, token_of(elsewhere), client="198.51.100.20")
    assert "ask the owner who invited you" in refused.value.message
    assert member_actor(seeded, other.email).account_id == other.account_id  # untouched
    with session_scope(seeded.engine, write=False) as session:
        assert session.get(Throttle, "signup-client:198.51.100.20").failures == 1
    accept(seeded, token_of(nowhere))


def test_accepting_invitations_is_throttled_per_client_like_signing_up(seeded: Seeded) -> None:
    token = token_of(invite(seeded))
    with session_scope(seeded.engine) as session:
        for _ in range(throttle.SIGN_UP_CLIENT.lock_after):
            throttle.record_failure(session, "signup-client:203.0.113.30", throttle.SIGN_UP_CLIENT, now=NOW)
    with pytest.raises(DomainError, match="Too many sign-ups from your network"):
        accept(seeded, token, client="203.0.113.30")
    assert accept(seeded, token, client="203.0.113.31").token


def test_only_owners_manage_members(seeded: Seeded) -> None:
    for email in ("billing@acme-security.example", "it-admin@acme-security.example", "auditor@acme-security.example"):
        actor = member_actor(seeded, email)
        with pytest.raises(NotAllowed):
            invite(seeded, actor=actor)
        with session_scope(seeded.engine) as session, pytest.raises(NotAllowed):
            members.change_role(session, actor=actor, user_id=actor.user_id, role="owner", now=NOW)
        with session_scope(seeded.engine) as session, pytest.raises(NotAllowed):
            members.remove_member(session, actor=actor, user_id=seeded.actor.user_id, now=NOW)
    assert member_actor(seeded, "auditor@acme-security.example").role == "viewer"


def test_roles_change_and_are_audited(seeded: Seeded) -> None:
    viewer = member_actor(seeded, "auditor@acme-security.example")
    with session_scope(seeded.engine) as session:
        row = members.change_role(session, actor=seeded.actor, user_id=viewer.user_id, role="billing_admin", now=NOW)
    assert row.role_label == "Billing admin"
    with session_scope(seeded.engine, write=False) as session:
        audit = session.exec(select(AuditEvent).where(AuditEvent.action == "member.role_changed")).one()
    assert audit.detail == "auditor@acme-security.example: Viewer → Billing admin"


def test_the_last_owner_cannot_be_demoted_or_removed(seeded: Seeded) -> None:
    with session_scope(seeded.engine) as session, pytest.raises(DomainError, match="at least one owner"):
        members.change_role(session, actor=seeded.actor, user_id=seeded.actor.user_id, role="viewer", now=NOW)
    with session_scope(seeded.engine) as session, pytest.raises(DomainError, match="last owner"):
        members.remove_member(session, actor=seeded.actor, user_id=seeded.actor.user_id, now=NOW)
    # With a second owner, either may step down, but not both.
    billing = member_actor(seeded, "billing@acme-security.example")
    with session_scope(seeded.engine) as session:
        members.change_role(session, actor=seeded.actor, user_id=billing.user_id, role="owner", now=NOW)
    with session_scope(seeded.engine) as session:
        members.change_role(session, actor=seeded.actor, user_id=seeded.actor.user_id, role="viewer", now=NOW)
    new_owner = member_actor(seeded, "billing@acme-security.example")
    with session_scope(seeded.engine) as session, pytest.raises(DomainError, match="at least one owner"):
        members.change_role(session, actor=new_owner, user_id=new_owner.user_id, role="viewer", now=NOW)


def test_two_owners_demoting_each_other_at_once_leave_one_owner(seeded: Seeded,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Each change pauses after counting the owners until the other has counted too: without the account lock
    # both would count two owners and both demotions would pass.
    monkeypatch.setattr(members, "_owners", pausing_for_each_other(members._owners))
    owners, outcomes = two_owners(seeded), []

    def demote_the_other(i: int) -> None:
        try:
            with session_scope(seeded.engine) as session:
                members.change_role(session, actor=owners[i], user_id=owners[1 - i].user_id, role="viewer", now=NOW)
            outcomes.append("demoted")
        except DomainError:
            outcomes.append("refused")

    run_at_once(2, demote_the_other)
    with session_scope(seeded.engine, write=False) as session:
        remaining = session.exec(select(User).where(User.account_id == seeded.actor.account_id,
                                                    User.role == Role.OWNER.value)).all()
    assert len(remaining) == 1, outcomes
    assert sorted(outcomes) == ["demoted", "refused"]


def test_a_removed_member_is_signed_out_and_cannot_sign_in(seeded: Seeded) -> None:
    signed_in = accept(seeded, token_of(invite(seeded)))
    member = member_actor(seeded, "new.hire@acme-security.example")
    with session_scope(seeded.engine) as session:
        assert members.remove_member(session, actor=seeded.actor, user_id=member.user_id, now=NOW) == "New Hire"
    with session_scope(seeded.engine, write=False) as session, pytest.raises(SignInRequired):
        auth.actor_for_token(session, signed_in.token, now=NOW)
    with pytest.raises(DomainError, match="not right"):
        auth.sign_in(seeded.engine, email="new.hire@acme-security.example", password=PASSWORD, remember=False,
                     client="", now=NOW)
    with session_scope(seeded.engine, write=False) as session:
        listed = members.list_members(session, account_id=seeded.actor.account_id, you=seeded.actor.user_id)
    assert "new.hire@acme-security.example" not in {m.email for m in listed}
    # Invited back, the same person returns (their history keeps one identity).
    accept(seeded, token_of(invite(seeded, role="viewer")), name="New Hire")
    assert member_actor(seeded, "new.hire@acme-security.example").user_id == member.user_id


def test_another_accounts_members_and_invitations_are_not_found(seeded: Seeded) -> None:
    other = seeded.other_actor()
    created = invite(seeded, actor=other, email="someone@other.example", role="viewer")
    assert created.email == "someone@other.example"
    with session_scope(seeded.engine, write=False) as session:
        invitation_id = session.exec(select(Invitation.id).where(Invitation.account_id == other.account_id)).one()
    for work in (
        lambda s: members.change_role(s, actor=seeded.actor, user_id=other.user_id, role="viewer", now=NOW),
        lambda s: members.remove_member(s, actor=seeded.actor, user_id=other.user_id, now=NOW),
        lambda s: members.revoke_invitation(s, actor=seeded.actor, invitation_id=invitation_id, now=NOW),
        lambda s: members.change_role(s, actor=seeded.actor, user_id=999_999, role="viewer", now=NOW),
    ):
        with session_scope(seeded.engine) as session, pytest.raises(NotFound):
            work(session)
    assert member_actor(seeded, other.email).role == "owner"
    with session_scope(seeded.engine, write=False) as session:
        assert [i.email for i in members.list_invitations(session, account_id=other.account_id, now=NOW)] == [
            "someone@other.example"]
        assert members.list_invitations(session, account_id=seeded.actor.account_id, now=NOW) == []
