"""The shared field components link each field to its hint and its message (aria-describedby), for every page."""

from __future__ import annotations

import reflex as rx

from cf_portal.components.forms import labelled, labelled_group


def described_by(component: rx.Component) -> str | None:
    return component.custom_attrs.get("aria-describedby")


def test_a_field_is_described_by_its_hint_and_its_message() -> None:
    plain = rx.input(id="name")
    labelled("Name", plain, field_id="name", hint="Shown on invoices.", error=rx.Var.create(""))
    assert described_by(plain) == "name-hint name-error"

    with_status = rx.input(id="coupon", aria_describedby="coupon-status")
    labelled("Coupon", with_status, field_id="coupon", hint="Optional.")
    assert described_by(with_status) == "coupon-status coupon-hint"  # what the page said first, nothing twice

    bare = rx.input(id="search")
    labelled("Search", bare, field_id="search")
    assert described_by(bare) is None


def test_only_the_labelled_control_is_described() -> None:
    wrapper = rx.box(rx.input(id="inner"), id="outer")
    labelled("Inner", wrapper, field_id="inner", hint="A hint.")
    assert described_by(wrapper) is None


def test_a_group_is_described_by_its_hint_and_its_message() -> None:
    group = labelled_group("Payment method", rx.text("cards"), group_id="payment", hint="Charged now.",
                           error=rx.Var.create(""))
    rendered = str(group.render())
    assert '"aria-describedby":"payment-hint payment-error"' in rendered
    assert 'id:"payment-hint"' in rendered and "legend" in rendered.lower()
    assert described_by(labelled_group("Answer", rx.text("yes"), group_id="answer")) is None
