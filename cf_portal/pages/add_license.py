"""The Add License screen, in the order of the customers' help article:
name, product and plan, number of licenses, coupon code, payment, Create."""

from __future__ import annotations

import reflex as rx

from cf_portal import help_content, routes
from cf_portal.components.cards import card_dialog
from cf_portal.components.forms import field_error, labelled, labelled_group, native_select
from cf_portal.components.shell import page_shell
from cf_portal.components.stripe_setup import stripe_payment_action
from cf_portal.services.payment_methods import PaymentMethodView
from cf_portal.state.add_license import AddLicenseCardsState
from cf_portal.state.add_license import AddLicenseState as S


def section(number: int, title: str, *children: rx.Component) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(f"{number}. {title}", as_="h2", size="4"),
            *children,
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def name_section() -> rx.Component:
    return section(
        1, "Name",
        labelled(
            "License name",
            rx.input(
                id="reference_name", name="reference_name", value=S.reference_name, on_change=S.set_reference_name,
                on_blur=S.check_reference_name, max_length=200, size="3", auto_complete="off",
                placeholder="e.g. Sales team", aria_invalid=rx.cond(S.name_error != "", "true", "false"),
            ),
            field_id="reference_name",
            error=S.name_error,
            hint=help_content.REFERENCE_NAME_HINT,
        ),
    )


def product_section() -> rx.Component:
    return section(
        2, "Product and plan",
        labelled(
            "Product",
            native_select(
                rx.foreach(S.products, lambda p: rx.el.option(p.name, value=p.id.to_string())),
                field_id="product", value=S.product_id, on_change=S.set_product,
            ),
            field_id="product",
        ),
        labelled(
            "Plan",
            native_select(
                rx.foreach(S.plans, lambda p: rx.el.option(p.label, value=p.id.to_string())),
                field_id="plan", value=S.plan_id, on_change=S.set_plan,
                invalid=rx.cond(S.plan_error != "", "true", "false"),
            ),
            field_id="plan",
            error=S.plan_error,
        ),
    )


def quantity_section() -> rx.Component:
    return section(
        3, "Number of licenses",
        labelled(
            "Number of licenses",
            rx.input(
                id="quantity", name="quantity", value=S.quantity, on_change=S.set_quantity,
                input_mode="numeric", size="3", auto_complete="off", width="160px",
                # The total follows every keystroke (one cheap round trip each), not after a pause.
                debounce_timeout=0,
                aria_invalid=rx.cond(S.quantity_error != "", "true", "false"),
                aria_describedby="quantity-hint quantity-error",
            ),
            field_id="quantity",
            error=S.quantity_error,
            hint=["Price of each license: ", rx.text.strong(S.panel.unit_price), " per month"],
        ),
    )


def price_row(label: list, value: rx.Var | str, **props) -> rx.Component:  # noqa: ANN003
    return rx.el.div(rx.text(*label, **props), rx.text(value, **props), class_name="price-row")


def price_panel() -> rx.Component:
    return rx.box(
        rx.vstack(
            price_row([S.panel.unit_price, " × ", S.panel.quantity,
                       rx.cond(S.panel.quantity == 1, " license", " licenses")], S.panel.subtotal),
            rx.cond(
                S.panel.discount != "",
                price_row(["Coupon ", S.panel.discount_note], S.panel.discount, color_scheme="green"),
            ),
            rx.separator(),
            # Screen readers announce the new total ("Total due now $90.00") when the price changes, once
            # they are done speaking (polite); the rest of the panel is read on demand.
            rx.el.div(
                rx.text("Total due now", weight="bold", size="4"),
                rx.text(S.panel.total_display, weight="bold", size="4", id="total-due"),
                class_name="price-row",
                aria_live="polite",
                aria_atomic="true",
            ),
            rx.cond(S.panel.after_discount != "", rx.text(S.panel.after_discount, size="2", color_scheme="gray")),
            rx.text(S.panel.monthly_note, size="2", color_scheme="gray"),
            spacing="2",
            width="100%",
        ),
        aria_label="Price",
        role="region",
        padding="12px",
        border_radius="8px",
        background=rx.color("gray", 2),
        width="100%",
    )


def coupon_section() -> rx.Component:
    status = rx.match(
        S.panel.coupon_status,
        ("valid", rx.text(rx.icon("circle-check", size=14, aria_hidden="true"), "Coupon applied: ",
                          S.panel.coupon_message, id="coupon_code-status", color_scheme="green", size="2",
                          display="flex", align_items="center", gap="4px", role="status")),
        ("invalid", field_error(S.panel.coupon_message, "coupon_code-status")),
        rx.fragment(),
    )
    checking = rx.text(rx.spinner(size="1"), "Checking the coupon with our payment provider…",
                       id="coupon_code-status", color_scheme="gray", size="2", display="flex", align_items="center",
                       gap="6px", role="status")
    return section(
        4, "Coupon code and price",
        labelled(
            "Coupon code",
            rx.input(
                id="coupon_code", name="coupon_code", value=S.coupon_code, on_change=S.set_coupon_code,
                size="3", auto_complete="off", placeholder="Optional", max_length=60,
                aria_invalid=rx.cond(S.panel.coupon_status == "invalid", "true", "false"),
                aria_describedby="coupon_code-status",
            ),
            field_id="coupon_code",
            hint=help_content.COUPON_HINT,
        ),
        rx.cond(S.price_checking, checking, status),
        price_panel(),
    )


def payment_option(pm: PaymentMethodView) -> rx.Component:
    return rx.el.label(
        rx.el.input(
            type="radio", name="payment_method", value=pm.id.to_string(),
            checked=S.payment_method_id == pm.id.to_string(), disabled=pm.expired,
            on_change=S.set_payment_method(pm.id.to_string()),
        ),
        rx.icon("credit-card", size=18, aria_hidden="true"),
        rx.text(pm.label, size="2", flex="1"),
        rx.cond(pm.is_default, rx.badge("Default", variant="soft", high_contrast=True)),
        rx.cond(pm.expired, rx.badge("Expired", color_scheme="red", variant="soft", high_contrast=True)),
        class_name="pm-option",
    )


def payment_section() -> rx.Component:
    return section(
        5, "Payment",
        rx.cond(
            S.has_payment_method,
            labelled_group(
                "Payment method",
                rx.vstack(rx.foreach(S.payment_methods, payment_option), spacing="2", width="100%"),
                group_id="payment", hint=help_content.PAYMENT_HINT, error=S.payment_error,
            ),
            rx.fragment(
                rx.callout(
                    "There is no payment method on your account yet. Add one to create licenses.",
                    icon="credit-card", color_scheme="amber", high_contrast=True,
                ),
                field_error(S.payment_error, "payment-error"),
            ),
        ),
        card_dialog(AddLicenseCardsState),
    )


def not_allowed() -> rx.Component:
    return rx.callout(
        rx.text("Your role (", S.role_label, ") cannot buy licenses. Ask an owner or a billing admin of ",
                S.account_name, " to add them."),
        icon="lock", color_scheme="gray", high_contrast=True, width="100%", max_width="640px",
    )


def add_license_page() -> rx.Component:
    return page_shell(rx.cond(S.allowed, purchase_form(), not_allowed()), title="Add License",
                      help_topic=help_content.ADD_LICENSE)


def purchase_form() -> rx.Component:
    return rx.fragment(
        rx.vstack(
            rx.link(rx.hstack(rx.icon("arrow-left", size=16, aria_hidden="true"), "Back to Licenses", align="center",
                              spacing="1"), href=routes.LICENSES, size="2"),
            rx.text("Licenses are billed monthly. After you create them, assign them to employees or child "
                    "accounts in Employees.", color_scheme="gray"),
            name_section(),
            product_section(),
            quantity_section(),
            coupon_section(),
            payment_section(),
            rx.cond(S.form_error != "", rx.callout(S.form_error, icon="triangle-alert", color_scheme="red", high_contrast=True,
                                                   role="alert", width="100%")),
            rx.cond(S.payment_action_secret != "",
                    rx.callout("Your bank asks you to confirm this payment. Follow the steps in the window that "
                               "opens.", icon="shield-check", color_scheme="blue", high_contrast=True, role="status",
                               width="100%")),
            rx.cond(S.uses_stripe, stripe_payment_action(publishable_key=S.stripe_publishable_key,
                                                         client_secret=S.payment_action_secret,
                                                         on_done=S.payment_action_done)),
            rx.button(
                "Create", size="4", width="100%", loading=S.creating | (S.payment_action_secret != ""),
                disabled=S.creating | S.price_checking | (S.payment_action_secret != ""),
                on_click=S.create,
                type="button",
            ),
            spacing="4",
            width="100%",
            max_width="640px",
        ),
    )
