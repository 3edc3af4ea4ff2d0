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


@pytest.fixture
def crowd(engine: sa.Engine):  # noqa: ANN201
    """An account of 23 employees and 3 child accounts whose sort values tie (same name in another case, same
    department), so the pages must break ties by kind and id; and another account with the same names."""
    from cf_portal.models import ChildAccount

    with session_scope(engine) as session:
        account, _ = make_account(session)
        other, _ = make_account(session)
        for i in range(23):
            name = ("Sam Lee", "sam lee", "Ann Ray", "Zed")[i % 4]
            make_employee(session, account, name=name, email=f"p{i:02}@x.example", department=("Ops", "ops", "")[i % 3])
            make_employee(session, other, name=name, email=f"p{i:02}@x.example")
        for name in ("Sam Lee", "Ann Ray", "Child"):
            session.add(ChildAccount(account_id=account.id, name=name, contact_email=f"{name[:3].lower()}@x.example"))
        account_id = account.id
    return engine, account_id


def _read(engine: sa.Engine, account_id: int, **query) -> employees.HolderPage:  # noqa: ANN003
    with session_scope(engine, write=False) as session:
        return employees.search_holders(session, account_id=account_id, query=GridQuery(**{"page_size": 10, **query}))


@pytest.mark.parametrize("sort", ["name", "email", "department"])
@pytest.mark.parametrize("descending", [False, True])
def test_next_and_previous_walk_the_same_pages_as_one_long_list(crowd, sort: str, descending: bool) -> None:  # noqa: ANN001
    engine, account_id = crowd
    order = dict(sort=sort, descending=descending)
    everyone = [r.key for r in _read(engine, account_id, **order, page_size=100).rows]
    assert len(everyone) == 26 and len(set(everyone)) == 26
    pages = [_read(engine, account_id, **order)]
    while pages[-1].has_next:
        pages.append(_read(engine, account_id, **order, after=pages[-1].last))
    assert [len(p.rows) for p in pages] == [10, 10, 6]
    assert [r.key for p in pages for r in p.rows] == everyone
    assert [p.at_start for p in pages] == [True, False, False] and pages[0].total == 26
    back = _read(engine, account_id, **order, before=pages[2].first)
    assert [r.key for r in back.rows] == [r.key for r in pages[1].rows] and back.has_next and not back.at_start
    back = _read(engine, account_id, **order, before=back.first)
    assert [r.key for r in back.rows] == [r.key for r in pages[0].rows] and back.at_start
    again = _read(engine, account_id, **order, at=pages[1].first)  # the same page, after a change
    assert [r.key for r in again.rows] == [r.key for r in pages[1].rows]


@pytest.mark.parametrize("cap", [100, 20])  # the page read after the search index (few matches), or along the order
@pytest.mark.parametrize("sort", ["name", "email"])
def test_a_search_pages_as_the_same_list_whether_its_matches_are_few_or_many(
        crowd, monkeypatch: pytest.MonkeyPatch, cap: int, sort: str) -> None:  # noqa: ANN001
    engine, account_id = crowd
    everyone = [r.key for r in _read(engine, account_id, sort=sort, page_size=100).rows]
    monkeypatch.setattr(employees, "COUNT_CAP", cap)
    order = dict(sort=sort, search="x.example")  # every holder of the account
    pages = [_read(engine, account_id, **order)]
    while pages[-1].has_next:
        pages.append(_read(engine, account_id, **order, after=pages[-1].last))
    assert [r.key for p in pages for r in p.rows] == everyone and pages[0].total_capped == (cap < 26)
    back = _read(engine, account_id, **order, before=pages[2].first)
    assert [r.key for r in back.rows] == [r.key for r in pages[1].rows]


def test_previous_with_fewer_rows_before_than_a_page_gives_the_first_page(crowd) -> None:  # noqa: ANN001
    engine, account_id = crowd
    first = _read(engine, account_id)
    fifth = first.rows[4]
    page = _read(engine, account_id, before=employees.Cursor(key=fifth.name.lower(), kind=fifth.kind, id=fifth.id))
    assert page.at_start and [r.key for r in page.rows] == [r.key for r in first.rows]


def test_the_count_is_exact_up_to_the_cap(crowd, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    engine, account_id = crowd
    assert (_read(engine, account_id).total, _read(engine, account_id).total_capped) == (26, False)
    monkeypatch.setattr(employees, "COUNT_CAP", 26)
    assert (_read(engine, account_id).total, _read(engine, account_id).total_capped) == (26, False)
    monkeypatch.setattr(employees, "COUNT_CAP", 25)
    page = _read(engine, account_id)
    assert (page.total, page.total_capped, len(page.rows), page.has_next) == (26, True, 10, True)


def test_search_through_the_index_follows_every_change(crowd) -> None:  # noqa: ANN001
    from cf_portal.models import Employee

    engine, account_id = crowd

    def found(text: str) -> list[str]:
        return [r.email for r in _read(engine, account_id, search=text, show_inactive=True, page_size=100).rows]

    assert len(found("sam lee")) == 6 + 6 + 1 and found("SAM L") == found("sam lee")  # either case, and the child
    with session_scope(engine) as session:
        employee = session.exec(sa.select(Employee).where(Employee.account_id == account_id,
                                                          Employee.email == "p00@x.example")).scalar_one()
        employee.name, employee.email = "Quentin Blake", "quentin@x.example"
    assert found("quentin") == ["quentin@x.example"] and found("lake") == ["quentin@x.example"]
    assert "p00@x.example" not in found("x.example") and "quentin@x.example" in found("x.example")
    with session_scope(engine) as session:
        session.execute(sa.delete(Employee).where(Employee.email == "quentin@x.example"))
    assert found("quentin") == [] and found("qu") == []


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
