"""Members of an account: invitations (a link the owner copies; there is no mail server), roles, removal.

The last owner stays: every change that could leave an account without an owner first locks the account
row (`SELECT … FOR UPDATE`; SQLite's write transactions are serial anyway), so two owners demoting each
other at the same moment cannot both succeed. Invitations take the same lock, so two of one email at once
end with one open link.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, select

from cf_portal.db import session_scope
from cf_portal.models import Account, Invitation, Role, User
from cf_portal.services import audit, auth, emails, passwords, roles
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError, NotFound
from cf_portal.services.roles import Permission
from cf_portal.services.validation import check_person_name, normalise_email

log = logging.getLogger(__name__)

INVITATION_DAYS = 7
INVITATION_PATH = "/invitation"


class MemberRow(BaseModel):
    id: int
    name: str
    email: str
    role: str
    role_label: str
    is_you: bool
    can_sign_in: bool


class InvitationRow(BaseModel):
    id: int
    email: str
    role_label: str
    expires: str  # "Dec 6, 2026"
    expired: bool


class InvitationCreated(BaseModel):
    email: str
    role_label: str
    link: str  # shown once, to the owner who made it


class InvitationPreview(BaseModel):
    account_name: str
    email: str
    role_label: str


def _check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise DomainError("Choose a role.", field="role") from None


def _lock_account(session: Session, account_id: int) -> None:
    session.exec(select(Account.id).where(Account.id == account_id).with_for_update()).first()


def _owners(session: Session, account_id: int) -> int:
    return session.execute(
        sa.select(sa.func.count()).select_from(User)
        .where(User.account_id == account_id, User.role == Role.OWNER.value, User.removed_at.is_(None))
    ).scalar_one()


def _member(session: Session, actor: Actor, user_id: int) -> User:
    user = session.exec(select(User).where(User.id == user_id, User.account_id == actor.account_id,
                                           User.removed_at.is_(None))).first()
    if user is None:
        raise NotFound("That member")
    return user


def list_members(session: Session, *, account_id: int, you: int) -> list[MemberRow]:
    users = session.exec(select(User).where(User.account_id == account_id, User.removed_at.is_(None))
                         .order_by(sa.func.lower(User.name), User.id)).all()
    return [MemberRow(id=u.id, name=u.name, email=u.email, role=u.role, role_label=roles.label(u.role),
                      is_you=u.id == you, can_sign_in=u.password_hash is not None) for u in users]


def list_invitations(session: Session, *, account_id: int, now: datetime) -> list[InvitationRow]:
    rows = session.exec(select(Invitation).where(Invitation.account_id == account_id,
                                                 Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
                        .order_by(Invitation.created_at.desc())).all()
    return [InvitationRow(id=i.id, email=i.email, role_label=roles.label(i.role),
                          expires=f"{i.expires_at:%b} {i.expires_at.day}, {i.expires_at.year}",
                          expired=i.expires_at <= now) for i in rows]


def invite(session: Session, *, actor: Actor, email: str, role: str, base_url: str, now: datetime
           ) -> InvitationCreated:
    """A new invitation link for `email` (any earlier open one for it is revoked), emailed to it (queued in this
    transaction) and returned once, as a fallback to copy. The invitation keeps its token's digest only."""
    actor.require(Permission.MANAGE_MEMBERS)
    errors = []
    try:
        address = normalise_email(email)
    except DomainError as exc:
        errors.append(exc)
        address = ""
    try:
        chosen = _check_role(role)
    except DomainError as exc:
        errors.append(exc)
    if errors:
        raise auth.FormErrors(errors)
    # Two owners inviting one email at once: the second waits, then replaces the first's link (rather than
    # running into the one-open-invitation-per-email index).
    _lock_account(session, actor.account_id)
    # An address with an account elsewhere is invited like any other (the answer says nothing about other
    # accounts); its acceptance is refused.
    existing = session.exec(select(User).where(User.email == address, User.account_id == actor.account_id,
                                               User.removed_at.is_(None))).first()
    if existing is not None:
        raise DomainError(f"{address} is already a member.", field="email")
    session.execute(sa.update(Invitation).where(
        Invitation.account_id == actor.account_id, Invitation.email == address, Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None)).values(revoked_at=now))
    token = auth.new_token()
    invitation = Invitation(account_id=actor.account_id, email=address, role=chosen.value,
                            token_hash=auth.token_digest(token), invited_by_user_id=actor.user_id, created_at=now,
                            expires_at=now + timedelta(days=INVITATION_DAYS))
    session.add(invitation)
    session.flush()
    audit.record(session, actor, "member.invited", "invitation", invitation.id, f"{address} as {roles.label(chosen)}",
                 at=now)
    link = f"{base_url.rstrip('/')}{INVITATION_PATH}?token={token}"
    # Emailed (the outbox keeps the token only until the message is sent) and shown once, to the owner who made
    # it, as a fallback. Never log it: whoever reads the log could take the account.
    emails.queue_invitation(session, account_id=actor.account_id, to=address, role_label=roles.label(chosen),
                            inviter=actor.user_name, token=token, expires_at=invitation.expires_at, now=now)
    log.info("invitation %s made in account %s (as %s)", invitation.id, actor.account_id, chosen.value)
    return InvitationCreated(email=address, role_label=roles.label(chosen), link=link)


def revoke_invitation(session: Session, *, actor: Actor, invitation_id: int, now: datetime) -> str:
    actor.require(Permission.MANAGE_MEMBERS)
    invitation = session.exec(select(Invitation).where(
        Invitation.id == invitation_id, Invitation.account_id == actor.account_id,
        Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None)).with_for_update()).first()
    if invitation is None:  # (an acceptance holding the row finishes first; then it is no longer open)
        raise NotFound("That invitation")
    invitation.revoked_at = now
    audit.record(session, actor, "member.invitation_revoked", "invitation", invitation.id, invitation.email, at=now)
    return invitation.email


def _open_invitation(session: Session, token: str, now: datetime, *, lock: bool = False
                     ) -> tuple[Invitation, Account]:
    query = (select(Invitation, Account).join(Account, Account.id == Invitation.account_id)
             .where(Invitation.token_hash == auth.token_digest(token or "")))
    row = session.exec(query.with_for_update(of=Invitation) if lock else query).first()
    if row is None:
        raise DomainError("This invitation link is not valid. Ask the owner who invited you for a new one.")
    invitation, account = row
    if invitation.accepted_at is not None:
        raise DomainError("This invitation has already been used. Sign in instead.")
    if invitation.revoked_at is not None:
        raise DomainError("This invitation was withdrawn. Ask the owner who invited you for a new one.")
    if invitation.expires_at <= now:
        raise DomainError("This invitation has expired (links work for 7 days). Ask the owner who invited you "
                          "for a new one.")
    return invitation, account


def _returning_member(session: Session, invitation: Invitation) -> User | None:
    """A removed member of this account who is invited back (the same person, with their history); refuses an
    email that has an account already (an address belongs to one account)."""
    existing = session.exec(select(User).where(User.email == invitation.email)).first()
    if existing is not None and (existing.account_id != invitation.account_id or existing.removed_at is None):
        raise DomainError("This email already belongs to a ChatFortress account, and an address can be in one "
                          "account only. Sign in with it instead, or ask the owner who invited you to invite "
                          "another address of yours.")
    return existing


def preview_invitation(session: Session, *, token: str, now: datetime) -> InvitationPreview:
    invitation, account = _open_invitation(session, token, now)
    return InvitationPreview(account_name=account.name, email=invitation.email, role_label=roles.label(invitation.role))


def accept_invitation(engine: sa.Engine, *, token: str, name: str, password: str, confirm: str, client: str,
                      now: datetime) -> auth.SignedIn:
    """Join the account: the invitee chooses a name and password and is signed in. Works once.

    Counted per client like a sign-up: whether it succeeds tells whether the email has an account elsewhere,
    and the owner holds the link too. The password is hashed outside any transaction; then the invitation is
    locked and checked again before the member is written, so a link used in another tab or withdrawn meanwhile
    is refused and leaves nothing."""
    with session_scope(engine, write=False) as session:
        invitation, _ = _open_invitation(session, token, now)
    errors = []
    try:
        clean_name = check_person_name(name)
    except DomainError as exc:
        errors.append(exc)
    try:
        passwords.check_new_password(password, email=invitation.email)
    except DomainError as exc:
        errors.append(exc)
    if password != confirm:
        errors.append(DomainError("The two passwords are not the same.", field="confirm_password"))
    if errors:
        raise auth.FormErrors(errors)
    auth.count_sign_up(engine, client=client, now=now)
    password_hash = passwords.hash_password(password)
    with session_scope(engine) as session:
        invitation, _ = _open_invitation(session, token, now, lock=True)
        user = _returning_member(session, invitation)
        if user is not None:
            user.name, user.role, user.removed_at = clean_name, invitation.role, None
            user.password_hash = password_hash
        else:
            user = User(account_id=invitation.account_id, name=clean_name, email=invitation.email,
                        role=invitation.role, password_hash=password_hash, created_at=now)
            session.add(user)
        session.flush()
        invitation.accepted_at, invitation.accepted_user_id = now, user.id
        session.add(audit.event(account_id=invitation.account_id, user_id=user.id, action="member.joined",
                                object_type="user", object_id=user.id, detail=f"{user.email} as "
                                f"{roles.label(invitation.role)}", at=now))
        return auth.start_session(session, user_id=user.id, remember=False, now=now)


def change_role(session: Session, *, actor: Actor, user_id: int, role: str, now: datetime) -> MemberRow:
    actor.require(Permission.MANAGE_MEMBERS)
    chosen = _check_role(role)
    _lock_account(session, actor.account_id)
    user = _member(session, actor, user_id)
    if user.role == chosen.value:
        return _row(user, actor)
    if user.role == Role.OWNER.value and _owners(session, actor.account_id) <= 1:
        raise DomainError("An account needs at least one owner. Make someone else an owner first.")
    before = user.role
    user.role = chosen.value
    session.flush()
    audit.record(session, actor, "member.role_changed", "user", user.id,
                 f"{user.email}: {roles.label(before)} → {roles.label(chosen)}", at=now)
    return _row(user, actor)


def remove_member(session: Session, *, actor: Actor, user_id: int, now: datetime) -> str:
    """Remove a member: they are signed out everywhere and cannot sign in; their history keeps their name."""
    actor.require(Permission.MANAGE_MEMBERS)
    _lock_account(session, actor.account_id)
    user = _member(session, actor, user_id)
    if user.role == Role.OWNER.value and _owners(session, actor.account_id) <= 1:
        raise DomainError("The last owner cannot be removed. Make someone else an owner first.")
    user.removed_at = now
    user.password_hash = None
    auth.end_all_sessions(session, user_id=user.id)
    session.flush()
    audit.record(session, actor, "member.removed", "user", user.id, user.email, at=now)
    return user.name


def _row(user: User, actor: Actor) -> MemberRow:
    return MemberRow(id=user.id, name=user.name, email=user.email, role=user.role, role_label=roles.label(user.role),
                     is_you=user.id == actor.user_id, can_sign_in=user.password_hash is not None)
