"""The Employees grid's handlers: paging, filters, selection and seat actions, without a browser."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import reflex as rx
from sqlmodel import select

from cf_portal import db
from cf_portal.models import Plan, SeatAssignment
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services.payment_methods import add_payment_method
from cf_portal.services.purchase import PurchaseRequest, create_license
from cf_portal.state.employees import AssignState, EmployeesState, PersonFormState
from tests.state.conftest import substate
from tests.support.events import run_now


def loaded(root: rx.State) -> EmployeesState:
    state = substate(root, EmployeesState)
    run_now(state, "load")
    return state


def buy(state: EmployeesState, quantity: int) -> int:
    provider = SandboxProvider()
    with db.session_scope(write=False) as session:
        actor = state._actor(session)
        plan = session.exec(select(Plan).where(Plan.code == "awareness-starter")).one()
    card = add_payment_method(None, provider, actor=actor, number="4242424242424242", expiry="12/34", cvc="123",
                              today=datetime.now(UTC).date())
    return create_license(None, provider, actor=actor, now=datetime.now(UTC), request=PurchaseRequest(
        reference_name="Starter pack", plan_id=plan.id, quantity=quantity, payment_method_id=card.id,
        expected_total=plan.unit_amount * quantity, idempotency_key=uuid.uuid4().hex)).license_id


def test_the_browser_holds_one_page_and_deltas_stay_small(root_state: rx.State) -> None:
    state = loaded(root_state)
    assert (state.total, len(state.rows), state.has_next, state.page_text) == (27, 25, True, "Page 1 of 2")
    first_page = [row.key for row in state.rows]
    root_state.get_delta()
    root_state._clean()
    run_now(state, "next_page")
    delta = root_state.get_delta()
    text = json.dumps(delta, default=str)
    assert [row.name for row in state.rows] == sorted([r.name for r in state.rows], key=str.lower)
    assert len(state.rows) == 2 and state.range_text == "26–27 of 27" and state.page_text == "Page 2 of 2"
    assert not state.has_next and not set(first_page) & {row.key for row in state.rows}
    assert len(text) < 4000, f"paging sent {len(text)} bytes"
    assert "department_options" not in text  # unchanged vars are not re-sent
    assert "sort_key" not in text and "page_start" not in text  # where the page starts stays on the server
    run_now(state, "next_page")  # the last page: nothing happens
    assert state.page == 2
    run_now(state, "previous_page")
    assert [row.key for row in state.rows] == first_page and state.page_text == "Page 1 of 2"
    assert state.range_text == "1–25 of 27"


def test_past_the_count_cap_the_grid_says_so(root_state: rx.State, monkeypatch) -> None:  # noqa: ANN001
    from cf_portal.services import employees

    monkeypatch.setattr(employees, "COUNT_CAP", 20)
    state = loaded(root_state)
    assert (state.range_text, state.page_text, state.has_next) == ("1–25 of 20+ people", "Page 1", True)
    run_now(state, "next_page")
    assert (state.range_text, state.page_text, state.has_next) == ("26–27 of 20+ people", "Page 2", False)


def test_search_filter_and_sort_happen_in_the_database(root_state: rx.State) -> None:
    state = loaded(root_state)
    run_now(state, "set_search", "PATEL")
    assert [r.name for r in state.rows] == ["Liam Patel"]
    run_now(state, "set_search", "")
    run_now(state, "set_department", "Child account")
    assert {r.kind for r in state.rows} == {"child"} and state.total == 2
    run_now(state, "set_department", "Finance")
    assert [r.name for r in state.rows] == ["Grace O'Neill", "Henry Walker", "Isabella Davies", "Samuel Okafor"]
    run_now(state, "sort_by", "name")  # the sorted column again: descending
    assert [r.name for r in state.rows] == ["Samuel Okafor", "Isabella Davies", "Henry Walker", "Grace O'Neill"]
    run_now(state, "sort_by", "email")
    assert [r.email for r in state.rows] == sorted(r.email for r in state.rows)


def test_assign_more_than_available_assigns_nobody_and_offers_to_buy(root_state: rx.State) -> None:
    state = loaded(root_state)
    license_id = buy(state, 2)
    run_now(state, "load")
    state.select_page(True)
    assert state.selected_count == 25
    assign = substate(root_state, AssignState)
    assign.open_for(state.selected)
    assert assign.license_id == str(license_id)
    assign.assign()
    assert "23 more are needed" in assign.error
    assert assign.buy_more_url.endswith(f"?plan={assign.buy_more_plan_id}") and assign.buy_more_plan_id > 0
    with db.session_scope(write=False) as session:
        assert session.exec(select(SeatAssignment)).all() == []


def test_assign_then_unassign_updates_the_grid(root_state: rx.State) -> None:
    state = loaded(root_state)
    buy(state, 3)
    run_now(state, "load")
    target = state.rows[0]
    assign = substate(root_state, AssignState)
    assign.open_for([target.key])
    assign.assign()
    assert assign.error == "" and assign.is_open is False
    assert [s.label for s in state.rows[0].seats] == ["Security Awareness Training · Starter pack"]
    assert state.licenses[0].available == 2
    state.open_details(target.key)
    seat = state.details.seats[0]
    state.ask_unassign(seat.assignment_id, seat.label)
    assert target.name in state.unassign_text
    state.unassign()
    assert state.rows[0].seats == [] and state.licenses[0].available == 3
    assert [e.is_open for e in state.history] == [False]


def test_a_handler_ignores_ids_of_another_account(root_state: rx.State) -> None:
    state = loaded(root_state)
    state.ask_unassign(987_654, "Someone else's seat")
    state.unassign()
    assign = substate(root_state, AssignState)
    assign.open_for(["employee:987654"])
    assign.assign()
    assert assign.error  # refused, nothing written
    with db.session_scope(write=False) as session:
        assert session.exec(select(SeatAssignment)).all() == []


def test_add_employee_validates_next_to_the_fields(root_state: rx.State) -> None:
    state = loaded(root_state)
    form = substate(root_state, PersonFormState)
    form.open_for("employee")
    form.set_name("  ")
    form.set_email("nobody")
    form.save()
    assert form.name_error and form.is_open is True
    form.set_name("<script>alert(1)</script> Dana")
    form.save()
    assert form.email_error
    form.set_email("ava.thompson@acme-security.example")
    form.save()
    assert "already exists" in form.email_error
    form.set_email("Dana@Example.com")
    form.save()
    assert form.is_open is False and state.total == 28
