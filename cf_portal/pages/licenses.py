"""The Licenses page: what the account bought and how much of it is in use."""

from __future__ import annotations

import reflex as rx

from cf_portal import help_content, routes
from cf_portal.components.charts import seat_use_chart
from cf_portal.components.common import empty_state, loading_rows, status_badge
from cf_portal.components.history import history_list
from cf_portal.components.idle_seats import idle_seats_panel
from cf_portal.components.shell import page_shell
from cf_portal.components.tables import responsive_table
from cf_portal.services.licenses import LicenseRow
from cf_portal.state.licenses import LicensesState


def add_license_button() -> rx.Component:
    # A link that looks like a button (no button nested in a link: one control, one role).
    return rx.cond(
        LicensesState.can_buy,
        rx.button(
            rx.link(rx.icon("plus", aria_hidden="true"), "Add License", href=routes.ADD_LICENSE, underline="none"),
            as_child=True,
            size="3",
        ),
    )


def seats_text(row: LicenseRow) -> rx.Component:
    return rx.text(f"{row.assigned} of {row.quantity} assigned", size="2")


def license_table_row(row: LicenseRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(row.reference_name, weight="medium")),
        rx.table.cell(row.product),
        rx.table.cell(row.plan),
        rx.table.cell(row.quantity, text_align="right"),
        rx.table.cell(rx.vstack(seats_text(row), rx.text(f"{row.available} available", size="1", color_scheme="gray"),
                                spacing="0")),
        rx.table.cell(monthly_cost(row), text_align="right"),
        rx.table.cell(status_badge(row.status)),
        rx.table.cell(row_actions(row)),
    )


def monthly_cost(row: LicenseRow) -> rx.Component:
    return rx.vstack(
        rx.text(row.monthly_cost_display, size="2"),
        rx.cond(row.discount_ends != "", rx.text(row.discount_ends, size="1", color_scheme="gray")),
        spacing="0", align="end",
    )


def row_actions(row: LicenseRow) -> rx.Component:
    return rx.hstack(
        rx.button(rx.link("Manage", href=f"{routes.MANAGE_LICENSE}?id={row.id}", underline="none"), as_child=True,
                  size="2", aria_label=f"Manage {row.reference_name}"),
        rx.cond(LicensesState.can_manage_seats,
                rx.button(rx.link("Assign", href=routes.EMPLOYEES, underline="none"), as_child=True, size="2",
                          variant="soft", aria_label=f"Assign {row.reference_name} in Employees")),
        rx.button("History", size="2", variant="soft", color_scheme="gray",
                  on_click=LicensesState.open_history(row.id, row.reference_name),
                  aria_label=f"History of {row.reference_name}"),
        spacing="2", wrap="wrap",
    )


def history_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(rx.text("History of ", LicensesState.history_title)),
            rx.dialog.description("Every seat assignment of this license, newest first."),
            rx.box(history_list(LicensesState.history), margin_top="12px"),
            rx.hstack(rx.dialog.close(rx.button("Close", variant="soft", color_scheme="gray", size="3")),
                      justify="end", margin_top="16px"),
            max_width="600px",
        ),
        open=LicensesState.history_open, on_open_change=LicensesState.set_history_open,
    )


def license_card(row: LicenseRow) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(rx.text(row.reference_name, weight="bold"), status_badge(row.status), justify="between",
                      width="100%"),
            rx.text(f"{row.product} · {row.plan}", size="2", color_scheme="gray"),
            rx.hstack(seats_text(row), rx.text(f"{row.monthly_cost_display} / month", size="2"),
                      justify="between", width="100%"),
            rx.cond(row.discount_ends != "", rx.text(row.discount_ends, size="1", color_scheme="gray")),
            row_actions(row),
            spacing="1",
            width="100%",
        ),
        width="100%",
    )


def licenses_table() -> rx.Component:
    return responsive_table(
        "Licenses",
        [
            rx.table.column_header_cell("Reference name"),
            rx.table.column_header_cell("Product"),
            rx.table.column_header_cell("Plan"),
            rx.table.column_header_cell("Licenses", text_align="right"),
            rx.table.column_header_cell("Assigned / available"),
            rx.table.column_header_cell("Monthly cost", text_align="right"),
            rx.table.column_header_cell("Status"),
            rx.table.column_header_cell(rx.el.span("Actions", class_name="visually-hidden")),
        ],
        LicensesState.licenses, license_table_row, license_card,
    )


def seat_chart() -> rx.Component:
    return rx.cond(
        LicensesState.seat_use.length() > 0,
        rx.card(seat_use_chart(LicensesState.seat_use, LicensesState.seat_chart_height), width="100%"),
        rx.text("No license in use: cancelled licenses have no seats to chart.", color_scheme="gray"),
    )


def created_banner() -> rx.Component:
    created = LicensesState.created_license
    return rx.cond(
        created,
        rx.callout.root(
            rx.callout.icon(rx.icon("circle-check", aria_hidden="true")),
            rx.callout.text(
                rx.text.strong(created.reference_name), " is ready: ",
                created.assigned.to_string(), " of ", created.quantity.to_string(), " assigned. ",
                rx.link("Assign licenses in Employees", href=routes.EMPLOYEES, underline="always",
                        high_contrast=True), " · ",
                rx.el.button("Dismiss", on_click=LicensesState.dismiss_created, class_name="link-button inherit",
                             type="button"),
            ),
            color_scheme="green",
            high_contrast=True,
            role="status",
            width="100%",
            margin_bottom="16px",
        ),
    )


def past_due_banner() -> rx.Component:
    return rx.cond(
        (LicensesState.past_due_count > 0) | (LicensesState.suspended_count > 0),
        rx.callout(
            rx.text(
                "A renewal payment failed: ",
                rx.cond(LicensesState.past_due_count > 0,
                        rx.fragment(LicensesState.past_due_count, " license(s) past due")),
                rx.cond((LicensesState.past_due_count > 0) & (LicensesState.suspended_count > 0), " and ", ""),
                rx.cond(LicensesState.suspended_count > 0,
                        rx.fragment(LicensesState.suspended_count, " suspended (their seats grant nothing)")),
                ". ",
                rx.cond(LicensesState.can_manage_payment_methods,
                        "Open the license with Manage to change its card or pay now",
                        "Ask an owner or billing admin to change the card or pay now"),
                ".",
            ),
            icon="triangle-alert", color_scheme="amber", high_contrast=True, role="alert", width="100%",
            margin_bottom="16px",
        ),
    )


def licenses_page() -> rx.Component:
    return page_shell(
        past_due_banner(),
        created_banner(),
        rx.hstack(
            rx.text(
                "Buy licenses here, then assign them to employees or child accounts in Employees.",
                color_scheme="gray",
            ),
            add_license_button(),
            justify="between",
            align="center",
            wrap="wrap",
            spacing="3",
            width="100%",
            margin_bottom="20px",
        ),
        rx.cond(
            LicensesState.loaded,
            rx.cond(
                LicensesState.has_licenses,
                rx.vstack(licenses_table(), seat_chart(), spacing="5", width="100%"),
                empty_state(
                    "key-round",
                    "No licenses yet",
                    "Add a license to start giving your team access to ChatFortress products. "
                    "All licenses are billed monthly.",
                    add_license_button(),
                ),
            ),
            loading_rows(),
        ),
        idle_seats_panel(),
        history_dialog(),
        title="Licenses",
        help_topic=help_content.LICENSES,
    )
