"""Seats: who holds which license. Assign, move and free, for employees and child accounts.

The rules live in the database as well as here:
- `license.seats_assigned <= quantity` (CHECK) and every change of the count is a conditional UPDATE
  of the license row, which also locks it (PostgreSQL row lock; SQLite's write lock), so two admins
  or two workers can never hand out more seats than were bought;
- a partial unique index forbids two open seats of one license for one holder;
- rows are never deleted: freeing a seat sets `unassigned_at`, so the history stays;
- every assign, free and move writes its webhook events (`services.webhooks`) in its own transaction, so they
  exist exactly when the change does (freeing all seats of a holder goes through `unassign`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, select

from cf_portal import clock
from cf_portal.models import (
    ChildAccount,
    Employee,
    License,
    LicenseStatus,
    Plan,
    Product,
    SeatAssignment,
    User,
)
from cf_portal.services import audit, emails, webhooks
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError, NotFound
from cf_portal.services.ids import parse_id
from cf_portal.services.roles import Permission

HolderKind = Literal["employee", "child"]


class Holder(BaseModel):
    kind: HolderKind
    id: int

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"

    @property
    def seat_column(self) -> sa.ColumnElement:
        """The SeatAssignment column that names a holder of this kind."""
        return SeatAssignment.employee_id if self.kind == "employee" else SeatAssignment.child_account_id

    @classmethod
    def parse(cls, key: object) -> Holder:
        """A holder key from the browser ("employee:12"); NotFound for anything else (ids via `parse_id`)."""
        kind, _, raw = (key if isinstance(key, str) else "").partition(":")
        if kind not in ("employee", "child"):
            raise NotFound("That employee or child account")
        return cls(kind=kind, id=parse_id(raw, "That employee" if kind == "employee" else "That child account"))


def holder_key(employee_id: int | None, child_account_id: int | None) -> str:
    """The key ("employee:12" / "child:3") of a seat's holder."""
    return f"employee:{employee_id}" if employee_id is not None else f"child:{child_account_id}"


def seats_left(lic: License) -> int:
    """Seats that can still be assigned: a decrease scheduled for the renewal counts already."""
    return max((lic.next_quantity or lic.quantity) - lic.seats_assigned, 0)


class NotEnoughSeats(DomainError):
    def __init__(self, *, available: int, needed: int, license_id: int, plan_id: int) -> None:
        missing = needed - available
        if available == 0:
            text = "No seats are left on this license."
        else:
            text = f"Only {available} seat{'s' if available != 1 else ''} left on this license"
            text += f" for {needed} {'people' if needed != 1 else 'person'}."
        super().__init__(f"{text} {missing} more {'are' if missing != 1 else 'is'} needed: add licenses to "
                         f"assign everyone.", field="license")
        self.available, self.needed, self.missing = available, needed, missing
        self.license_id, self.plan_id = license_id, plan_id


class AssignableLicense(BaseModel):
    id: int
    label: str  # "Sales team · Phishing Simulator Standard · 3 available"
    product: str
    plan: str
    plan_id: int
    reference_name: str
    quantity: int
    available: int


class SeatEvent(BaseModel):
    """One line of a history: who held the seat, from when to when, and who did it."""

    assignment_id: int
    license_id: int
    license: str
    product: str
    holder: str
    holder_key: str
    assigned_at: datetime
    assigned_by: str
    unassigned_at: datetime | None
    unassigned_by: str
    moved_to: str  # who took the seat over, when it was moved
    is_open: bool


def _holder_columns(holder: Holder) -> dict[str, int | None]:
    return {"employee_id": holder.id if holder.kind == "employee" else None,
            "child_account_id": holder.id if holder.kind == "child" else None}


def _holder_name(session: Session, account_id: int, holder: Holder) -> str:
    """The holder's name if it belongs to the account (and, for an employee, is active)."""
    if holder.kind == "employee":
        row = session.get(Employee, holder.id)
        if row is None or row.account_id != account_id:
            raise NotFound("That employee")
        if not row.active:
            raise DomainError(f"{row.name} is deactivated; reactivate them first.", field="holder")
        return row.name
    row = session.get(ChildAccount, holder.id)
    if row is None or row.account_id != account_id:
        raise NotFound("That child account")
    return row.name


def _license(session: Session, account_id: int, license_id: int) -> License:
    lic = session.get(License, license_id)
    if lic is None or lic.account_id != account_id or lic.status == LicenseStatus.PENDING.value:
        raise NotFound("That license")
    return lic


def _open_seat_holders(session: Session, license_id: int, holders: list[Holder]) -> set[str]:
    rows = session.execute(
        select(SeatAssignment.employee_id, SeatAssignment.child_account_id).where(
            SeatAssignment.license_id == license_id, SeatAssignment.unassigned_at.is_(None),
            held_by_any([(h.kind, h.id) for h in holders]),
        )
    ).all()
    return {holder_key(e, c) for e, c in rows}


def held_by_any(refs: list[tuple[str, int]]) -> sa.ColumnElement[bool]:
    """Seats held by any of these (kind, id) holders; only the non-empty IN lists, so indexes are used."""
    employee_ids = [i for kind, i in refs if kind == "employee"]
    child_ids = [i for kind, i in refs if kind == "child"]
    conditions = []
    if employee_ids:
        conditions.append(SeatAssignment.employee_id.in_(employee_ids))
    if child_ids:
        conditions.append(SeatAssignment.child_account_id.in_(child_ids))
    return sa.or_(*conditions) if conditions else sa.false()


def assign(session: Session, *, actor: Actor, license_id: int, holders: list[Holder],
           now: datetime | None = None) -> list[int]:
    """Give one seat of the license to each holder, all or nothing. Returns the new assignment ids."""
    actor.require(Permission.MANAGE_SEATS)
    now = now or clock.now()
    unique = list({h.key: h for h in holders}.values())
    if not unique:
        raise DomainError("Choose at least one employee or child account.", field="holder")
    lic = _license(session, actor.account_id, license_id)
    if lic.status != LicenseStatus.ACTIVE.value:
        raise DomainError("Seats can only be assigned from an active license.", field="license")
    names = {h.key: _holder_name(session, actor.account_id, h) for h in unique}
    already = _open_seat_holders(session, lic.id, unique)
    if already:
        who = ", ".join(sorted(names[k] for k in already))
        raise DomainError(f"Already holds this license: {who}.", field="holder")
    # Take the seats: the WHERE clause and the CHECK constraint refuse to pass the quantity.
    taken = session.execute(
        sa.update(License)
        .where(License.id == lic.id, License.account_id == actor.account_id,
               License.status == LicenseStatus.ACTIVE.value,
               # A decrease scheduled for the renewal caps the seats now (the CHECK constraint holds it too).
               License.seats_assigned + len(unique) <= sa.func.coalesce(License.next_quantity, License.quantity))
        .values(seats_assigned=License.seats_assigned + len(unique))
    ).rowcount
    if taken != 1:
        session.refresh(lic)
        raise NotEnoughSeats(available=seats_left(lic), needed=len(unique), license_id=lic.id,
                             plan_id=lic.plan_id)
    rows = [SeatAssignment(account_id=actor.account_id, license_id=lic.id, assigned_at=now,
                           assigned_by_user_id=actor.user_id, **_holder_columns(h)) for h in unique]
    session.add_all(rows)
    try:
        session.flush()
    except sa.exc.IntegrityError as exc:
        # Someone gave one of them this license a moment ago (the partial unique index caught it).
        raise DomainError("One of them was given this license a moment ago. Refresh and try again.",
                          field="holder") from exc
    for row in rows:
        audit.record(session, actor, "seat.assigned", "seat_assignment", row.id,
                     f"{lic.reference_name}: {names[_key_of(row)]}")
    webhooks.seats_assigned(session, rows, now=now)
    emails.queue_seat_access(session, rows, now=now)
    return [row.id for row in rows]


def _key_of(row: SeatAssignment) -> str:
    return holder_key(row.employee_id, row.child_account_id)


def _open_assignment(session: Session, account_id: int, assignment_id: int) -> SeatAssignment:
    row = session.get(SeatAssignment, assignment_id)
    if row is None or row.account_id != account_id:
        raise NotFound("That seat")
    if row.unassigned_at is not None:
        raise DomainError("This seat was already freed.", field="seat")
    return row


def unassign(session: Session, *, actor: Actor, assignment_id: int, now: datetime | None = None) -> None:
    """Free a seat; it is available again at once."""
    actor.require(Permission.MANAGE_SEATS)
    now = now or clock.now()
    row = _open_assignment(session, actor.account_id, assignment_id)
    closed = session.execute(
        sa.update(SeatAssignment)
        .where(SeatAssignment.id == row.id, SeatAssignment.account_id == actor.account_id,
               SeatAssignment.unassigned_at.is_(None))
        .values(unassigned_at=now, unassigned_by_user_id=actor.user_id)
    ).rowcount
    if closed != 1:
        raise DomainError("This seat was already freed.", field="seat")
    session.execute(sa.update(License).where(License.id == row.license_id)
                    .values(seats_assigned=License.seats_assigned - 1))
    lic = session.get(License, row.license_id)
    audit.record(session, actor, "seat.unassigned", "seat_assignment", row.id,
                 f"{lic.reference_name}: {_holder_name_any(session, row)}")
    webhooks.seat_unassigned(session, row, now=now)


def move(session: Session, *, actor: Actor, assignment_id: int, to: Holder, now: datetime | None = None) -> int:
    """Give a held seat to someone else in one transaction: the count never changes, the history shows both."""
    actor.require(Permission.MANAGE_SEATS)
    now = now or clock.now()
    row = _open_assignment(session, actor.account_id, assignment_id)
    if _key_of(row) == to.key:
        raise DomainError("They already hold this seat. Choose someone else.", field="holder")
    new_name = _holder_name(session, actor.account_id, to)
    if _open_seat_holders(session, row.license_id, [to]):
        raise DomainError(f"{new_name} already holds this license.", field="holder")
    closed = session.execute(
        sa.update(SeatAssignment)
        .where(SeatAssignment.id == row.id, SeatAssignment.unassigned_at.is_(None))
        .values(unassigned_at=now, unassigned_by_user_id=actor.user_id)
    ).rowcount
    if closed != 1:
        raise DomainError("This seat was just freed or moved by someone else. Refresh and try again.",
                          field="seat")
    new = SeatAssignment(account_id=actor.account_id, license_id=row.license_id, assigned_at=now,
                         assigned_by_user_id=actor.user_id, **_holder_columns(to))
    session.add(new)
    try:
        session.flush()
    except sa.exc.IntegrityError as exc:
        raise DomainError(f"{new_name} was given this license a moment ago.", field="holder") from exc
    session.execute(sa.update(SeatAssignment).where(SeatAssignment.id == row.id).values(moved_to_id=new.id))
    lic = session.get(License, row.license_id)
    audit.record(session, actor, "seat.moved", "seat_assignment", new.id,
                 f"{lic.reference_name}: {_holder_name_any(session, row)} → {new_name}")
    webhooks.seat_moved(session, row, new, now=now)
    emails.queue_seat_access(session, [new], now=now)
    return new.id


def free_all_seats_of(session: Session, *, actor: Actor, holder: Holder, now: datetime | None = None) -> int:
    """Free every open seat of a holder (used when an employee is deactivated). Returns how many."""
    now = now or clock.now()
    open_rows = session.exec(select(SeatAssignment).where(
        SeatAssignment.account_id == actor.account_id, holder.seat_column == holder.id, SeatAssignment.unassigned_at.is_(None),
    )).all()
    for row in open_rows:
        unassign(session, actor=actor, assignment_id=row.id, now=now)
    return len(open_rows)


def _holder_name_any(session: Session, row: SeatAssignment) -> str:
    if row.employee_id is not None:
        return session.get(Employee, row.employee_id).name
    return session.get(ChildAccount, row.child_account_id).name


def assignable_licenses(session: Session, *, account_id: int) -> list[AssignableLicense]:
    rows = session.exec(
        select(License, Plan, Product).join(Plan, Plan.id == License.plan_id)
        .join(Product, Product.id == Plan.product_id)
        .where(License.account_id == account_id, License.status == LicenseStatus.ACTIVE.value)
        .order_by(Product.sort_order, License.reference_name, License.id)
    ).all()
    return [
        AssignableLicense(
            id=lic.id, product=product.name, plan=plan.name, plan_id=plan.id, reference_name=lic.reference_name,
            quantity=lic.quantity, available=seats_left(lic),
            label=f"{lic.reference_name} · {product.name} {plan.name} · {seats_left(lic)} available",
        )
        for lic, plan, product in rows
    ]


def seat_history(session: Session, *, account_id: int, license_id: int | None = None,
                 holder: Holder | None = None, limit: int = 200) -> list[SeatEvent]:
    """Every assignment of a license or of a holder, newest first, with who did it and when."""
    if license_id is not None:
        lic = session.get(License, license_id)
        if lic is None or lic.account_id != account_id:
            raise NotFound("That license")
    assigned_by = sa.orm.aliased(User)
    unassigned_by = sa.orm.aliased(User)
    successor = sa.orm.aliased(SeatAssignment)
    next_employee = sa.orm.aliased(Employee)
    next_child = sa.orm.aliased(ChildAccount)
    # Columns, not entities: loading seven ORM objects per row cost more than the query (opening someone's
    # details, bench/ws_load.py).
    query = (
        sa.select(SeatAssignment.id, SeatAssignment.employee_id, SeatAssignment.child_account_id,
                  SeatAssignment.assigned_at, SeatAssignment.unassigned_at, License.id, License.reference_name,
                  Product.name, Employee.name, ChildAccount.name, assigned_by.name, unassigned_by.name,
                  sa.func.coalesce(next_employee.name, next_child.name))
        .join(License, License.id == SeatAssignment.license_id)
        .join(Plan, Plan.id == License.plan_id)
        .join(Product, Product.id == Plan.product_id)
        .outerjoin(Employee, Employee.id == SeatAssignment.employee_id)
        .outerjoin(ChildAccount, ChildAccount.id == SeatAssignment.child_account_id)
        .outerjoin(assigned_by, assigned_by.id == SeatAssignment.assigned_by_user_id)
        .outerjoin(unassigned_by, unassigned_by.id == SeatAssignment.unassigned_by_user_id)
        .outerjoin(successor, successor.id == SeatAssignment.moved_to_id)
        .outerjoin(next_employee, next_employee.id == successor.employee_id)
        .outerjoin(next_child, next_child.id == successor.child_account_id)
        .where(SeatAssignment.account_id == account_id)
        .order_by(SeatAssignment.assigned_at.desc(), SeatAssignment.id.desc())
        .limit(limit)
    )
    if license_id is not None:
        query = query.where(SeatAssignment.license_id == license_id)
    if holder is not None:
        query = query.where(holder.seat_column == holder.id)
    return [
        SeatEvent(
            assignment_id=seat_id, license_id=lic_id, license=reference_name, product=product,
            holder=employee if employee_id is not None else child, holder_key=holder_key(employee_id, child_id),
            assigned_at=assigned_at, assigned_by=by or "", unassigned_at=unassigned_at, unassigned_by=unby or "",
            moved_to=moved_to or "", is_open=unassigned_at is None,
        )
        for (seat_id, employee_id, child_id, assigned_at, unassigned_at, lic_id, reference_name, product, employee,
             child, by, unby, moved_to) in session.execute(query).all()
    ]
