"""Accounts and sessions: sign up, sign in (throttled), the signed-in actor, sign out, change password.

A session is an opaque random token that only the browser's HttpOnly cookie holds; the `auth_session` table
keeps its SHA-256 digest and expiry. A sign-in made over the websocket hands the browser a one-time code
(`hand_off`), which the /auth/session route trades for the token (`redeem_handoff`). Every event handler looks the
session up again by the digest the websocket's handshake carries (`actor_for_digest`), so signing out, a
password change or a removed member takes effect on the very next click, in every tab and worker.

Passwords are hashed and checked outside any transaction (a hash takes about 0.1 s, and a write transaction
on SQLite holds the one write lock of the whole app), so these functions take the engine and keep their own
transactions short.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from cf_portal.db import session_scope
from cf_portal.models import Account, AuthSession, Role, Throttle, User
from cf_portal.services import demo, passwords, throttle
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError, NotFound, SignInRequired
from cf_portal.services.validation import check_name, check_person_name, normalise_email

log = logging.getLogger(__name__)

SESSION_HOURS = 12  # without "Remember me"
REMEMBER_DAYS = 30
HANDOFF_SECONDS = 60  # from a sign-in over the websocket to the browser's request for its cookie
MAX_COMPANY_LENGTH = 120
WRONG_CREDENTIALS = "The email or password is not right."


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class SignedIn:
    token: str  # for the browser only; never stored or logged
    user_id: int
    remember: bool


def start_session(session: Session, *, user_id: int, remember: bool, now: datetime) -> SignedIn:
    token = new_token()
    session.add(AuthSession(user_id=user_id, token_hash=token_digest(token), remember=remember, created_at=now,
                            expires_at=now + session_lifetime(remember)))
    session.flush()
    return SignedIn(token=token, user_id=user_id, remember=remember)


def hand_off(session: Session, signed_in: SignedIn, *, now: datetime) -> str:
    """A one-time code, valid for HANDOFF_SECONDS, that the browser trades at the /auth/session route for
    its session cookie (an HttpOnly cookie can only be set by an HTTP response, not over the websocket)."""
    code = new_token()
    handed = session.execute(
        sa.update(AuthSession)
        .where(AuthSession.token_hash == token_digest(signed_in.token), AuthSession.expires_at > now)
        .values(handoff_hash=token_digest(code), handoff_until=now + timedelta(seconds=HANDOFF_SECONDS))
    ).rowcount
    if not handed:
        raise SignInRequired("")
    return code


def redeem_handoff(session: Session, code: str, *, now: datetime) -> SignedIn | None:
    """Trade a hand-off code for the session's new token (the token the sign-in made is replaced, so only the
    cookie ever holds a working one). None when the code is unknown, used or expired: it works once."""
    if not code:
        return None
    row = session.exec(select(AuthSession).where(AuthSession.handoff_hash == token_digest(code),
                                                 AuthSession.handoff_until > now,
                                                 AuthSession.expires_at > now)).first()
    if row is None:
        return None
    token = new_token()
    redeemed = session.execute(  # conditional: of two redemptions at once, one wins
        sa.update(AuthSession)
        .where(AuthSession.id == row.id, AuthSession.handoff_hash == token_digest(code))
        .values(token_hash=token_digest(token), handoff_hash=None, handoff_until=None)
    ).rowcount
    return SignedIn(token=token, user_id=row.user_id, remember=row.remember) if redeemed else None


def actor_for_token(session: Session, token: str, *, now: datetime, next_path: str = "") -> Actor:
    """The member signed in with `token`; SignInRequired when there is none (any more)."""
    return actor_for_digest(session, token_digest(token) if token else "", now=now, next_path=next_path)


# The member check runs for every event of every tab (cf_portal/state/portal.py), so it is one statement built
# once, its values bound at each call, reading six columns: building the query and loading `User` and `Account`
# as ORM objects took five times as long (0.87 against 0.16 ms, on SQLite; bench/ws_load.py, docs/benchmarks.md).
_ACTOR_BY_DIGEST = (
    sa.select(User.id, User.name, User.email, User.role, Account.id, Account.name)
    .join(AuthSession, AuthSession.user_id == User.id)
    .join(Account, Account.id == User.account_id)
    .where(AuthSession.token_hash == sa.bindparam("digest"), AuthSession.expires_at > sa.bindparam("now"),
           User.removed_at.is_(None),
           sa.or_(Account.demo_expires_at.is_(None), Account.demo_expires_at > sa.bindparam("now")))  # a demo copy ends
)


def actor_for_digest(session: Session, digest: str, *, now: datetime, next_path: str = "") -> Actor:
    """The member whose session token has this SHA-256 `digest` (what the websocket is told; see
    cf_portal/middleware.py); SignInRequired when there is none (any more)."""
    if not digest:
        raise SignInRequired(next_path)
    row = session.execute(_ACTOR_BY_DIGEST, {"digest": digest, "now": now}).first()
    if row is None:
        raise SignInRequired(next_path)
    user_id, user_name, email, role, account_id, account_name = row
    return Actor(user_id=user_id, user_name=user_name, email=email, role=role, account_id=account_id,
                 account_name=account_name)


def end_session(session: Session, token: str) -> None:
    if token:
        session.execute(sa.delete(AuthSession).where(AuthSession.token_hash == token_digest(token)))


def has_password(session: Session, *, user_id: int) -> bool:
    """Whether the member signs in with a password (the demo owner has none)."""
    user = session.get(User, user_id)
    return user is not None and user.password_hash is not None


def session_lifetime(remember: bool) -> timedelta:
    return timedelta(days=REMEMBER_DAYS) if remember else timedelta(hours=SESSION_HOURS)


def end_all_sessions(session: Session, *, user_id: int) -> None:
    session.execute(sa.delete(AuthSession).where(AuthSession.user_id == user_id))


def check_company_name(text: str) -> str:
    return check_name(text, field="company", max_length=MAX_COMPANY_LENGTH, blank="Enter your company's name.",
                      what="the company name")


def email_taken(session: Session, email: str) -> bool:
    return session.exec(select(User.id).where(User.email == email)).first() is not None


# Refusing a sign-up necessarily tells that the email is in use (there is no mail server to answer "check your
# inbox" either way), so sign-ups are throttled per client; the words help the person it most likely is.
EMAIL_IN_USE = ("This email can't be used for a new account. If you already have a ChatFortress account, sign in "
                "instead; if your company has one, ask its owner to invite you.")


def _email_in_use() -> FormErrors:
    return FormErrors([DomainError(EMAIL_IN_USE, field="email")])


def _refuse_if_waiting(wait: throttle.Wait, *, too_many: str, action: str) -> None:
    if wait.locked:
        raise DomainError(f"{too_many} {action} is locked for {wait.in_words()}; try again then.", field="form")
    if wait:
        raise DomainError(f"{too_many} Wait {wait.in_words()} and try again.", field="form")


def _refuse_sign_in(wait: throttle.Wait) -> None:
    _refuse_if_waiting(wait, too_many="Too many failed sign-ins.", action="Signing in")


def count_sign_up(engine: sa.Engine, *, client: str, now: datetime) -> None:
    """Count a sign-up (or an invitation accepted) from `client`, or refuse it when the client has made too many:
    each one hashes a password and tells whether an email is in use."""
    if not client:
        return
    checks = [(f"signup-client:{client}", throttle.SIGN_UP_CLIENT)]
    with session_scope(engine) as session:
        wait = throttle.locked_wait(session, checks, now=now)
        if not wait:
            throttle.record_failure(session, *checks[0], now=now)
    _refuse_if_waiting(wait, too_many="Too many sign-ups from your network.", action="Signing up")


def sign_up(engine: sa.Engine, *, company: str, name: str, email: str, password: str, client: str, now: datetime
            ) -> SignedIn:
    """A new customer account with its first member as Owner, signed in (not remembered).

    Each sign-up that passes the form's checks counts against the client (it costs a password hash and tells
    whether an email is taken), and the password is hashed outside any transaction."""
    errors: list[DomainError] = []
    values = {}
    for field, check in (("company", lambda: check_company_name(company)),
                         ("name", lambda: check_person_name(name)),
                         ("email", lambda: normalise_email(email))):
        try:
            values[field] = check()
        except DomainError as exc:
            errors.append(exc)
    try:
        passwords.check_new_password(password, email=values.get("email", ""))
    except DomainError as exc:
        errors.append(exc)
    if errors:
        raise FormErrors(errors)
    count_sign_up(engine, client=client, now=now)
    password_hash = passwords.hash_password(password)
    try:
        with session_scope(engine) as session:
            if email_taken(session, values["email"]):
                raise _email_in_use()
            account = Account(name=values["company"], created_at=now)
            session.add(account)
            session.flush()
            user = User(account_id=account.id, name=values["name"], email=values["email"], role=Role.OWNER.value,
                        password_hash=password_hash, created_at=now)
            session.add(user)
            session.flush()
            return start_session(session, user_id=user.id, remember=False, now=now)
    except sa.exc.IntegrityError:
        with session_scope(engine, write=False) as session:
            if not email_taken(session, values["email"]):
                raise
        raise _email_in_use() from None  # the same email signed up a moment ago, in another worker


class FormErrors(DomainError):
    """Several fields are wrong at once; `errors` has one DomainError per field."""

    def __init__(self, errors: list[DomainError]) -> None:
        super().__init__(errors[0].message, field=errors[0].field)
        self.errors = errors

    def by_field(self) -> dict[str, str]:
        return {error.field or "form": error.message for error in self.errors}


def _throttle_checks(email: str, client: str) -> list[tuple[str, throttle.Policy]]:
    """The email's count (delays only) and the (email, client) pair's (delays, then a lock) come first: a success
    clears them. The client's count, across every email it tries, stays."""
    pair = hashlib.sha256(f"{email}\n{client}".encode()).hexdigest()  # a key of bounded length
    checks = [(f"signin-email:{email}", throttle.SIGN_IN_EMAIL), (f"signin-pair:{pair}", throttle.SIGN_IN_PAIR)]
    if client:
        checks.append((f"signin-client:{client}", throttle.SIGN_IN_CLIENT))
    return checks


def sign_in(engine: sa.Engine, *, email: str, password: str, remember: bool, client: str, now: datetime
            ) -> SignedIn:
    """Check the password, unless this email must wait, or this email from this client or this client has failed
    too often (see `_throttle_checks`); failures are counted (committed before the refusal is raised).

    The password is checked outside any transaction. Then one short transaction holds the throttle rows (email,
    pair, client), checks the wait again and counts the outcome, so of parallel attempts only as many are judged
    as the throttle allows; the others are refused whatever their password."""
    try:
        address = normalise_email(email)
    except DomainError:
        address = (email or "").strip().lower()[:254]
    checks = _throttle_checks(address, client)
    with session_scope(engine, write=False) as session:
        _refuse_sign_in(throttle.longest_wait(session, checks, now=now))  # a waiting key costs no hashing
        user = session.exec(select(User).where(User.email == address, User.removed_at.is_(None))).first()
    checked_hash = user.password_hash if user else None
    verified = passwords.verify_password(checked_hash, password)
    rehashed = passwords.hash_password(password) if verified and passwords.needs_rehash(checked_hash) else None
    with session_scope(engine) as session:
        wait = throttle.locked_wait(session, checks, now=now)
        if not wait and verified:
            member = session.get(User, user.id)
            # Removed, or the password changed, while it was checked: it no longer opens the door.
            if member is not None and member.removed_at is None and member.password_hash == checked_hash:
                for key, _ in checks[:2]:  # the client's count stays: it spans many emails
                    throttle.clear(session, key)
                if rehashed:
                    member.password_hash = rehashed
                return start_session(session, user_id=member.id, remember=remember, now=now)
        if not wait:
            for key, policy in checks:
                throttle.record_failure(session, key, policy, now=now)
    _refuse_sign_in(wait)
    log.info("failed sign-in for an email%s", "" if user else " that has no account")
    raise DomainError(WRONG_CREDENTIALS, field="form")


def change_password(engine: sa.Engine, *, actor: Actor, session_digest: str, current: str, new: str, confirm: str,
                    now: datetime) -> SignedIn:
    """Set a new password, end every session of this member (all browsers), and sign this one (the session
    whose token has `session_digest`) in again, remembered if it was. Both passwords are hashed outside any
    transaction."""
    with session_scope(engine, write=False) as session:
        user = session.get(User, actor.user_id)
        remember = bool(session.exec(select(AuthSession.remember).where(
            AuthSession.token_hash == session_digest, AuthSession.user_id == actor.user_id)).first())
    if user is None or user.account_id != actor.account_id or user.removed_at is not None:
        raise NotFound("Your user")
    errors: list[DomainError] = []
    if user.password_hash is not None and not passwords.verify_password(user.password_hash, current):
        errors.append(DomainError("This is not your current password.", field="current_password"))
    try:
        passwords.check_new_password(new, email=user.email, field="new_password")
    except DomainError as exc:
        errors.append(exc)
    if new != confirm:
        errors.append(DomainError("The two new passwords are not the same.", field="confirm_password"))
    if errors:
        raise FormErrors(errors)
    new_hash = passwords.hash_password(new)
    with session_scope(engine) as session:
        unchanged = (User.password_hash.is_(None) if user.password_hash is None
                     else User.password_hash == user.password_hash)
        if not session.execute(sa.update(User).where(User.id == user.id, User.removed_at.is_(None), unchanged)
                               .values(password_hash=new_hash)).rowcount:
            raise DomainError("Your password was changed meanwhile. Enter the current one.", field="current_password")
        end_all_sessions(session, user_id=user.id)
        return start_session(session, user_id=user.id, remember=remember, now=now)


def demo_owner_session(session: Session, *, now: datetime, max_copies: int) -> SignedIn:
    """"Try the demo": a fresh copy of the demo account for this visitor alone, signed in as its owner (demo
    mode only; the caller checks). DomainError when `max_copies` copies are live already."""
    owner_id = demo.copy_demo_account(session, now=now, max_copies=max_copies)
    return start_session(session, user_id=owner_id, remember=False, now=now)


def purge_expired(session: Session, *, now: datetime) -> tuple[int, int]:
    """Delete ended sessions (and those whose hand-off code was never traded) and throttle counts that no window or lock needs any more (a day old)."""
    sessions = session.execute(sa.delete(AuthSession).where(
        sa.or_(AuthSession.expires_at <= now, AuthSession.handoff_until <= now))  # a code never traded: unusable
    ).rowcount or 0
    stale = now - timedelta(days=1)
    counts = session.execute(sa.delete(Throttle).where(
        Throttle.last_failure_at < stale, sa.or_(Throttle.locked_until.is_(None), Throttle.locked_until < stale))
    ).rowcount or 0
    return sessions, counts
