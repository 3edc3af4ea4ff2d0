"""API keys: what a product presents to the HTTP API (`cf_portal/api.py`); owners make, list and revoke them.

- **A key** is `cfk_live_` (`cfk_demo_` in demo mode) and 43 characters of base64url: 256 random bits from
  `secrets`. It is shown once, when made (`NewApiKey.secret`). The `api_key` row keeps only its SHA-256 digest
  (unique index), so a copy of the database calls no API, and its first characters (`prefix`), so an owner can
  tell keys apart. 256 random bits need no slow hash: nobody finds a key from its digest.
- **Authenticating** a presented key looks its digest up and compares it in constant time; a revoked key, a key
  of an expired demo copy and a key without the scope asked for are refused. Nothing is cached: a revoked key
  is refused by every worker on its very next request.
- **Nothing secret is logged**: keys are named by id (and prefix) in logs and audit events; exceptions carry
  no key. `last_used_at` is written at most once an hour, so requests stay reads.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlmodel import Session, select

from cf_portal import clock
from cf_portal.models import Account, ApiKey, Role, User
from cf_portal.services import audit
from cf_portal.services.actors import Actor, actor_for_user
from cf_portal.services.errors import DomainError, NotAllowed, NotFound
from cf_portal.services.periods import day
from cf_portal.services.roles import Permission
from cf_portal.services.validation import check_name

ENTITLEMENTS_READ = "entitlements:read"
SCOPES = (ENTITLEMENTS_READ,)  # what a key may be allowed to do; every key gets all of them for now
LIVE_PREFIX = "cfk_live_"
DEMO_PREFIX = "cfk_demo_"
SECRET_BYTES = 32  # 256 bits
VISIBLE_CHARACTERS = 6  # of the random part, shown in lists after the mode prefix
MAX_PRESENTED_LENGTH = 100  # anything longer is no key of ours: refused before any look-up
MAX_NAME_LENGTH = 80
USE_RECORDED_EVERY = timedelta(hours=1)  # as a seat's; the Settings page shows the day


class ApiKeyView(BaseModel):
    """A key as the Settings page lists it: never its secret, nor its digest."""

    id: int
    name: str
    prefix: str  # "cfk_live_x7Qa9B": the list shows it followed by "…"
    scopes: list[str]
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyRow(BaseModel):
    """A key as the Settings → API keys page shows it: words, not timestamps."""

    id: int
    name: str
    prefix: str  # "cfk_live_x7Qa9B…"
    created: str  # "5 December 2026 by Ava Thompson"
    last_used: str  # "5 December 2026", or "Never"
    status: str  # "Active", or "Revoked on 5 December 2026"
    revoked: bool


class NewApiKey(BaseModel):
    key: ApiKeyView
    secret: str = Field(repr=False)  # the whole key: shown once, then only its digest exists


class ApiCaller(BaseModel):
    """Who is calling the API: a key of one account. Every query the API runs is scoped by `account_id`."""

    key_id: int
    account_id: int
    scopes: frozenset[str]
    last_used_at: datetime | None

    def use_to_record(self, now: datetime) -> bool:
        return self.last_used_at is None or self.last_used_at < now - USE_RECORDED_EVERY


class InvalidApiKey(DomainError):
    """No key, an unknown one, or a revoked one (the API answers 401)."""


class MissingScope(NotAllowed):
    """A valid key that may not do this (the API answers 403)."""


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_secret(*, demo_mode: bool) -> str:
    return (DEMO_PREFIX if demo_mode else LIVE_PREFIX) + secrets.token_urlsafe(SECRET_BYTES)


def visible_prefix(key: str) -> str:
    mode = DEMO_PREFIX if key.startswith(DEMO_PREFIX) else LIVE_PREFIX
    return key[:len(mode) + VISIBLE_CHARACTERS]


def check_key_name(text: str) -> str:
    return check_name(text, field="name", max_length=MAX_NAME_LENGTH, what="the key's name",
                      blank="Name the key after what will use it, like “Phishing Simulator”.")


def _views(session: Session, query: sa.Select) -> list[ApiKeyView]:
    rows = session.execute(query.add_columns(User.name).outerjoin(User, User.id == ApiKey.created_by_user_id)).all()
    return [ApiKeyView(id=key.id, name=key.name, prefix=key.prefix, scopes=key.scopes.split(),
                       created_at=key.created_at, created_by=creator or "", last_used_at=key.last_used_at,
                       revoked_at=key.revoked_at) for key, creator in rows]


def create(session: Session, *, actor: Actor, name: str, demo_mode: bool, now: datetime | None = None) -> NewApiKey:
    """A new key of the actor's account (owners only), with every scope of SCOPES. The secret is in the result
    only: show it once."""
    actor.require(Permission.MANAGE_API_KEYS)
    clean_name = check_key_name(name)
    secret = new_secret(demo_mode=demo_mode)
    row = ApiKey(account_id=actor.account_id, name=clean_name, prefix=visible_prefix(secret),
                 secret_hash=key_digest(secret), scopes=" ".join(SCOPES), created_by_user_id=actor.user_id,
                 created_at=now or clock.now())
    session.add(row)
    session.flush()
    audit.record(session, actor, "api_key.created", "api_key", row.id, f"{clean_name} ({row.prefix}…)",
                 at=row.created_at)
    (view,) = _views(session, select(ApiKey).where(ApiKey.id == row.id))
    return NewApiKey(key=view, secret=secret)


def list_keys(session: Session, *, actor: Actor) -> list[ApiKeyView]:
    """The account's keys, revoked ones too (marked), newest first."""
    actor.require(Permission.MANAGE_API_KEYS)
    return _views(session, select(ApiKey).where(ApiKey.account_id == actor.account_id)
                  .order_by(ApiKey.created_at.desc(), ApiKey.id.desc()))


def list_rows(session: Session, *, actor: Actor) -> list[ApiKeyRow]:
    """`list_keys` as the page shows it (dates in UTC, as every date of the portal)."""
    return [ApiKeyRow(id=key.id, name=key.name, prefix=f"{key.prefix}…",
                      created=f"{day(key.created_at)} by {key.created_by}" if key.created_by else day(key.created_at),
                      last_used=day(key.last_used_at) if key.last_used_at else "Never",
                      status=f"Revoked on {day(key.revoked_at)}" if key.revoked_at else "Active",
                      revoked=key.revoked_at is not None)
            for key in list_keys(session, actor=actor)]


def revoke(session: Session, *, actor: Actor, key_id: int, now: datetime | None = None) -> str:
    """Refuse the key from now on, everywhere. Revoking a revoked key changes nothing. Returns the key's name."""
    actor.require(Permission.MANAGE_API_KEYS)
    row = session.get(ApiKey, key_id)
    if row is None or row.account_id != actor.account_id:
        raise NotFound("That API key")
    now = now or clock.now()
    revoked = session.execute(sa.update(ApiKey).where(ApiKey.id == row.id, ApiKey.account_id == actor.account_id,
                                                      ApiKey.revoked_at.is_(None))
                              .values(revoked_at=now)).rowcount
    if revoked:
        audit.record(session, actor, "api_key.revoked", "api_key", row.id, f"{row.name} ({row.prefix}…)", at=now)
    return row.name


# Built once (every API request runs it): bound parameters, so SQLAlchemy's compiled cache is hit each time.
_BY_DIGEST = (sa.select(ApiKey.id, ApiKey.account_id, ApiKey.secret_hash, ApiKey.scopes, ApiKey.last_used_at,
                        ApiKey.revoked_at, Account.demo_expires_at)
              .join(Account, Account.id == ApiKey.account_id)
              .where(ApiKey.secret_hash == sa.bindparam("digest", type_=sa.String)))


def authenticate(session: Session, presented: str, *, scope: str, now: datetime) -> ApiCaller:
    """The caller a presented key stands for; InvalidApiKey for no key, an unknown, revoked or expired one,
    MissingScope for a key that may not do `scope`."""
    if not presented.startswith("cfk_") or len(presented) > MAX_PRESENTED_LENGTH:
        raise InvalidApiKey("Send an API key of this portal: Authorization: Bearer cfk_…")
    digest = key_digest(presented)
    row = session.connection().execute(_BY_DIGEST, {"digest": digest}).first()  # Core: no ORM result machinery
    # The look-up is by digest, so its timing tells nothing about the key; compare_digest keeps the final
    # comparison constant-time whatever the database's index did.
    if row is None or not hmac.compare_digest(row.secret_hash, digest):
        raise InvalidApiKey("This API key is not valid.")
    if row.revoked_at is not None:
        raise InvalidApiKey("This API key was revoked.")
    if row.demo_expires_at is not None and row.demo_expires_at <= now:
        raise InvalidApiKey("This API key's demo account has expired.")
    scopes = frozenset(row.scopes.split())
    if scope not in scopes:
        raise MissingScope(f"This API key may not do this (it needs the {scope} scope).")
    return ApiCaller(key_id=row.id, account_id=row.account_id, scopes=scopes, last_used_at=row.last_used_at)


def record_use(session: Session, *, caller: ApiCaller, now: datetime) -> bool:
    """Stamp the key's last use, at most once per USE_RECORDED_EVERY (conditional: of many requests at once,
    one writes). Returns whether it wrote."""
    return bool(session.execute(
        sa.update(ApiKey).where(ApiKey.id == caller.key_id, ApiKey.account_id == caller.account_id,
                                sa.or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - USE_RECORDED_EVERY))
        .values(last_used_at=now)
    ).rowcount)


def owner_by_email(session: Session, email: str) -> Actor:
    """The owner with this sign-in email (for `cli create-api-key`); DomainError for anyone else."""
    user = session.exec(select(User).where(User.email == email.strip().lower())).first()
    if user is None or user.removed_at is not None:
        raise NotFound("A member with this email")
    if user.role != Role.OWNER.value:
        raise NotAllowed("Only owners can manage API keys: this member is not an owner.")
    return actor_for_user(session, user.id)
