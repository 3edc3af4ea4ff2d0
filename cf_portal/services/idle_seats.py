"""Idle seats: what an account pays for each month that nobody uses, and the one step that stops it.

The rules (each license on its own; the panel on the Licenses page shows them):
- Counted: the account's licenses that will renew: not pending, not canceled, not set to end at the period's end
  (those stop costing anyway). A license that is past due or suspended is counted: it renews once it is paid.
- The seats paid for from the next renewal are `next_quantity` when a decrease is scheduled, else `quantity`: seats
  a scheduled decrease already removes are not idle (they are on their way out), and the scheduled change is shown.
- Idle seats, in this order: **unassigned** (paid from the renewal, held by nobody), **held by deactivated
  employees** (a deactivated person may still hold a seat, e.g. one given before they left), and **unused**: held by
  an active person whose seat was not used for `UNUSED_AFTER_DAYS` days (nor given in that time). Use is what the
  products report through the entitlements API (`ProductsReportUse`: each check stamps the seat's `last_used_at`); a
  product that never checked a seat of the account reports nothing, and its seats are never called unused. Child
  accounts are always active.
- What they cost per month: what the license would cost this month without them, taken off what it costs this month
  (`pricing.quote(...).amount_for_month(periods_billed - 1)`: the license's own unit price and its coupon as it
  stands this month; a plan change scheduled for the renewal is not counted). The groups are taken off in the order
  above, so they add up to the license's total, to the cent, whatever the coupon. A license without any seat costs 0.
- One suggested action per license:
  1. **Free these seats** when deactivated employees hold seats: a decrease below the seats assigned is refused
     (`license_changes.schedule_decrease`), so their seats go first (`free_deactivated_seats`, Manage seats).
  2. Otherwise **Reduce to N at renewal** when seats are unassigned, N being the seats assigned (all held by active
     holders then), at least 1 (a license keeps one seat; to pay for none, cancel it). A decrease already scheduled
     to N or fewer is not suggested again; one to more than N is suggested lower (Change licenses).
  3. Otherwise nothing (the one idle seat of an unused license says to cancel it to stop paying; unused seats of
     active people are shown, not acted on: who may lose a seat for not using it is issue 13's call).
Every query is scoped by the account; the DTOs are plain data, safe to send to the browser.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal, NamedTuple, Protocol

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, select

from cf_portal import clock
from cf_portal.models import Coupon, Employee, License, LicenseStatus, Plan, Product, SeatAssignment
from cf_portal.services import seats
from cf_portal.services.actors import Actor
from cf_portal.services.coupons import discount_of
from cf_portal.services.errors import DomainError, NotFound
from cf_portal.services.license_changes import day
from cf_portal.services.pricing import format_money, quote
from cf_portal.services.roles import Permission

UNUSED_AFTER_DAYS = 30
# Licenses whose seats are paid for again at the next renewal (a suspended one once it is paid).
RENEWING = (LicenseStatus.ACTIVE.value, LicenseStatus.PAST_DUE.value, LicenseStatus.SUSPENDED.value)

Action = Literal["free", "reduce", "none"]


class SeatUse(Protocol):
    """Where the products' reports of use come from (`ProductsReportUse`). Without one no seat is ever called
    unused: `idle_seats(..., use=None)` leaves `IdleLicense.unused` empty and `use_reported` False."""

    def last_used(self, session: Session, *, account_id: int,
                  assignment_ids: list[int]) -> dict[int, datetime | None]:
        """When each of these open seats (of `account_id`) was last used, None for never; a seat whose use is not
        reported is left out (and not judged)."""
        ...


class ProductsReportUse:
    """The products' reports of use: `seat_assignment.last_used_at`, stamped by the entitlements API's checks
    (`entitlements.record_use`). A product reports use for an account once it has checked any of the account's
    seats of that product (open or ended); the seats of a product that never did are left out."""

    def last_used(self, session: Session, *, account_id: int,
                  assignment_ids: list[int]) -> dict[int, datetime | None]:
        if not assignment_ids:
            return {}
        reporting = (
            select(Plan.product_id)
            .join(License, License.plan_id == Plan.id)
            .join(SeatAssignment, SeatAssignment.license_id == License.id)
            .where(SeatAssignment.account_id == account_id, SeatAssignment.last_used_at.is_not(None))
            .distinct()
        )
        # The account's open seats of reporting products, filtered here: an IN list of every id would pass one bind
        # parameter per seat, past PostgreSQL's 65,535 at 100,000 employees.
        wanted = set(assignment_ids)
        rows = session.execute(
            select(SeatAssignment.id, SeatAssignment.last_used_at)
            .join(License, sa.and_(License.id == SeatAssignment.license_id, License.account_id == account_id))
            .join(Plan, Plan.id == License.plan_id)
            .where(SeatAssignment.account_id == account_id, SeatAssignment.unassigned_at.is_(None),
                   Plan.product_id.in_(reporting))
        ).all()
        return {seat_id: last_used_at for seat_id, last_used_at in rows if seat_id in wanted}


PRODUCTS_REPORT_USE = ProductsReportUse()


class IdleHolder(BaseModel):
    assignment_id: int
    name: str


class IdleLicense(BaseModel):
    """One license with idle seats; amounts in minor units of `currency`, with their display."""

    license_id: int
    reference_name: str
    product: str
    plan: str
    currency: str
    quantity: int  # paid now
    renewing_quantity: int  # paid from the next renewal (a scheduled decrease counted)
    assigned: int
    unassigned: int
    unassigned_cost: int
    unassigned_cost_display: str
    deactivated: list[IdleHolder]
    deactivated_text: str  # "2 held by deactivated people (Ann Lee, Bob Ray)" or ""
    deactivated_cost: int
    deactivated_cost_display: str
    unused: list[IdleHolder]  # issue 13: active holders who have not used their seat; [] until use is reported
    unused_text: str  # "2 not used for 30 days (Ann Lee, Bob Ray)" or ""
    unused_cost: int
    unused_cost_display: str
    idle: int
    idle_cost: int
    idle_cost_display: str
    scheduled: str  # "10 → 6 on 4 January 2027" or ""
    action: Action
    action_label: str  # "Reduce to 4 at renewal" / "Free these seats" / ""
    reduce_to: int  # N of "Reduce to N at renewal"; 0 for the other actions
    reduce_saves_display: str  # what that reduction takes off each month from the renewal, or ""
    note: str  # why there is no action, or ""
    confirm_text: str  # what the action does, for its confirmation; "" without an action


class IdleSeats(BaseModel):
    licenses: list[IdleLicense]  # only those with idle seats, the dearest first
    renewing_licenses: int  # how many licenses were looked at
    idle: int
    summary: str  # "$84.00 a month on 7 idle seats" / "No idle seats"
    use_reported: bool  # whether seats unused for UNUSED_AFTER_DAYS days are counted (issue 13)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _month_price(lic: License, coupon: Coupon | None, quantity: int) -> int:
    """What the license costs this month with `quantity` seats (0 seats cost nothing)."""
    if quantity <= 0:
        return 0
    return quote(unit_amount=lic.unit_amount, quantity=quantity, currency=lic.currency,
                 discount=discount_of(coupon) if coupon else None).amount_for_month(lic.periods_billed - 1)


def _costs(lic: License, coupon: Coupon | None, paid: int, groups: Iterable[int]) -> list[int]:
    """The monthly cost of each group of idle seats, taken off `paid` seats in order (they add up exactly)."""
    costs, left = [], paid
    for count in groups:
        costs.append(_month_price(lic, coupon, left) - _month_price(lic, coupon, left - count))
        left -= count
    return costs


def _names(holders: list[IdleHolder]) -> str:
    return ", ".join(h.name for h in holders)


def _deactivated_text(holders: list[IdleHolder]) -> str:
    if not holders:
        return ""
    who = "a deactivated person" if len(holders) == 1 else "deactivated people"
    return f"{len(holders)} held by {who} ({_names(holders)})"


def _confirm_text(action: Action, *, reduce_to: int, renewing: int, saves: str, deactivated: list[IdleHolder]) -> str:
    if action == "reduce":
        return (f"From the next renewal it is billed for {_plural(reduce_to, 'license')} instead of {renewing}: "
                f"{saves} a month less. Until then every seat keeps working, and nothing is refunded.")
    if action == "free":
        lose = "loses their seat" if len(deactivated) == 1 else "lose their seats"
        return (f"{_names(deactivated)} (deactivated) {lose}. The seats can be assigned again at once, or reduced "
                "at renewal.")
    return ""


def _suggest(*, deactivated: int, unassigned: int, assigned: int, renewing: int) -> tuple[Action, int, str]:
    if deactivated:
        return "free", 0, ""
    reduce_to = max(assigned, 1)
    if unassigned and reduce_to < renewing:
        return "reduce", reduce_to, ""
    if unassigned:
        return "none", 0, "Cancel the license to stop paying for its last seat."
    return "none", 0, ""


class _Seat(NamedTuple):
    license_id: int
    assignment_id: int
    name: str
    active: bool
    assigned_at: datetime


def _open_seats(session: Session, account_id: int, license_ids: list[int]) -> list[_Seat]:
    """Every open seat of these licenses held by an employee of the account."""
    if not license_ids:
        return []
    rows = session.execute(
        select(SeatAssignment.license_id, SeatAssignment.id, Employee.name, Employee.active, SeatAssignment.assigned_at)
        .join(Employee, sa.and_(Employee.id == SeatAssignment.employee_id, Employee.account_id == account_id))
        .where(SeatAssignment.account_id == account_id, SeatAssignment.license_id.in_(license_ids),
               SeatAssignment.unassigned_at.is_(None))
        .order_by(Employee.name, SeatAssignment.id)
    ).all()
    return [_Seat(*row) for row in rows]


def _unused(session: Session, account_id: int, use: SeatUse | None, seats_held: list[_Seat],
            now: datetime) -> tuple[set[int], bool]:
    """The seats of active holders not used for UNUSED_AFTER_DAYS days (a seat given more recently is not), and
    whether any seat's use was reported at all."""
    active = {seat.assignment_id: seat.assigned_at for seat in seats_held if seat.active}
    if use is None or not active:
        return set(), False
    since = now - timedelta(days=UNUSED_AFTER_DAYS)
    last = use.last_used(session, account_id=account_id, assignment_ids=sorted(active))
    unused = {i for i, used_at in last.items()
              if i in active and active[i] <= since and (used_at is None or used_at <= since)}
    return unused, bool(last)


def _idle_license(lic: License, plan: Plan, product: Product, coupon: Coupon | None, seats_held: list[_Seat],
                  unused_ids: set[int]) -> IdleLicense | None:
    """The license's idle seats and what to do about them; None when it has none."""
    renewing = lic.next_quantity or lic.quantity
    gone = [IdleHolder(assignment_id=s.assignment_id, name=s.name) for s in seats_held if not s.active]
    unused = [IdleHolder(assignment_id=s.assignment_id, name=s.name) for s in seats_held
              if s.assignment_id in unused_ids]
    unassigned = renewing - lic.seats_assigned
    idle = unassigned + len(gone) + len(unused)
    if idle == 0:
        return None
    unassigned_cost, gone_cost, unused_cost = _costs(lic, coupon, renewing, (unassigned, len(gone), len(unused)))
    idle_cost = unassigned_cost + gone_cost + unused_cost
    action, reduce_to, note = _suggest(deactivated=len(gone), unassigned=unassigned, assigned=lic.seats_assigned,
                                       renewing=renewing)
    saves = _month_price(lic, coupon, renewing) - _month_price(lic, coupon, reduce_to) if reduce_to else 0

    def money(amount: int) -> str:
        return format_money(amount, lic.currency)

    return IdleLicense(
        license_id=lic.id, reference_name=lic.reference_name, product=product.name, plan=plan.name,
        currency=lic.currency, quantity=lic.quantity, renewing_quantity=renewing, assigned=lic.seats_assigned,
        unassigned=unassigned, unassigned_cost=unassigned_cost, unassigned_cost_display=money(unassigned_cost),
        deactivated=gone, deactivated_text=_deactivated_text(gone), deactivated_cost=gone_cost,
        deactivated_cost_display=money(gone_cost),
        unused=unused, unused_cost=unused_cost, unused_cost_display=money(unused_cost),
        unused_text=f"{len(unused)} not used for {UNUSED_AFTER_DAYS} days ({_names(unused)})" if unused else "",
        idle=idle, idle_cost=idle_cost, idle_cost_display=money(idle_cost),
        scheduled=f"{lic.quantity} → {lic.next_quantity} on {day(lic.period_end)}" if lic.next_quantity else "",
        action=action, reduce_to=reduce_to, reduce_saves_display=money(saves) if reduce_to else "", note=note,
        action_label={"free": "Free these seats", "reduce": f"Reduce to {reduce_to} at renewal"}.get(action, ""),
        confirm_text=_confirm_text(action, reduce_to=reduce_to, renewing=renewing, saves=money(saves),
                                   deactivated=gone),
    )


def idle_seats(session: Session, *, account_id: int, use: SeatUse | None = None,
               now: datetime | None = None) -> IdleSeats:
    """The account's idle seats, license by license, with what they cost per month and what to do about them."""
    rows = session.exec(
        select(License, Plan, Product, Coupon)
        .join(Plan, Plan.id == License.plan_id)
        .join(Product, Product.id == Plan.product_id)
        .outerjoin(Coupon, Coupon.id == License.coupon_id)
        .where(License.account_id == account_id, License.status.in_(RENEWING), License.cancel_at_period_end.is_(False))
        .order_by(License.reference_name, License.id)
    ).all()
    seats_held = _open_seats(session, account_id, [lic.id for lic, *_ in rows])
    unused_ids, use_reported = _unused(session, account_id, use, seats_held, now or clock.now())
    by_license: dict[int, list[_Seat]] = defaultdict(list)
    for seat in seats_held:
        by_license[seat.license_id].append(seat)
    licenses = [row for lic, plan, product, coupon in rows
                if (row := _idle_license(lic, plan, product, coupon, by_license[lic.id], unused_ids)) is not None]
    licenses.sort(key=lambda row: (-row.idle_cost, row.reference_name.lower(), row.license_id))
    return IdleSeats(licenses=licenses, renewing_licenses=len(rows), idle=sum(row.idle for row in licenses),
                     summary=_summary(licenses), use_reported=use_reported)


def _summary(licenses: list[IdleLicense]) -> str:
    """"$84.00 a month on 7 idle seats" (each currency's sum, joined with "+")."""
    idle = sum(row.idle for row in licenses)
    if not idle:
        return "No idle seats"
    by_currency: dict[str, int] = defaultdict(int)
    for row in licenses:
        by_currency[row.currency] += row.idle_cost
    money = " + ".join(format_money(amount, currency) for currency, amount in sorted(by_currency.items()))
    return f"{money} a month on {_plural(idle, 'idle seat')}"


def free_deactivated_seats(session: Session, *, actor: Actor, license_id: int, assignment_ids: list[int],
                           now: datetime | None = None) -> int:
    """Free the seats of `license_id` held by deactivated employees, as the panel listed them (`assignment_ids`):
    all or nothing, in the caller's transaction. Each id must be an open seat of this license and account held by a
    deactivated employee of the account, else nothing is freed (the list changed: the panel shows it again).
    Returns how many were freed."""
    actor.require(Permission.MANAGE_SEATS)
    now = now or clock.now()
    lic = session.exec(select(License).where(License.id == license_id, License.account_id == actor.account_id,
                                             License.status != LicenseStatus.PENDING.value)).first()
    if lic is None:
        raise NotFound("That license")
    wanted = sorted(set(assignment_ids))
    if not wanted:
        raise DomainError("No seats of deactivated people were chosen.", field="seats")
    found = {row.id: (row, employee) for row, employee in session.exec(
        select(SeatAssignment, Employee)
        .join(Employee, sa.and_(Employee.id == SeatAssignment.employee_id, Employee.account_id == actor.account_id))
        .where(SeatAssignment.id.in_(wanted), SeatAssignment.account_id == actor.account_id,
               SeatAssignment.license_id == lic.id)
        .with_for_update()
    ).all()}
    if len(found) != len(wanted):
        raise NotFound("That seat")
    changed = sorted(employee.name for row, employee in found.values()
                     if row.unassigned_at is not None or employee.active)
    if changed:
        raise DomainError(f"The seats changed since they were shown ({', '.join(changed)}). Nothing was freed; "
                          "look at the list again.", field="seats")
    for assignment_id in wanted:
        seats.unassign(session, actor=actor, assignment_id=assignment_id, now=now)
    return len(wanted)
