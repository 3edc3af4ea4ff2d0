"""Seats: assign, move, free; never more than bought, never two for one holder, history kept.

The tests of assigns at the same moment are only real races on PostgreSQL (on SQLite writers queue up behind
`BEGIN IMMEDIATE`); `make test` runs them there too. See tests/support/concurrency.py."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from cf_portal.db import session_scope
from cf_portal.models import AuditEvent, Employee, License, SeatAssignment
from cf_portal.services import seats
from cf_portal.services.actors import Actor, actor_for_user
from cf_portal.services.errors import DomainError, NotFound
from cf_portal.services.seats import Holder, NotEnoughSeats
from tests.factories import make_account, make_child_account, make_employee, make_license, make_plan
from tests.support.concurrency import pausing_for_each_other, run_at_once


class World:
    def __init__(self, engine: sa.Engine, quantity: int = 3, employees: int = 6) -> None:
        self.engine = engine
        with session_scope(engine) as session:
            account, user = make_account(session)
            self.actor = actor_for_user(session, user.id)
            plan = make_plan(session)
            self.license_id = make_license(session, account, plan, quantity=quantity).id
            self.employees = [Holder(kind="employee", id=make_employee(session, account).id) for _ in range(employees)]
            self.child = Holder(kind="child", id=make_child_account(session, account).id)
            other, other_user = make_account(session)
            self.other_actor = actor_for_user(session, other_user.id)
            self.other_license_id = make_license(session, other, plan, quantity=5).id
            self.other_employee = Holder(kind="employee", id=make_employee(session, other).id)

    def assign(self, *holders: Holder, actor: Actor | None = None, license_id: int | None = None) -> list[int]:
        with session_scope(self.engine) as session:
            return seats.assign(session, actor=actor or self.actor, license_id=license_id or self.license_id,
                                holders=list(holders))

    def license(self) -> License:
        with session_scope(self.engine, write=False) as session:
            return session.get(License, self.license_id)

    def open_seats(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM seat_assignment WHERE license_id = :l AND "
                                        "unassigned_at IS NULL"), {"l": self.license_id}).scalar_one()


@pytest.fixture
def world(engine: sa.Engine) -> World:
    return World(engine)


def test_assign_takes_seats_and_counts_agree(world: World) -> None:
    world.assign(world.employees[0], world.child)
    assert world.license().seats_assigned == world.open_seats() == 2


def test_bulk_assign_beyond_the_seats_assigns_nobody_and_says_how_many_are_missing(world: World) -> None:
    world.assign(world.employees[0])
    with pytest.raises(NotEnoughSeats) as info:
        world.assign(*world.employees[1:5])  # 4 people, 2 seats left
    assert (info.value.available, info.value.needed, info.value.missing) == (2, 4, 2)
    assert "2 more are needed" in info.value.message
    assert world.license().seats_assigned == world.open_seats() == 1


def test_one_seat_per_holder_per_license(world: World) -> None:
    world.assign(world.employees[0])
    with pytest.raises(DomainError) as info:
        world.assign(world.employees[0], world.employees[1])
    assert "Already holds this license" in info.value.message
    assert world.open_seats() == 1
    # Named twice in one request: one seat.
    world.assign(world.employees[2], world.employees[2])
    assert world.open_seats() == 2


def test_unassign_frees_the_seat_at_once_and_keeps_history(world: World) -> None:
    [seat_id] = world.assign(world.employees[0])
    with session_scope(world.engine) as session:
        seats.unassign(session, actor=world.actor, assignment_id=seat_id)
    assert world.license().seats_assigned == world.open_seats() == 0
    with pytest.raises(DomainError):
        with session_scope(world.engine) as session:
            seats.unassign(session, actor=world.actor, assignment_id=seat_id)
    world.assign(world.employees[0])  # may hold it again
    with session_scope(world.engine, write=False) as session:
        history = seats.seat_history(session, account_id=world.actor.account_id, license_id=world.license_id)
    assert [e.is_open for e in history] == [True, False]
    assert history[1].unassigned_by == history[1].assigned_by != ""


def test_move_is_one_step_and_shows_in_the_history(world: World) -> None:
    [seat_id] = world.assign(world.employees[0])
    with session_scope(world.engine) as session:
        new_id = seats.move(session, actor=world.actor, assignment_id=seat_id, to=world.child)
    assert world.license().seats_assigned == world.open_seats() == 1
    with session_scope(world.engine, write=False) as session:
        old, new = session.get(SeatAssignment, seat_id), session.get(SeatAssignment, new_id)
        assert old.unassigned_at == new.assigned_at  # no moment with both or neither
        assert new.child_account_id == world.child.id
        assert old.moved_to_id == new.id
        history = seats.seat_history(session, account_id=world.actor.account_id, license_id=world.license_id)
        assert [(e.holder, e.is_open, e.moved_to) for e in history][1][1:] == (False, history[0].holder)
        actions = session.exec(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions[-1] == "seat.moved"


def test_move_refuses_someone_who_already_holds_it(world: World) -> None:
    first, _ = world.assign(world.employees[0], world.employees[1])
    with pytest.raises(DomainError):
        with session_scope(world.engine) as session:
            seats.move(session, actor=world.actor, assignment_id=first, to=world.employees[1])
    with pytest.raises(DomainError):
        with session_scope(world.engine) as session:
            seats.move(session, actor=world.actor, assignment_id=first, to=world.employees[0])
    assert world.open_seats() == 2


def test_other_accounts_ids_are_not_found(world: World) -> None:
    [seat_id] = world.assign(world.employees[0])
    with pytest.raises(NotFound):
        world.assign(world.employees[1], license_id=world.other_license_id)
    with pytest.raises(NotFound):
        world.assign(world.other_employee)
    for call in (
        lambda s: seats.unassign(s, actor=world.other_actor, assignment_id=seat_id),
        lambda s: seats.move(s, actor=world.other_actor, assignment_id=seat_id, to=world.other_employee),
        lambda s: seats.unassign(s, actor=world.actor, assignment_id=999_999),
    ):
        with pytest.raises(NotFound):
            with session_scope(world.engine) as session:
                call(session)
    assert world.open_seats() == 1


def test_deactivated_employees_cannot_get_seats(world: World) -> None:
    with session_scope(world.engine) as session:
        session.execute(sa.text("UPDATE employee SET active = false WHERE id = :id"), {"id": world.employees[0].id})
    with pytest.raises(DomainError):
        world.assign(world.employees[0])


def test_fifty_simultaneous_attempts_take_the_last_five_seats_exactly(engine: sa.Engine) -> None:
    world = World(engine, quantity=10, employees=55)
    world.assign(*world.employees[:5])  # 5 of 10 taken: 5 left
    outcomes: list[str] = []
    barrier = threading.Barrier(50)

    def attempt(holder: Holder) -> None:
        barrier.wait()
        try:
            world.assign(holder)
            outcomes.append("assigned")
        except NotEnoughSeats:
            outcomes.append("full")
        except Exception as exc:  # noqa: BLE001
            outcomes.append(f"error: {exc!r}")

    threads = [threading.Thread(target=attempt, args=(h,)) for h in world.employees[5:55]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert outcomes.count("assigned") == 5, outcomes
    assert outcomes.count("full") == 45, outcomes
    assert world.license().seats_assigned == world.open_seats() == 10


def test_fifty_simultaneous_attempts_for_one_holder_give_one_seat(engine: sa.Engine) -> None:
    world = World(engine, quantity=10, employees=1)
    barrier = threading.Barrier(50)
    outcomes: list[str] = []

    def attempt() -> None:
        barrier.wait()
        try:
            world.assign(world.employees[0])
            outcomes.append("assigned")
        except DomainError as exc:
            outcomes.append(exc.message)

    threads = [threading.Thread(target=attempt) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert outcomes.count("assigned") == 1, outcomes
    refusals = [o for o in outcomes if o != "assigned"]
    assert len(refusals) == 49, outcomes
    # Refused in words (the check, or the unique index a moment later), never a database error.
    assert all(r.startswith(("Already holds this license:", "One of them was given this license a moment ago."))
               for r in refusals), set(refusals)
    assert world.license().seats_assigned == world.open_seats() == 1


def test_unassign_move_and_deactivate_of_one_seat_at_once_one_wins(engine: sa.Engine,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Three admins act on one seat at the same moment: one frees it, one moves it to someone else, one deactivates
    its holder. Each has read the seat as open before any writes (the pause below; on PostgreSQL only, where it is
    a real race): exactly one of them changes the seat, the others are refused in words (a deactivation that
    comes after the seat has gone may deactivate with nothing to free), and the count stays right."""
    from cf_portal.services import employees

    world = World(engine, quantity=3, employees=2)
    holder, other = world.employees
    [seat] = world.assign(holder)
    monkeypatch.setattr(seats, "_open_assignment", pausing_for_each_other(seats._open_assignment, parties=3))
    outcomes: dict[str, str] = {}

    def act(i: int) -> None:
        name = ("unassign", "move", "deactivate")[i]
        try:
            with session_scope(engine) as session:
                if name == "unassign":
                    seats.unassign(session, actor=world.actor, assignment_id=seat)
                    outcomes[name] = "freed the seat"
                elif name == "move":
                    seats.move(session, actor=world.actor, assignment_id=seat, to=other)
                    outcomes[name] = "moved the seat"
                else:
                    freed = employees.set_employee_active(session, actor=world.actor, employee_id=holder.id,
                                                          active=False)
                    outcomes[name] = "freed the seat" if freed == 1 else f"deactivated, {freed} seats freed"
        except DomainError as exc:
            outcomes[name] = exc.message

    run_at_once(3, act)
    assert len(outcomes) == 3, outcomes
    winners = [name for name, outcome in outcomes.items() if outcome.endswith("the seat")]
    assert len(winners) == 1, outcomes
    assert all(outcome in {"This seat was already freed.", "deactivated, 0 seats freed",
                           "This seat was just freed or moved by someone else. Refresh and try again."}
               for name, outcome in outcomes.items() if name not in winners), outcomes
    held = 1 if winners == ["move"] else 0
    assert world.license().seats_assigned == world.open_seats() == held
    with session_scope(engine, write=False) as session:
        active = session.get(Employee, holder.id).active
    assert active is not outcomes["deactivate"].startswith(("freed", "deactivated"))


def test_assignable_licenses_show_what_is_available(world: World, session: Session) -> None:
    world.assign(world.employees[0])
    options = seats.assignable_licenses(session, account_id=world.actor.account_id)
    assert [(o.available, o.quantity) for o in options] == [(2, 3)]
    assert options[0].label.endswith("2 available")
