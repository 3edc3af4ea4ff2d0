"""Entitlements: may this person use this product? What the ChatFortress products ask through the API.

**Entitled** means: an open seat (`unassigned_at IS NULL`) of a license of the product, whose status is `active`
or `past_due` (a renewal is being retried: seats still work), held by an active employee with that email or by a
child account whose contact email it is. A suspended or canceled license answers `entitled: false` (with the
license, so the product can say why); a pending one is never mentioned; a deactivated employee, an unknown or
malformed email answer `entitled: false` with no holder, never an error. An unknown product code is `UnknownProduct`.
When one email holds several seats of the product the answer names one: an entitling license first (active before
past due), an employee before a child account, then the seat given first.

**Scoped by account**: every query is bound to the caller's account: the holder (employee or child account) and
the license are matched to it, and so are the seats when holders are paged. No key learns anything of another
account, whatever it sends: another account's emails are unknown emails here, its product codes the same catalog.

**Few queries**: a check of 1 or 1,000 emails is one statement: employees' and child accounts' seats in a UNION,
with the product's own row (so only an unknown product code costs a second query, to list the codes). The
holder is found by its (account, email) index, then its seats by the seat table's indexes (`_seats_of` says why
the seat's own account is not in its WHERE clause). Holders are paged by keyset on the seat's id
(`ix_seat_assignment_open_by_account`).

**Last use**: `record_use` stamps `seat_assignment.last_used_at` for the seats a check answered with, at most once
an hour per seat, by a conditional UPDATE (`WHERE last_used_at IS NULL OR last_used_at < now - 1 hour`), and only
for seats whose stamp the check saw as stale: steady traffic writes nothing. The API runs it in a transaction of
its own after the read (on SQLite a read that turns into a write can fail at once if someone else wrote).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, PrivateAttr
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, select

from cf_portal.models import (
    ChildAccount,
    Employee,
    License,
    LicenseStatus,
    Plan,
    Product,
    SeatAssignment,
    UTCDateTime,
)
from cf_portal.services.errors import DomainError, NotFound
from cf_portal.services.validation import MAX_EMAIL_LENGTH, normalise_email, printable

ENTITLING = (LicenseStatus.ACTIVE.value, LicenseStatus.PAST_DUE.value)
_STATUS_RANK = {LicenseStatus.ACTIVE.value: 0, LicenseStatus.PAST_DUE.value: 1, LicenseStatus.SUSPENDED.value: 2,
                LicenseStatus.CANCELED.value: 3}
MAX_BATCH = 1000
MAX_PAGE = 1000
DEFAULT_PAGE = 100
USE_RECORDED_EVERY = timedelta(hours=1)

HolderKind = Literal["employee", "child_account"]


class HolderRef(BaseModel):
    kind: HolderKind
    name: str


class LicenseRef(BaseModel):
    reference: str  # the license's reference name ("Sales team")
    plan: str
    status: str  # active, past_due, suspended or canceled


@dataclass(frozen=True)
class SeatUse:
    seat_id: int
    last_used_at: datetime | None


class Entitlement(BaseModel):
    """The answer for one email: the API's JSON as is."""

    entitled: bool
    product: str
    holder: HolderRef | None = None
    license: LicenseRef | None = None
    since: datetime | None = None  # when the holder got the seat, if entitled
    _seat: SeatUse | None = PrivateAttr(default=None)  # for `record_use`; never in the JSON


class EmailEntitlement(Entitlement):
    email: str  # as the caller sent it


class BatchAnswer(BaseModel):
    product: str
    results: list[EmailEntitlement]


class HolderEntry(BaseModel):
    email: str  # the employee's email, or the child account's contact email
    holder: HolderRef
    license: LicenseRef
    since: datetime


class HoldersPage(BaseModel):
    product: str
    holders: list[HolderEntry]
    next_cursor: str | None  # pass it back as `cursor` for the next page; null on the last page


class UnknownProduct(NotFound):
    def __init__(self, code: str, known: list[str]) -> None:
        DomainError.__init__(self, f"There is no product with the code {printable(code, limit=40)}. "
                                   f"The codes are: {', '.join(known)}.", field="product")


class InvalidCursor(DomainError):
    def __init__(self) -> None:
        super().__init__("The cursor is not one this API gave: pass next_cursor from the previous page as it is.",
                         field="cursor")


class ProductCode(BaseModel):
    code: str  # "phishing": what the API's `product` parameter takes
    name: str  # "Phishing Simulator"


def product_codes(session: Session) -> list[ProductCode]:
    """The catalog's products, in the catalog's order: the codes the API answers for."""
    return [ProductCode(code=code, name=name) for code, name in session.execute(
        sa.select(Product.code, Product.name).order_by(Product.sort_order, Product.code))]


def product_id(session: Session, code: str) -> int:
    found = session.execute(_PRODUCT_ID, {"code": code}).scalar()
    if found is None:
        raise UnknownProduct(code, list(session.exec(select(Product.code).order_by(Product.sort_order, Product.code))))
    return found


def lookup_email(text: str) -> str | None:
    """The email as the database keeps it (`validation.normalise_email`), or None when it can be no one's. Plain
    ASCII addresses, nearly all of them, take the fast path: trimmed and lower-cased is what normalising gives."""
    raw = text.strip() if isinstance(text, str) else ""
    if raw.isascii():
        return raw.lower() if 0 < len(raw) <= MAX_EMAIL_LENGTH and raw.count("@") >= 1 else None
    try:
        return normalise_email(raw)
    except DomainError:
        return None


def _seats_of(emails: Literal["one", "list", "array"]) -> sa.CompoundSelect:
    """Every open seat of the product held by one of the emails (pending licenses left out): one UNION of
    employees' and child accounts' seats, and one more row (kind `product`, its id as `seat_id`) when the product
    code is the catalog's, so one statement tells an unknown product from an email without seats. Built once,
    with bound parameters (`account_id`, `code`, and `email`, or `emails` for several):
    building it for each check cost more than running it. One email is compared with `=` (an expanding `IN`
    costs SQLAlchemy a rewrite of the SQL on every run). On PostgreSQL a long list of emails goes as one array
    (`= ANY(:emails)`): a thousand placeholders cost psycopg more to parse than the query takes to
    run. A short list does not (measured: a single check took 1.5 to 20 times as long that way, the generic plan
    of a prepared `ANY` being worse, badly so before the tables have statistics).

    The holder and the license are both matched to the account, so every row returned (the holder's name, the
    license, its plan) is the account's own. The seat's own `account_id` (always the same, `seats.assign` checks
    both) is left out of the WHERE clause on purpose: with it SQLite's planner may walk all the account's open
    seats instead of looking the holder up by email first."""
    account_id, code = sa.bindparam("account_id", type_=sa.Integer), sa.bindparam("code", type_=sa.String)

    def among(email: sa.ColumnElement) -> sa.ColumnElement[bool]:
        if emails == "one":
            return email == sa.bindparam("email", type_=sa.String)
        if emails == "array":
            return email == sa.any_(sa.bindparam("emails", type_=postgresql.ARRAY(sa.String)))
        return email.in_(sa.bindparam("emails", expanding=True, type_=sa.String))

    def part(kind: str, holder: type, email: sa.ColumnElement, name: sa.ColumnElement,
             holder_column: sa.ColumnElement, *conditions: sa.ColumnElement[bool]) -> sa.Select:
        return (
            sa.select(email.label("email"), sa.literal(kind).label("kind"), name.label("name"),
                      SeatAssignment.id.label("seat_id"), SeatAssignment.assigned_at, SeatAssignment.last_used_at,
                      License.reference_name, License.status, Plan.name.label("plan"))
            .select_from(holder)
            .join(SeatAssignment, sa.and_(holder_column == holder.id, SeatAssignment.unassigned_at.is_(None)))
            .join(License, License.id == SeatAssignment.license_id)
            .join(Plan, Plan.id == License.plan_id)
            .join(Product, Product.id == Plan.product_id)
            .where(holder.account_id == account_id, among(email), License.account_id == account_id,
                   License.status != LicenseStatus.PENDING.value, Product.code == code, *conditions)
        )

    def nothing(type_: sa.types.TypeEngine) -> sa.ColumnElement:
        return sa.cast(sa.null(), type_)

    product = sa.select(
        nothing(sa.String), sa.literal("product"), nothing(sa.String), Product.id, nothing(UTCDateTime),
        nothing(UTCDateTime), nothing(sa.String), nothing(sa.String), nothing(sa.String),
    ).where(Product.code == code)
    return sa.union_all(
        part("employee", Employee, Employee.email, Employee.name, SeatAssignment.employee_id,
             Employee.active.is_(True)),
        part("child_account", ChildAccount, ChildAccount.contact_email, ChildAccount.name,
             SeatAssignment.child_account_id),
        product,
    )


_SEATS_OF_ONE = _seats_of("one")
_SEATS_OF = _seats_of("list")
_SEATS_OF_ARRAY = _seats_of("array")
ARRAY_FROM = 50  # emails, on PostgreSQL
_PRODUCT_ID = sa.select(Product.id).where(Product.code == sa.bindparam("code", type_=sa.String))


def _rank(row: sa.Row) -> tuple:
    return (_STATUS_RANK.get(row.status, 9), row.kind != "employee", row.assigned_at, row.seat_id)


def _seats_by_email(session: Session, account_id: int, code: str, emails: set[str]) -> dict[str, sa.Row]:
    """The seat each looked-up email is answered with (`_rank`); emails that hold no seat are missing. Run on the
    session's connection: Core rows, without the ORM's result machinery (a third of a check's time)."""
    connection = session.connection()
    parameters: dict = {"account_id": account_id, "code": code}
    if len(emails) <= 1:
        statement, parameters["email"] = _SEATS_OF_ONE, next(iter(emails), "")  # "" is no one's email
    else:
        many = len(emails) >= ARRAY_FROM and connection.dialect.name == "postgresql"
        statement, parameters["emails"] = _SEATS_OF_ARRAY if many else _SEATS_OF, sorted(emails)
    best: dict[str, sa.Row] = {}
    known = False
    for row in connection.execute(statement, parameters).all():
        if row.kind == "product":
            known = True
        elif row.email not in best or _rank(row) < _rank(best[row.email]):
            best[row.email] = row
    if not known:
        product_id(session, code)  # raises UnknownProduct, with the codes there are
    return best


def _built(model: type[BaseModel], fields: dict, private: dict | None = None) -> BaseModel:
    """`model.model_construct(**fields)` for `fields` naming every field of `model`, without its per-call work
    (defaults looked up, private attributes' defaults deep-copied): half of a 1,000-email batch's time. Nothing
    to validate: the values are the database's typed columns. (What `model_construct` sets, pydantic 2.)"""
    built = model.__new__(model)
    object.__setattr__(built, "__dict__", fields)
    object.__setattr__(built, "__pydantic_fields_set__", set(fields))
    object.__setattr__(built, "__pydantic_extra__", None)
    object.__setattr__(built, "__pydantic_private__", private)
    return built


def _answer(model: type[Entitlement], code: str, row: sa.Row | None, **extra: str) -> Entitlement:
    """The answer a seat's row gives (None: not entitled, no holder)."""
    if row is None:
        return _built(model, {"entitled": False, "product": code, "holder": None, "license": None, "since": None,
                              **extra}, {"_seat": None})
    entitled = row.status in ENTITLING
    return _built(model, {
        "entitled": entitled, "product": code, "holder": _built(HolderRef, {"kind": row.kind, "name": row.name}),
        "license": _built(LicenseRef, {"reference": row.reference_name, "plan": row.plan, "status": row.status}),
        "since": row.assigned_at if entitled else None, **extra,
    }, {"_seat": SeatUse(row.seat_id, row.last_used_at) if entitled else None})


def check(session: Session, *, account_id: int, product_code: str, email: str) -> Entitlement:
    """May `email` use the product, within the account? See the module docstring for what counts."""
    looked_up = lookup_email(email)
    seats = _seats_by_email(session, account_id, product_code, {looked_up} if looked_up else set())
    return _answer(Entitlement, product_code, seats.get(looked_up))


def check_many(session: Session, *, account_id: int, product_code: str, emails: list[str]) -> BatchAnswer:
    """`check` for up to MAX_BATCH emails at once, in the order given (repeats answered again), in one query."""
    if len(emails) > MAX_BATCH:
        raise DomainError(f"Send at most {MAX_BATCH:,} emails at once (this has {len(emails):,}).", field="emails")
    looked_up = [lookup_email(email) for email in emails]
    seats = _seats_by_email(session, account_id, product_code, {email for email in looked_up if email})
    return BatchAnswer.model_construct(product=product_code, results=[
        _answer(EmailEntitlement, product_code, seats.get(email) if email else None, email=given)
        for given, email in zip(emails, looked_up, strict=True)])


def uses_to_record(answers: list[Entitlement], now: datetime) -> list[int]:
    """The seats among these answers whose last use is older than USE_RECORDED_EVERY (or never stamped)."""
    return sorted({a._seat.seat_id for a in answers if a._seat is not None
                   and (a._seat.last_used_at is None or a._seat.last_used_at < now - USE_RECORDED_EVERY)})


def record_use(session: Session, *, account_id: int, seat_ids: list[int], now: datetime) -> int:
    """Stamp these seats as used now, each at most once per USE_RECORDED_EVERY whoever else stamps it meanwhile
    (the condition is in the UPDATE). Returns how many were stamped."""
    if not seat_ids:
        return 0
    return session.execute(
        sa.update(SeatAssignment)
        .where(SeatAssignment.id.in_(seat_ids), SeatAssignment.account_id == account_id,
               sa.or_(SeatAssignment.last_used_at.is_(None),
                      SeatAssignment.last_used_at < now - USE_RECORDED_EVERY))
        .values(last_used_at=now)
    ).rowcount


def encode_cursor(seat_id: int) -> str:
    return base64.urlsafe_b64encode(f"s{seat_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The seat id after which the next page starts (0: the first page); InvalidCursor for anything else."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor() from None
    if not text.startswith("s") or not text[1:].isdigit() or len(text) > 20:
        raise InvalidCursor()
    return int(text[1:])


def holders(session: Session, *, account_id: int, product_code: str, cursor: str | None = None,
            limit: int = DEFAULT_PAGE) -> HoldersPage:
    """Everyone entitled to the product, one entry per entitling seat, in the order the seats were given (their
    ids): keyset paging, so a page never repeats nor skips an entry that stays entitled between pages."""
    if not 1 <= limit <= MAX_PAGE:
        raise DomainError(f"Ask for 1 to {MAX_PAGE:,} holders a page.", field="limit")
    after = decode_cursor(cursor)
    product = product_id(session, product_code)
    rows = session.execute(
        sa.select(SeatAssignment.id, SeatAssignment.assigned_at, Employee.email, Employee.name,
                  ChildAccount.contact_email, ChildAccount.name.label("child_name"), License.reference_name,
                  License.status, Plan.name.label("plan"))
        .select_from(SeatAssignment)
        .join(License, License.id == SeatAssignment.license_id)
        .join(Plan, Plan.id == License.plan_id)
        .outerjoin(Employee, sa.and_(Employee.id == SeatAssignment.employee_id, Employee.account_id == account_id))
        .outerjoin(ChildAccount, sa.and_(ChildAccount.id == SeatAssignment.child_account_id,
                                         ChildAccount.account_id == account_id))
        .where(SeatAssignment.account_id == account_id, SeatAssignment.unassigned_at.is_(None),
               SeatAssignment.id > after, License.account_id == account_id, License.status.in_(ENTITLING),
               Plan.product_id == product,
               sa.or_(Employee.active.is_(True), ChildAccount.id.is_not(None)))
        .order_by(SeatAssignment.id)
        .limit(limit + 1)
    ).all()
    page = rows[:limit]
    entries = [
        HolderEntry(email=row.email if row.email is not None else row.contact_email,
                    holder=HolderRef(kind="employee" if row.email is not None else "child_account",
                                     name=row.name if row.email is not None else row.child_name),
                    license=LicenseRef(reference=row.reference_name, plan=row.plan, status=row.status),
                    since=row.assigned_at)
        for row in page
    ]
    return HoldersPage(product=product_code, holders=entries,
                       next_cursor=encode_cursor(page[-1].id) if len(rows) > limit else None)
