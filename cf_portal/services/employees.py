"""Employees and child accounts: the grid (search, filter, sort, page, all in the database) and changes.

The grid stays quick at 100,000 employees of one account: each kind of holder is a union branch scoped to the
account and read along an index of the sort order (models: `ix_employee_account_id_*_order`, and the unique
(account_id, email)); a page is the rows past a holder's place in that order (keyset paging), never an OFFSET;
the count stops past COUNT_CAP; search goes through a trigram index (`search_index`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, select

from cf_portal.models import ChildAccount, Employee, License, Plan, Product, SeatAssignment
from cf_portal.services import audit, search_index, seats
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError, NotFound
from cf_portal.services.roles import Permission
from cf_portal.services.seats import Holder
from cf_portal.services.validation import check_department, check_person_name, normalise_email

CHILD_DEPARTMENT = "Child account"
SortKey = Literal["name", "email", "department"]
PAGE_SIZES = (10, 25, 50, 100)
COUNT_CAP = 10_000  # past this many matches the grid says "10,000+": an exact count would read every one
# Rows a member may select (on any page) to assign at once: the browser sends the list back with Assign, so it
# is bounded, as is the search text.
MAX_SELECTED = 500
MAX_SEARCH_LENGTH = 200
TOO_MANY_SELECTED = (f"Select at most {MAX_SELECTED:,} people at a time: assign a license to these first, "
                     "then select more.")


class HeldSeat(BaseModel):
    assignment_id: int
    license_id: int
    label: str  # "Phishing Simulator · Sales team"


class HolderRow(BaseModel):
    key: str  # "employee:12" / "child:3"
    kind: str
    id: int
    name: str
    email: str
    department: str
    active: bool
    seats: list[HeldSeat]


class Cursor(BaseModel):
    """A holder's place in the grid's order: its sort value (as the database computes it), kind and id."""

    key: str
    kind: str
    id: int


class HolderPage(BaseModel):
    rows: list[HolderRow]
    total: int  # exact up to COUNT_CAP; past it, COUNT_CAP + 1 and `total_capped`
    total_capped: bool = False
    page_size: int
    at_start: bool  # no holder comes before this page
    has_next: bool
    first: Cursor | None = None  # the first and last rows' places, to page from
    last: Cursor | None = None


class GridQuery(BaseModel):
    """One page of the grid: the first page, or the page from (`at`, included), after or before a holder's place
    (keyset paging: the database reads one page along an index, however far in)."""

    search: str = ""
    department: str = ""  # "" = all; CHILD_DEPARTMENT = child accounts only
    product_id: int | None = None
    license_id: int | None = None  # holders of a seat of this license (Manage license links here)
    without_license: bool = False
    show_inactive: bool = False
    sort: SortKey = "name"
    descending: bool = False
    at: Cursor | None = None
    after: Cursor | None = None
    before: Cursor | None = None
    page_size: int = 25


def _seat_filter(holder_id: sa.ColumnElement, seat_holder_id: sa.ColumnElement,
                 query: GridQuery) -> list[sa.ColumnElement[bool]]:
    """Seat conditions for one kind of holder. Each union branch gets a plain correlated EXISTS on its
    own indexed column, which both databases run as a semi-join (an OR across kinds would not be)."""

    def holds(product_id: int | None, license_id: int | None = None) -> sa.Exists:
        seat = sa.select(SeatAssignment.id).where(seat_holder_id == holder_id, SeatAssignment.unassigned_at.is_(None))
        if license_id is not None:
            seat = seat.where(SeatAssignment.license_id == license_id)
        if product_id is not None:
            seat = seat.join(License, License.id == SeatAssignment.license_id).join(
                Plan, Plan.id == License.plan_id).where(Plan.product_id == product_id)
        return sa.exists(seat)

    conditions = []
    if query.product_id is not None:
        conditions.append(holds(query.product_id))
    if query.license_id is not None:
        conditions.append(holds(None, query.license_id))
    if query.without_license:
        conditions.append(~holds(None))
    return conditions


@dataclass(frozen=True)
class _Branch:
    """The holders of one kind, filtered: a union branch with its sort value."""

    kind: str
    columns: tuple[sa.ColumnElement, ...]
    sort_key: sa.ColumnElement
    id: sa.ColumnElement
    conditions: tuple[sa.ColumnElement[bool], ...]


def _branches(account_id: int, query: GridQuery, dialect: str) -> list[_Branch]:
    """Employees and child accounts, each branch scoped to the account and filtered on its own indexed columns."""
    text = query.search.strip()
    branches = []
    if query.department != CHILD_DEPARTMENT:
        conditions = [Employee.account_id == account_id, *_seat_filter(Employee.id, SeatAssignment.employee_id, query)]
        if not query.show_inactive:
            conditions.append(Employee.active.is_(True))
        if query.department:
            conditions.append(Employee.department == query.department)
        if text:
            conditions.append(search_index.employee_matches(text, dialect))
        sort_key = {"name": sa.func.lower(Employee.name), "email": Employee.email,
                    "department": sa.func.lower(Employee.department)}[query.sort]
        branches.append(_Branch("employee", (
            Employee.name.label("name"), Employee.email.label("email"), Employee.department.label("department"),
            Employee.active.label("active")), sort_key, Employee.id, tuple(conditions)))
    if query.department in ("", CHILD_DEPARTMENT):
        conditions = [ChildAccount.account_id == account_id,
                      *_seat_filter(ChildAccount.id, SeatAssignment.child_account_id, query)]
        if text:
            conditions.append(search_index.child_matches(text, dialect))
        sort_key = {"name": sa.func.lower(ChildAccount.name), "email": ChildAccount.contact_email,
                    "department": sa.literal(CHILD_DEPARTMENT.lower())}[query.sort]
        branches.append(_Branch("child", (
            ChildAccount.name.label("name"), ChildAccount.contact_email.label("email"),
            sa.literal(CHILD_DEPARTMENT).label("department"), sa.true().label("active")),
            sort_key, ChildAccount.id, tuple(conditions)))
    return branches


def _past(branch: _Branch, cursor: Cursor, *, forward: bool, inclusive: bool) -> sa.ColumnElement[bool]:
    """The branch's rows past `cursor` in the (sort value, kind, id) order, `forward` or backward. The kind is a
    constant within a branch, so this is a range on the branch's (sort value, id) index."""
    if branch.kind == cursor.kind:
        ours, theirs = sa.tuple_(branch.sort_key, branch.id), sa.tuple_(sa.literal(cursor.key), sa.literal(cursor.id))
        if forward:
            return ours >= theirs if inclusive else ours > theirs
        return ours <= theirs if inclusive else ours < theirs
    ties_are_past = (branch.kind > cursor.kind) == forward  # this kind's ties are past the cursor
    if forward:
        return branch.sort_key >= cursor.key if ties_are_past else branch.sort_key > cursor.key
    return branch.sort_key <= cursor.key if ties_are_past else branch.sort_key < cursor.key


def _page(session: Session, branches: list[_Branch], cursor: Cursor | None, *, forward: bool, inclusive: bool,
          limit: int) -> list[sa.Row]:
    """Up to `limit` rows from `cursor` on, in the grid's order (`forward`) or against it."""
    parts = []
    for branch in branches:
        conditions = list(branch.conditions)
        if cursor is not None:
            conditions.append(_past(branch, cursor, forward=forward, inclusive=inclusive))
        order = [branch.sort_key.asc(), branch.id.asc()] if forward else [branch.sort_key.desc(), branch.id.desc()]
        parts.append(sa.select(sa.select(
            sa.literal(branch.kind).label("kind"), branch.id.label("id"), *branch.columns,
            branch.sort_key.label("sort_key"),
        ).where(*conditions).order_by(*order).limit(limit).subquery()))
    union = sa.union_all(*parts).subquery("holder")
    order = [union.c.sort_key, union.c.kind, union.c.id]
    return list(session.execute(sa.select(union).order_by(*(c.asc() if forward else c.desc() for c in order))
                                .limit(limit)))


def search_holders(session: Session, *, account_id: int, query: GridQuery) -> HolderPage:
    """One page of the account's holders, and how many match (exact up to COUNT_CAP)."""
    dialect = session.get_bind().dialect.name
    branches = _branches(account_id, query, dialect)
    total = _capped_count(session, branches)
    if total <= COUNT_CAP and len(query.search.strip()) >= search_index.MIN_INDEXED_LENGTH:
        # Few enough matches to sort them all: read them through the search index, not along the sort order's
        # index (search_index.sorted_after_search says why).
        branches = [replace(branch, sort_key=search_index.sorted_after_search(branch.sort_key, dialect))
                    for branch in branches]
    page_size = query.page_size if query.page_size in PAGE_SIZES else 25
    ascending = not query.descending

    def read(cursor: Cursor | None, *, forward: bool, inclusive: bool) -> list[sa.Row]:
        return _page(session, branches, cursor, forward=forward, inclusive=inclusive, limit=page_size + 1)

    at_start = False
    if query.before is not None:
        earlier = read(query.before, forward=not ascending, inclusive=False)
        if len(earlier) > page_size:
            rows, has_next = list(reversed(earlier[:page_size])), True
        else:  # the first page (or what is left of it)
            at_start = True
    if query.before is None or at_start:
        cursor = query.after or query.at
        at_start = cursor is None
        found = read(cursor, forward=ascending, inclusive=query.after is None)
        rows, has_next = found[:page_size], len(found) > page_size
    held = _open_seats(session, account_id, [(r.kind, r.id) for r in rows])
    return HolderPage(
        rows=[HolderRow(key=f"{r.kind}:{r.id}", kind=r.kind, id=r.id, name=r.name, email=r.email,
                        department=r.department, active=bool(r.active), seats=held.get(f"{r.kind}:{r.id}", []))
              for r in rows],
        total=min(total, COUNT_CAP + 1), total_capped=total > COUNT_CAP, page_size=page_size, at_start=at_start,
        has_next=has_next, first=_cursor(rows[0]) if rows else None, last=_cursor(rows[-1]) if rows else None,
    )


def _cursor(row: sa.Row) -> Cursor:
    return Cursor(key=row.sort_key, kind=row.kind, id=row.id)


def _capped_count(session: Session, branches: list[_Branch]) -> int:
    """How many holders match, counting no further than COUNT_CAP + 1 (an exact count reads every match)."""
    matches = sa.union_all(*(sa.select(sa.select(branch.id).where(*branch.conditions).limit(COUNT_CAP + 1)
                                       .subquery()) for branch in branches)).subquery()
    return session.execute(sa.select(sa.func.count()).select_from(
        sa.select(matches).limit(COUNT_CAP + 1).subquery())).scalar_one()


def _open_seats(session: Session, account_id: int, refs: list[tuple[str, int]]) -> dict[str, list[HeldSeat]]:
    """The open seats of one page of holders (kind, id), in one query."""
    if not refs:
        return {}
    result: dict[str, list[HeldSeat]] = {}
    seat_rows = session.execute(
        sa.select(SeatAssignment.id, SeatAssignment.employee_id, SeatAssignment.child_account_id, License.id,
                  License.reference_name, Product.name)
        .join(License, License.id == SeatAssignment.license_id)
        .join(Plan, Plan.id == License.plan_id)
        .join(Product, Product.id == Plan.product_id)
        .where(SeatAssignment.account_id == account_id, SeatAssignment.unassigned_at.is_(None),
               seats.held_by_any(refs))
        .order_by(Product.sort_order, License.reference_name)
    ).all()
    for seat_id, employee_id, child_id, license_id, reference_name, product in seat_rows:
        key = seats.holder_key(employee_id, child_id)
        result.setdefault(key, []).append(HeldSeat(assignment_id=seat_id, license_id=license_id,
                                                   label=f"{product} · {reference_name}"))
    return result


def holders_of(keys: object) -> list[Holder]:
    """The holders named by a list of keys from the browser, each once and in order: NotFound for a key that
    names none, DomainError past MAX_SELECTED (checked before any key is read)."""
    if not isinstance(keys, list):
        raise NotFound("That employee or child account")
    if len(keys) > MAX_SELECTED:
        raise DomainError(TOO_MANY_SELECTED)
    holders = {holder.key: holder for holder in map(Holder.parse, keys)}
    return list(holders.values())


def add_to_selection(selected: list[str], keys: object) -> list[str]:
    """`selected` with the holders of `keys` added at its end; DomainError when that makes more than MAX_SELECTED
    (nothing is added then)."""
    chosen = set(selected)
    added = [holder.key for holder in holders_of(keys) if holder.key not in chosen]
    if len(selected) + len(added) > MAX_SELECTED:
        raise DomainError(TOO_MANY_SELECTED)
    return [*selected, *added]


def departments(session: Session, *, account_id: int) -> list[str]:
    return list(session.exec(select(Employee.department).where(
        Employee.account_id == account_id, Employee.department != "").distinct().order_by(Employee.department)))


def products(session: Session) -> list[tuple[int, str]]:
    return [(p.id, p.name) for p in session.exec(select(Product).order_by(Product.sort_order))]


# --- changes -------------------------------------------------------------------------------------------


def _email_taken(session: Session, account_id: int, email: str, except_id: int | None = None) -> bool:
    query = select(Employee.id).where(Employee.account_id == account_id, Employee.email == email)
    if except_id is not None:
        query = query.where(Employee.id != except_id)
    return session.exec(query).first() is not None


def _save(session: Session, actor: Actor, holder: Employee | ChildAccount, *, kind: str, added: bool,
          duplicate: DomainError) -> None:
    """Write a holder just added or edited, and audit it; `duplicate` when a unique index caught one written
    meanwhile (the checks before it cannot see another transaction's row)."""
    session.add(holder)
    try:
        session.flush()
    except sa.exc.IntegrityError as exc:
        raise duplicate from exc
    audit.record(session, actor, f"{kind}.{'added' if added else 'updated'}", kind, holder.id, holder.name)


def save_employee(session: Session, *, actor: Actor, name: str, email: str, department: str,
                  employee_id: int | None = None) -> Employee:
    """Add an employee, or edit one of this account's. Field messages name the field."""
    actor.require(Permission.MANAGE_SEATS)
    clean_name = check_person_name(name)
    clean_email = normalise_email(email)
    clean_department = check_department(department)
    if _email_taken(session, actor.account_id, clean_email, employee_id):
        raise DomainError("An employee with this email already exists.", field="email")
    if employee_id is None:
        employee = Employee(account_id=actor.account_id, name=clean_name, email=clean_email,
                            department=clean_department)
    else:
        employee = session.get(Employee, employee_id)
        if employee is None or employee.account_id != actor.account_id:
            raise NotFound("That employee")
        employee.name, employee.email, employee.department = clean_name, clean_email, clean_department
    _save(session, actor, employee, kind="employee", added=employee_id is None,
          duplicate=DomainError("An employee with this email already exists.", field="email"))
    return employee


def set_employee_active(session: Session, *, actor: Actor, employee_id: int, active: bool) -> int:
    """Deactivate (freeing every seat they hold) or reactivate. Returns the number of seats freed."""
    actor.require(Permission.MANAGE_SEATS)
    employee = session.get(Employee, employee_id)
    if employee is None or employee.account_id != actor.account_id:
        raise NotFound("That employee")
    freed = 0
    if not active:
        freed = seats.free_all_seats_of(session, actor=actor, holder=Holder(kind="employee", id=employee.id))
    employee.active = active
    audit.record(session, actor, "employee.deactivated" if not active else "employee.reactivated", "employee",
                 employee.id, f"{employee.name}; {freed} seats freed")
    session.flush()
    return freed


def open_seat_count(session: Session, *, account_id: int, holder: Holder) -> int:
    return session.execute(sa.select(sa.func.count()).where(
        SeatAssignment.account_id == account_id, holder.seat_column == holder.id, SeatAssignment.unassigned_at.is_(None),
    )).scalar_one()


def save_child_account(session: Session, *, actor: Actor, name: str, contact_email: str,
                       child_id: int | None = None) -> ChildAccount:
    actor.require(Permission.MANAGE_SEATS)
    clean_name = check_person_name(name)
    clean_email = normalise_email(contact_email)
    duplicate = select(ChildAccount.id).where(ChildAccount.account_id == actor.account_id,
                                              ChildAccount.name == clean_name)
    if child_id is not None:
        duplicate = duplicate.where(ChildAccount.id != child_id)
    if session.exec(duplicate).first() is not None:
        raise DomainError("A child account with this name already exists.", field="name")
    if child_id is None:
        child = ChildAccount(account_id=actor.account_id, name=clean_name, contact_email=clean_email)
    else:
        child = session.get(ChildAccount, child_id)
        if child is None or child.account_id != actor.account_id:
            raise NotFound("That child account")
        child.name, child.contact_email = clean_name, clean_email
    _save(session, actor, child, kind="child_account", added=child_id is None,
          duplicate=DomainError("A child account with this name already exists.", field="name"))
    return child


def get_holder(session: Session, *, account_id: int, holder: Holder) -> HolderRow:
    """One holder of this account, for its details panel or edit form."""
    if holder.kind == "employee":
        row = session.get(Employee, holder.id)
        if row is None or row.account_id != account_id:
            raise NotFound("That employee")
        data = dict(name=row.name, email=row.email, department=row.department, active=row.active)
    else:
        child = session.get(ChildAccount, holder.id)
        if child is None or child.account_id != account_id:
            raise NotFound("That child account")
        data = dict(name=child.name, email=child.contact_email, department=CHILD_DEPARTMENT, active=True)
    seats_of = _open_seats(session, account_id, [(holder.kind, holder.id)])
    return HolderRow(key=holder.key, kind=holder.kind, id=holder.id, seats=seats_of.get(holder.key, []), **data)
