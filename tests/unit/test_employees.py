"""The Employees grid query and employee changes, against a real database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cf_portal.db import session_scope
from cf_portal.services import employees, seats
from cf_portal.services.actors import actor_for_user
from cf_portal.services.employees import CHILD_DEPARTMENT, GridQuery
from cf_portal.services.errors import DomainError, NotFound
from cf_portal.services.seats import Holder
from tests.factories import make_account, make_child_account, make_employee, make_license, make_plan


@pytest.fixture
def grid(engine: sa.Engine):  # noqa: ANN201
    with session_scope(engine) as session:
        account, user = make_account(session)
        actor = actor_for_user(session, user.id)
        plan_a, plan_b = make_plan(session), make_plan(session)
        lic_a = make_license(session, account, plan_a, quantity=5)
        lic_b = make_license(session, account, plan_b, quantity=5)
        people = {name: make_employee(session, account, name=name, email=f"{name.lower().replace(' ', '.')}@x.example",
                                      department=dept)
                  for name, dept in [("Ann Lee", "Sales"), ("Bo Chen", "Sales"), ("Cy 100% Real", "Ops"),
                                     ("Di_Ng", "Ops"), ("Ed Old", "Ops")]}
        child = make_child_account(session, account)
        other, _ = make_account(session)
        make_employee(session, other, name="Ann Other", email="ann.other@x.example")
        ids = {name: e.id for name, e in people.items()}
        account_id, lic_a_id, lic_b_id, product_a, child_id = account.id, lic_a.id, lic_b.id, plan_a.product_id, child.id
    with session_scope(engine) as session:
        seats.assign(session, actor=actor, license_id=lic_a_id,
                     holders=[Holder(kind="employee", id=ids["Ann Lee"]), Holder(kind="child", id=child_id)])
        seats.assign(session, actor=actor, license_id=lic_b_id, holders=[Holder(kind="employee", id=ids["Bo Chen"])])
        employees.set_employee_active(session, actor=actor, employee_id=ids["Ed Old"], active=False)

    def names(**query) -> list[str]:  # noqa: ANN003
        with session_scope(engine, write=False) as session:
            page = employees.search_holders(session, account_id=account_id, query=GridQuery(**query))
            return [r.name for r in page.rows]

    return names, actor, ids, product_a, engine


def test_everyone_of_the_account_and_only_them(grid) -> None:  # noqa: ANN001
    names, *_ = grid
    [child] = names(department=CHILD_DEPARTMENT)
    assert names() == ["Ann Lee", "Bo Chen", child, "Cy 100% Real", "Di_Ng"]  # sorted by name, any case
    assert "Ann Other" not in names(search="ann")
    assert "Ed Old" not in names() and "Ed Old" in names(show_inactive=True)


def test_filters(grid) -> None:  # noqa: ANN001
    names, _, _, product_a, _ = grid
    assert names(product_id=product_a) == sorted(["Ann Lee", names(department=CHILD_DEPARTMENT)[0]], key=str.lower)
    assert names(without_license=True) == ["Cy 100% Real", "Di_Ng"]
    assert names(department="Sales") == ["Ann Lee", "Bo Chen"]
    assert names(department="Sales", without_license=True) == []


def test_the_holders_of_one_license(grid) -> None:  # noqa: ANN001
    """Manage license links to Employees with ?license=<id>: only the holders of that license's open seats."""
    from sqlmodel import select

    from cf_portal.models import SeatAssignment

    names, _, ids, _, engine = grid
    with session_scope(engine, write=False) as session:
        license_b = session.exec(select(SeatAssignment.license_id)
                                 .where(SeatAssignment.employee_id == ids["Bo Chen"])).one()
    assert names(license_id=license_b) == ["Bo Chen"]
    assert names(license_id=license_b, department="Ops") == []
    assert names(license_id=999_999) == []


def test_search_treats_wildcards_as_text(grid) -> None:  # noqa: ANN001
    names, *_ = grid
    assert names(search="100%") == ["Cy 100% Real"]
    assert names(search="i_n") == ["Di_Ng"]
    assert names(search="%") == ["Cy 100% Real"]
    assert names(search="BO.CHEN@") == ["Bo Chen"]


def test_paging_is_clamped(grid) -> None:  # noqa: ANN001
    _, actor, _, _, engine = grid
    with session_scope(engine, write=False) as session:
        page = employees.search_holders(session, account_id=actor.account_id, query=GridQuery(page=99, page_size=10))
    assert (page.page, page.total, page.page_count, len(page.rows)) == (1, 5, 1, 5)


def test_deactivating_frees_seats_and_history_stays(grid) -> None:  # noqa: ANN001
    names, actor, ids, product_a, engine = grid
    with session_scope(engine) as session:
        freed = employees.set_employee_active(session, actor=actor, employee_id=ids["Ann Lee"], active=False)
    assert freed == 1
    assert "Ann Lee" not in names(product_id=product_a, show_inactive=True)
    with session_scope(engine, write=False) as session:
        history = seats.seat_history(session, account_id=actor.account_id, holder=Holder(kind="employee",
                                                                                          id=ids["Ann Lee"]))
    assert [e.is_open for e in history] == [False]


def test_reactivating_brings_an_employee_back_who_can_then_get_a_seat(grid) -> None:  # noqa: ANN001
    from cf_portal.models import AuditEvent, License

    names, actor, ids, _, engine = grid
    assert "Ed Old" not in names()  # deactivated by the fixture
    with session_scope(engine) as session:
        freed = employees.set_employee_active(session, actor=actor, employee_id=ids["Ed Old"], active=True)
    assert freed == 0
    assert "Ed Old" in names() and "Ed Old" in names(without_license=True)
    with session_scope(engine, write=False) as session:
        audit = session.exec(sa.select(AuditEvent).where(AuditEvent.object_id == ids["Ed Old"])
                             .order_by(AuditEvent.id.desc())).scalars().first()
        assert (audit.action, audit.actor_user_id) == ("employee.reactivated", actor.user_id)
        lic_id = session.exec(sa.select(License.id).where(License.account_id == actor.account_id)
                              .order_by(License.id)).scalars().first()
    with session_scope(engine) as session:  # refused while inactive (test_seats.py); allowed again now
        seats.assign(session, actor=actor, license_id=lic_id, holders=[Holder(kind="employee", id=ids["Ed Old"])])
    assert "Ed Old" not in names(without_license=True)


def test_employee_changes_are_checked(grid) -> None:  # noqa: ANN001
    _, actor, ids, _, engine = grid
    with pytest.raises(DomainError) as info, session_scope(engine) as session:
        employees.save_employee(session, actor=actor, name="New", email="ANN.LEE@x.example", department="")
    assert info.value.field == "email"
    with pytest.raises(DomainError) as info, session_scope(engine) as session:
        employees.save_employee(session, actor=actor, name=" ", email="new@x.example", department="")
    assert info.value.field == "name"
    with session_scope(engine) as session:
        saved = employees.save_employee(session, actor=actor, name="New Person", email="New@X.example",
                                        department="Ops")
        assert saved.email == "new@x.example"
        employees.save_employee(session, actor=actor, name="Ann Lee", email="ann.lee@x.example",
                                department="Marketing", employee_id=ids["Ann Lee"])
    other = make_other_actor(engine)
    for call in (lambda s: employees.save_employee(s, actor=other, name="X", email="x@x.example", department="",
                                                   employee_id=ids["Bo Chen"]),
                 lambda s: employees.set_employee_active(s, actor=other, employee_id=ids["Bo Chen"], active=False)):
        with pytest.raises(NotFound), session_scope(engine) as session:
            call(session)


def make_other_actor(engine: sa.Engine):  # noqa: ANN201
    with session_scope(engine) as session:
        _, user = make_account(session)
        return actor_for_user(session, user.id)
