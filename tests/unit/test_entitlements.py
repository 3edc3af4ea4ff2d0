"""Entitlements: who may use which product, answered within one account only, in few queries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from cf_portal.db import session_scope
from cf_portal.models import Account, Employee, License, Plan, SeatAssignment
from cf_portal.services import entitlements, seats
from cf_portal.services.actors import Actor, actor_for_user
from cf_portal.services.employees import set_employee_active
from cf_portal.services.seats import Holder
from tests.factories import make_account, make_child_account, make_employee, make_license, make_plan
from tests.unit.conftest import NOW


@dataclass
class Company:
    engine: sa.Engine
    owner: Actor
    account_id: int

    def person(self, email: str, name: str = "") -> Employee:
        with session_scope(self.engine) as session:
            return make_employee(session, session.get(Account, self.account_id), email=email,
                                 name=name or email.split("@")[0].title())

    def license(self, plan: Plan, *, quantity: int = 5, reference: str = "Team") -> License:
        with session_scope(self.engine) as session:
            return make_license(session, session.get(Account, self.account_id), plan, quantity=quantity,
                                reference_name=reference)

    def give(self, lic: License, *holders: Employee | Holder, at=NOW) -> list[int]:  # noqa: ANN001
        refs = [h if isinstance(h, Holder) else Holder(kind="employee", id=h.id) for h in holders]
        with session_scope(self.engine) as session:
            return seats.assign(session, actor=self.owner, license_id=lic.id, holders=refs, now=at)

    def ask(self, plan: Plan, email: str) -> entitlements.Entitlement:
        with session_scope(self.engine, write=False) as session:
            return entitlements.check(session, account_id=self.account_id, product_code=code_of(session, plan),
                                      email=email)


def code_of(session: Session, plan: Plan) -> str:
    from cf_portal.models import Product

    return session.get(Product, plan.product_id).code


def new_company(engine: sa.Engine) -> Company:
    with session_scope(engine) as session:
        account, user = make_account(session)
        return Company(engine=engine, owner=actor_for_user(session, user.id), account_id=account.id)


@pytest.fixture
def plan(engine: sa.Engine) -> Plan:
    with session_scope(engine) as session:
        return make_plan(session)


@pytest.fixture
def acme(engine: sa.Engine) -> Company:
    return new_company(engine)


def product(engine: sa.Engine, plan: Plan) -> str:
    with session_scope(engine, write=False) as session:
        return code_of(session, plan)


def set_status(engine: sa.Engine, lic: License, status: str) -> None:
    with session_scope(engine) as session:
        session.execute(sa.update(License).where(License.id == lic.id).values(status=status))


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")):
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def test_an_active_employee_with_a_seat_is_entitled_since_the_seat_was_given(acme: Company, plan: Plan) -> None:
    ada = acme.person("ada@acme.example", "Ada Lovelace")
    lic = acme.license(plan, reference="Sales team")
    acme.give(lic, ada, at=NOW)
    answer = acme.ask(plan, "  Ada@ACME.example ")
    assert answer.model_dump() == {
        "entitled": True, "product": product(acme.engine, plan),
        "holder": {"kind": "employee", "name": "Ada Lovelace"},
        "license": {"reference": "Sales team", "plan": plan.name, "status": "active"}, "since": NOW}
    assert '"since":"2026-11-29T12:00:00Z"' in answer.model_dump_json()


@pytest.mark.parametrize(("status", "entitled"), [("active", True), ("past_due", True), ("suspended", False),
                                                  ("canceled", False)])
def test_only_active_and_past_due_licenses_entitle(acme: Company, plan: Plan, status: str, entitled: bool) -> None:
    ada = acme.person("ada@acme.example")
    lic = acme.license(plan)
    acme.give(lic, ada)
    set_status(acme.engine, lic, status)
    answer = acme.ask(plan, "ada@acme.example")
    assert answer.entitled is entitled
    assert answer.license.status == status  # the product can tell the person why
    assert (answer.since is not None) is entitled


def test_a_pending_license_is_never_mentioned(acme: Company, plan: Plan) -> None:
    ada = acme.person("ada@acme.example")
    lic = acme.license(plan)
    acme.give(lic, ada)
    set_status(acme.engine, lic, "pending")
    assert acme.ask(plan, "ada@acme.example").model_dump() == {
        "entitled": False, "product": product(acme.engine, plan), "holder": None, "license": None, "since": None}


def test_a_deactivated_person_is_not_entitled(acme: Company, plan: Plan) -> None:
    ada, bob = acme.person("ada@acme.example"), acme.person("bob@acme.example")
    lic = acme.license(plan)
    acme.give(lic, ada, bob)
    with session_scope(acme.engine) as session:
        assert set_employee_active(session, actor=acme.owner, employee_id=ada.id, active=False) == 1
        # Even a seat left open by some path other than the service grants nothing to an inactive person.
        session.execute(sa.update(Employee).where(Employee.id == bob.id).values(active=False))
    for email in ("ada@acme.example", "bob@acme.example"):
        answer = acme.ask(plan, email)
        assert not answer.entitled and answer.holder is None and answer.license is None


@pytest.mark.parametrize("email", ["nobody@acme.example", "not an email", "", "   ", "@", "ünïcode@exämple.com",
                                   "x" * 300 + "@acme.example", "a@b@c"])
def test_an_unknown_or_malformed_email_is_simply_not_entitled(acme: Company, plan: Plan, email: str) -> None:
    acme.give(acme.license(plan), acme.person("ada@acme.example"))
    answer = acme.ask(plan, email)
    assert answer.entitled is False and answer.holder is None


def test_an_unknown_product_is_an_error_naming_the_codes(acme: Company, plan: Plan) -> None:
    with session_scope(acme.engine, write=False) as session, pytest.raises(entitlements.UnknownProduct) as caught:
        entitlements.check(session, account_id=acme.account_id, product_code="nope", email="ada@acme.example")
    assert caught.value.message == f"There is no product with the code 'nope'. The codes are: {product(acme.engine, plan)}."


def test_a_single_check_is_one_statement_whatever_the_answer(acme: Company, plan: Plan) -> None:
    acme.give(acme.license(plan), acme.person("ada@acme.example"))
    code = product(acme.engine, plan)
    for email, entitled in (("ada@acme.example", True), ("nobody@acme.example", False), ("junk", False)):
        with session_scope(acme.engine, write=False) as session, statements(acme.engine) as seen:
            answer = entitlements.check(session, account_id=acme.account_id, product_code=code, email=email)
        assert answer.entitled is entitled and len(seen) == 1, (email, seen)
    with session_scope(acme.engine, write=False) as session, pytest.raises(entitlements.UnknownProduct):
        entitlements.check(session, account_id=acme.account_id, product_code="nope", email="junk")


def test_a_seat_of_another_product_does_not_entitle(acme: Company, plan: Plan, engine: sa.Engine) -> None:
    with session_scope(engine) as session:
        other_plan = make_plan(session)
    ada = acme.person("ada@acme.example")
    acme.give(acme.license(other_plan), ada)
    assert acme.ask(plan, "ada@acme.example").entitled is False
    assert acme.ask(other_plan, "ada@acme.example").entitled is True


def test_a_child_account_is_entitled_by_its_contact_email(acme: Company, plan: Plan) -> None:
    with session_scope(acme.engine) as session:
        child = make_child_account(session, session.get(Account, acme.account_id))
    acme.give(acme.license(plan), Holder(kind="child", id=child.id))
    answer = acme.ask(plan, child.contact_email.upper())
    assert answer.entitled and answer.holder.model_dump() == {"kind": "child_account", "name": child.name}


def test_an_entitling_license_and_an_employee_come_first_when_an_email_holds_several_seats(
        acme: Company, plan: Plan) -> None:
    ada = acme.person("ada@acme.example")
    suspended, active = acme.license(plan, reference="Old"), acme.license(plan, reference="New")
    acme.give(suspended, ada, at=NOW)
    acme.give(active, ada, at=NOW + timedelta(days=1))
    set_status(acme.engine, suspended, "suspended")
    answer = acme.ask(plan, "ada@acme.example")
    assert answer.entitled and answer.license.reference == "New" and answer.since == NOW + timedelta(days=1)


def test_nothing_of_another_account_is_ever_answered(engine: sa.Engine, plan: Plan) -> None:
    acme, rival = new_company(engine), new_company(engine)
    # The same email in both accounts, a seat only in the rival's; and a person only the rival has.
    acme.person("ada@shared.example")
    rival_ada, rival_bob = rival.person("ada@shared.example"), rival.person("bob@rival.example")
    rival.give(rival.license(plan), rival_ada, rival_bob)
    with session_scope(engine) as session:
        rival_child = make_child_account(session, session.get(Account, rival.account_id))
    rival.give(rival.license(plan), Holder(kind="child", id=rival_child.id))
    code = product(engine, plan)
    emails = ["ada@shared.example", "bob@rival.example", rival_child.contact_email]
    for email in emails:
        assert acme.ask(plan, email).entitled is False and acme.ask(plan, email).holder is None
        assert rival.ask(plan, email).entitled is True
    with session_scope(engine, write=False) as session:
        batch = entitlements.check_many(session, account_id=acme.account_id, product_code=code, emails=emails)
        page = entitlements.holders(session, account_id=acme.account_id, product_code=code)
    assert [r.entitled for r in batch.results] == [False, False, False] and page.holders == []
    # Last use can only be written for the caller's own seats.
    with session_scope(engine) as session:
        rival_seats = list(session.exec(sa.select(SeatAssignment.id)
                                        .where(SeatAssignment.account_id == rival.account_id)).scalars())
        assert entitlements.record_use(session, account_id=acme.account_id, seat_ids=rival_seats, now=NOW) == 0


def test_a_move_takes_the_entitlement_from_the_old_holder_to_the_new_at_the_same_instant(acme: Company,
                                                                                        plan: Plan) -> None:
    ada, bob = acme.person("ada@acme.example"), acme.person("bob@acme.example")
    (seat,) = acme.give(acme.license(plan), ada, at=NOW)
    moved_at = NOW + timedelta(days=3)

    def both() -> tuple[bool, bool]:
        return acme.ask(plan, "ada@acme.example").entitled, acme.ask(plan, "bob@acme.example").entitled

    with session_scope(acme.engine) as session:
        seats.move(session, actor=acme.owner, assignment_id=seat, to=Holder(kind="employee", id=bob.id), now=moved_at)
        session.flush()
        assert both() == (True, False)  # others see the move only once it is committed
    assert both() == (False, True)
    assert acme.ask(plan, "bob@acme.example").since == moved_at


def test_a_batch_of_1000_emails_is_answered_in_order_in_one_statement(acme: Company, plan: Plan) -> None:
    with session_scope(acme.engine) as session:
        people = [Employee(account_id=acme.account_id, name=f"Person {i}", email=f"p{i}@acme.example")
                  for i in range(600)]
        session.add_all(people)
        session.flush()
        holders = [Holder(kind="employee", id=p.id) for p in people[:500]]
    lic = acme.license(plan, quantity=500)
    acme.give(lic, *holders)
    emails = [f"P{i}@acme.example" for i in range(990)] + ["junk", "", "p1@acme.example"] + [
        f"stranger{i}@x.example" for i in range(7)]
    code = product(acme.engine, plan)
    with session_scope(acme.engine, write=False) as session, statements(acme.engine) as seen:
        batch = entitlements.check_many(session, account_id=acme.account_id, product_code=code, emails=emails)
    assert len(seen) == 1, seen  # the product and every seat of every email at once
    assert [r.email for r in batch.results] == emails
    assert [r.entitled for r in batch.results] == [i < 500 for i in range(990)] + [False, False, True] + [False] * 7
    with session_scope(acme.engine, write=False) as session, pytest.raises(entitlements.DomainError,
                                                                            match="at most 1,000"):
        entitlements.check_many(session, account_id=acme.account_id, product_code=code, emails=emails + ["one more"])


def test_holders_are_paged_by_keyset_without_repeats_or_misses(acme: Company, plan: Plan) -> None:
    people = [acme.person(f"p{i:02}@acme.example") for i in range(23)]
    lic = acme.license(plan, quantity=30)
    seat_ids = acme.give(lic, *people[:20])
    with session_scope(acme.engine) as session:
        child = make_child_account(session, session.get(Account, acme.account_id))
    acme.give(lic, Holder(kind="child", id=child.id))
    code = product(acme.engine, plan)

    def page(cursor: str | None) -> entitlements.HoldersPage:
        with session_scope(acme.engine, write=False) as session:
            return entitlements.holders(session, account_id=acme.account_id, product_code=code, cursor=cursor,
                                        limit=6)

    first = page(None)
    assert len(first.holders) == 6 and first.next_cursor
    # Between pages: a seat already listed is freed, and someone new gets one: they come on a later page.
    with session_scope(acme.engine) as session:
        seats.unassign(session, actor=acme.owner, assignment_id=seat_ids[0])
    acme.give(lic, people[20])
    seen, cursor = [h.email for h in first.holders], first.next_cursor
    while cursor:
        following = page(cursor)
        seen += [h.email for h in following.holders]
        cursor = following.next_cursor
    expected = [f"p{i:02}@acme.example" for i in range(21)] + [child.contact_email]
    assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen))
    assert seen.index(child.contact_email) < seen.index("p20@acme.example")  # in the order the seats were given


@pytest.mark.parametrize("cursor", ["garbage!", "czEyYWI", "eDE", "=="])
def test_a_cursor_the_api_did_not_give_is_refused(acme: Company, plan: Plan, cursor: str) -> None:
    with session_scope(acme.engine, write=False) as session, pytest.raises(entitlements.InvalidCursor):
        entitlements.holders(session, account_id=acme.account_id, product_code=product(acme.engine, plan),
                             cursor=cursor)


def test_holders_leave_out_suspended_licenses_and_deactivated_people(acme: Company, plan: Plan) -> None:
    ada, bob, cy = (acme.person(f"{n}@acme.example") for n in ("ada", "bob", "cy"))
    good, bad = acme.license(plan), acme.license(plan)
    acme.give(good, ada, bob)
    acme.give(bad, cy)
    set_status(acme.engine, bad, "suspended")
    with session_scope(acme.engine) as session:
        session.execute(sa.update(Employee).where(Employee.id == bob.id).values(active=False))
        page = entitlements.holders(session, account_id=acme.account_id, product_code=product(acme.engine, plan))
    assert [(h.email, h.holder.kind, h.license.status) for h in page.holders] == [
        ("ada@acme.example", "employee", "active")]
    assert page.next_cursor is None


def test_last_use_is_written_at_most_once_an_hour_per_seat(acme: Company, plan: Plan) -> None:
    ada, bob = acme.person("ada@acme.example"), acme.person("bob@acme.example")
    lic = acme.license(plan)
    (ada_seat,) = acme.give(lic, ada)
    acme.give(lic, bob)

    def use(email: str, at) -> int:  # noqa: ANN001
        answer = acme.ask(plan, email)
        with session_scope(acme.engine) as session:
            return entitlements.record_use(session, account_id=acme.account_id,
                                           seat_ids=entitlements.uses_to_record([answer], at), now=at)

    def last_used() -> object:
        with session_scope(acme.engine, write=False) as session:
            return session.get(SeatAssignment, ada_seat).last_used_at

    assert use("ada@acme.example", NOW) == 1 and last_used() == NOW
    assert use("ada@acme.example", NOW + timedelta(minutes=59)) == 0 and last_used() == NOW
    # Even a caller that read a stale stamp (another worker wrote meanwhile) does not write again.
    with session_scope(acme.engine) as session:
        assert entitlements.record_use(session, account_id=acme.account_id, seat_ids=[ada_seat],
                                       now=NOW + timedelta(minutes=30)) == 0
    assert use("ada@acme.example", NOW + timedelta(minutes=61)) == 1 and last_used() == NOW + timedelta(minutes=61)
    assert use("nobody@acme.example", NOW) == 0


def test_answers_that_do_not_entitle_record_no_use(acme: Company, plan: Plan) -> None:
    ada = acme.person("ada@acme.example")
    lic = acme.license(plan)
    acme.give(lic, ada)
    set_status(acme.engine, lic, "suspended")
    assert entitlements.uses_to_record([acme.ask(plan, "ada@acme.example")], NOW) == []


def test_answers_built_without_validation_are_the_models_own(acme: Company, plan: Plan) -> None:
    acme.give(acme.license(plan), acme.person("ada@acme.example", "Ada Lovelace"))
    code = product(acme.engine, plan)
    with session_scope(acme.engine, write=False) as session:
        batch = entitlements.check_many(session, account_id=acme.account_id, product_code=code,
                                        emails=["ada@acme.example", "nobody@acme.example"])
    for answer in batch.results:
        again = entitlements.EmailEntitlement.model_validate(answer.model_dump())
        assert again.model_dump_json() == answer.model_dump_json()
        assert again.model_fields_set == answer.model_fields_set and answer.model_extra is None
    ada, nobody = batch.results
    assert ada._seat is not None and ada._seat.last_used_at is None and nobody._seat is None
    assert isinstance(ada.holder, entitlements.HolderRef) and ada.holder.name == "Ada Lovelace"
    assert ada.model_copy(update={"email": "x"}).email == "x"
