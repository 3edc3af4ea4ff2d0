"""The Manage license page: one license's price, renewal, scheduled changes, card, invoices and seat history, and
(for owners and billing admins) Add licenses, Remove licenses, Change plan, Cancel and Resume."""

from __future__ import annotations

import reflex as rx

from cf_portal import routes
from cf_portal.components.common import loading_rows, status_badge
from cf_portal.components.dialogs import confirm_dialog
from cf_portal.components.forms import dialog_buttons, field_error, labelled, native_select
from cf_portal.components.history import history_list
from cf_portal.components.shell import page_shell
from cf_portal.components.tables import responsive_table
from cf_portal.services.billing import InvoiceView
from cf_portal.services.license_changes import PlanChoice
from cf_portal.services.payment_methods import PaymentMethodView
from cf_portal.state.manage_license import AddLicensesState, ChangePlanState, RemoveLicensesState
from cf_portal.state.manage_license import ManageLicenseState as S

D = S.detail


def fact(label: str, *value: rx.Component | rx.Var | str) -> rx.Component:
    """One line of the summary: a term and its value (a description list, read in pairs)."""
    return rx.el.div(
        rx.el.dt(label, class_name="fact-term"),
        rx.el.dd(*value, class_name="fact-value"),
        class_name="fact",
    )


def card_section(heading: str, *children: rx.Component) -> rx.Component:
    return rx.card(
        rx.vstack(rx.heading(heading, as_="h2", size="4"), *children, spacing="3", width="100%"),
        width="100%",
    )


def action_button(label: str, on_click: rx.EventHandler, *, busy: str = "", aria_label: str | rx.Var | None = None,
                  variant: str = "soft", color_scheme: str | None = None) -> rx.Component:
    return rx.button(label, size="2", variant=variant, on_click=on_click,
                     loading=S.busy == busy if busy else False, disabled=S.busy != "",
                     **({"color_scheme": color_scheme} if color_scheme else {}),
                     **({"aria_label": aria_label} if aria_label is not None else {}))


# --- what the license is --------------------------------------------------------------------------------------


def payment_problem() -> rx.Component:
    return rx.cond(
        D.payment_problem != "",
        rx.callout.root(
            rx.callout.icon(rx.icon("triangle-alert", aria_hidden="true")),
            rx.callout.text(
                D.payment_problem,
                rx.cond(S.can_change, rx.fragment(" ", rx.button("Pay now", size="2", on_click=S.pay_now,
                                                                 loading=S.busy == "pay", disabled=S.busy != "",
                                                                 margin_left="4px"))),
            ),
            color_scheme="amber", high_contrast=True, role="alert", width="100%",
        ),
    )


def summary() -> rx.Component:
    return card_section(
        "Summary",
        rx.el.dl(
            fact("Product", D.product),
            fact("Plan", D.plan),
            fact("Status", status_badge(D.status)),
            fact("Licenses", D.quantity.to_string()),
            fact("Assigned", D.assigned.to_string(), " assigned · ", D.available.to_string(), " available"),
            fact("Price", D.unit_price, " per license per month"),
            fact("Monthly now", D.monthly_now),
            rx.cond(D.discount != "", fact("Discount", D.discount,
                                           rx.cond(D.discount_ends != "", rx.fragment(" · ", D.discount_ends)))),
            fact("Period", D.period),
            rx.cond(D.renews_on != "", fact("Next renewal", D.renews_on, " · ", D.next_amount)),
            class_name="facts",
        ),
        rx.cond(D.ends_on != "",
                rx.text(rx.text.strong(D.ends_on), rx.cond(D.cancel_at_period_end & S.is_open_license,
                                                           ". Seats keep working until then.", "."), size="2")),
    )


def scheduled_changes() -> rx.Component:
    return rx.cond(
        (D.scheduled_quantity != "") | (D.next_plan != ""),
        card_section(
            "Changes at the next renewal",
            rx.cond(D.scheduled_quantity != "", rx.hstack(
                rx.text("Licenses: ", rx.text.strong(D.scheduled_quantity), size="2"),
                rx.cond(S.can_change, action_button("Withdraw", S.withdraw_decrease, busy="withdraw_decrease",
                                                    aria_label="Withdraw the decrease")),
                align="center", spacing="3", wrap="wrap")),
            rx.cond(D.next_plan != "", rx.hstack(
                rx.text("Plan: ", rx.text.strong(D.next_plan), " from ", D.renews_on, size="2"),
                rx.cond(S.can_change, action_button("Withdraw", S.withdraw_plan_change, busy="withdraw_plan",
                                                    aria_label="Withdraw the plan change")),
                align="center", spacing="3", wrap="wrap")),
        ),
    )


def actions() -> rx.Component:
    """What the member may do now: set to end, only Resume; else the four changes. Read-only roles are told why."""
    return rx.cond(
        S.can_change,
        rx.cond(
            D.cancel_at_period_end,
            rx.hstack(rx.text(D.ends_on, ". Resume the license to change it again.", size="2"),
                      action_button("Resume", S.resume, busy="resume", variant="solid"),
                      align="center", spacing="3", wrap="wrap"),
            rx.flex(
                rx.button(rx.icon("plus", aria_hidden="true"), "Add licenses", size="3",
                          on_click=AddLicensesState.open, disabled=S.busy != ""),
                rx.button("Remove licenses", size="3", variant="soft", on_click=RemoveLicensesState.open,
                          disabled=S.busy != ""),
                rx.button("Change plan", size="3", variant="soft", on_click=ChangePlanState.open,
                          disabled=S.busy != ""),
                rx.button("Cancel license", size="3", variant="soft", color_scheme="red", on_click=S.ask_cancel,
                          disabled=S.busy != ""),
                gap="8px", wrap="wrap", width="100%",
            ),
        ),
        rx.cond(S.is_open_license,
                rx.text("Only owners and billing admins can change or cancel licenses.", size="2",
                        color_scheme="gray")),
    )


def card_option(card: PaymentMethodView) -> rx.Component:
    return rx.el.option(card.label, value=card.id.to_string(), disabled=card.expired)


def billing_card() -> rx.Component:
    return card_section(
        "Payment method",
        rx.text(rx.cond(D.card != "", rx.fragment("Billed to ", rx.text.strong(D.card), "."),
                        "No card is set for this license."), size="2"),
        rx.cond(
            S.can_change & (S.cards.length() > 0),
            rx.flex(
                rx.box(labelled("Card for this license", native_select(
                    rx.fragment(rx.el.option("Choose a card", value="", disabled=True),
                                rx.foreach(S.cards, card_option)),
                    field_id="license_card", value=S.card_choice, on_change=S.set_card_choice,
                    invalid=rx.cond(S.card_error != "", "true", "false"),
                ), field_id="license_card", error=S.card_error), flex="1 1 240px", min_width="0"),
                rx.button("Change card", size="3", on_click=S.change_card, loading=S.busy == "card",
                          disabled=(S.busy != "") | (S.card_choice == D.card_id.to_string())),
                gap="12px", align="end", wrap="wrap", width="100%",
            ),
        ),
    )


# --- invoices and history -------------------------------------------------------------------------------------


def invoice_row(invoice: InvoiceView) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(invoice.number),
        rx.table.cell(rx.moment(invoice.created_at, format="YYYY-MM-DD")),
        rx.table.cell(invoice.description),
        rx.table.cell(invoice.total, text_align="right"),
        rx.table.cell(rx.badge(invoice.status, variant="soft", high_contrast=True, color_scheme="green")),
    )


def invoice_card(invoice: InvoiceView) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(rx.text(invoice.number, weight="bold"), rx.text(invoice.total, weight="medium"),
                      justify="between", width="100%"),
            rx.text(rx.moment(invoice.created_at, format="YYYY-MM-DD"), " · ", invoice.status, size="2",
                    color_scheme="gray"),
            rx.text(invoice.description, size="2", word_break="break-word"),
            spacing="1", width="100%",
        ),
        width="100%",
    )


def invoices() -> rx.Component:
    return card_section(
        "Invoices",
        rx.cond(
            D.invoices.length() > 0,
            responsive_table(
                "Invoices of this license",
                [rx.table.column_header_cell("Number"), rx.table.column_header_cell("Date"),
                 rx.table.column_header_cell("Description"),
                 rx.table.column_header_cell("Amount", text_align="right"), rx.table.column_header_cell("Status")],
                D.invoices, invoice_row, invoice_card,
            ),
            rx.text("No invoices yet.", size="2", color_scheme="gray"),
        ),
        rx.link("All invoices in Billing", href=routes.BILLING, size="2", underline="always"),
    )


def history() -> rx.Component:
    return card_section("Seat history", history_list(D.history),
                        rx.link("Who holds these seats, in Employees", href=S.employees_url, size="2",
                                underline="always"))


# --- dialogs --------------------------------------------------------------------------------------------------


def preview_panel(state: type[AddLicensesState] | type[ChangePlanState]) -> rx.Component:
    return rx.cond(
        state.preview,
        rx.box(
            rx.text(state.preview.summary, size="2"),
            rx.hstack(rx.text("Due now", size="2"), rx.text.strong(state.preview.due_now_display),
                      justify="between", width="100%", margin_top="8px"),
            padding="12px", border=f"1px solid {rx.color('gray', 6)}", border_radius="8px", width="100%",
            role="status", aria_live="polite",
        ),
    )


def charge_dialog(state: type[AddLicensesState] | type[ChangePlanState], title: str, description: str,
                  field: rx.Component, *, confirm: str, max_width: str) -> rx.Component:
    """A dialog whose Confirm charges: its field, the preview of what Confirm charges, the outcome, Confirm."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(title),
            rx.dialog.description(description),
            rx.vstack(
                field,
                preview_panel(state),
                field_error(state.form_error, f"{state.get_name()}-error"),
                dialog_buttons(rx.button(confirm, size="3", on_click=state.confirm, loading=state.charging,
                                         disabled=~state.preview)),
                spacing="3", width="100%", margin_top="12px",
            ),
            max_width=max_width,
        ),
        open=state.is_open, on_open_change=state.set_open,
    )


def add_licenses_dialog() -> rx.Component:
    A = AddLicensesState  # noqa: N806
    return charge_dialog(
        A, "Add licenses", "Charged now for the days left in this period; the new monthly amount applies from the "
                           "next renewal.",
        labelled("Licenses to add", rx.input(
            id="licenses_to_add", value=A.add, on_change=A.set_add, type="number", input_mode="numeric", min=1,
            size="3", debounce_timeout=250, disabled=A.charging,
            aria_invalid=rx.cond(A.add_error != "", "true", "false"), aria_describedby="licenses_to_add-error",
        ), field_id="licenses_to_add", error=A.add_error),
        confirm="Confirm and pay", max_width="480px",
    )


def remove_licenses_dialog() -> rx.Component:
    R = RemoveLicensesState  # noqa: N806
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Remove licenses"),
            rx.dialog.description("Fewer licenses from the next renewal, ", D.renews_on,
                                  ". Nothing is refunded; you can withdraw the change until then."),
            rx.vstack(
                labelled("Number of licenses from the next renewal", rx.input(
                    id="licenses_from_renewal", value=R.quantity, on_change=R.set_quantity, type="number",
                    input_mode="numeric", min=1, size="3", disabled=R.saving,
                    aria_invalid=rx.cond(R.quantity_error != "", "true", "false"),
                    aria_describedby="licenses_from_renewal-hint licenses_from_renewal-error",
                ), field_id="licenses_from_renewal", error=R.quantity_error,
                    hint=[D.assigned.to_string(), " of ", D.quantity.to_string(), " are assigned. To go below that, ",
                          rx.link("free seats in Employees", href=S.employees_url, underline="always"), " first."]),
                dialog_buttons(rx.button("Remove at renewal", size="3", on_click=R.save, loading=R.saving)),
                spacing="3", width="100%", margin_top="12px",
            ),
            max_width="480px",
        ),
        open=R.is_open, on_open_change=R.set_open,
    )


def plan_option(plan: PlanChoice) -> rx.Component:
    P = ChangePlanState  # noqa: N806
    return rx.el.label(
        rx.el.input(type="radio", name="license_plan", value=plan.id.to_string(),
                    checked=P.plan_id == plan.id.to_string(), on_change=P.set_plan(plan.id.to_string()),
                    disabled=P.charging),
        rx.text(plan.label, size="2", flex="1"),
        rx.cond(plan.direction == "current", rx.badge("Current", variant="soft", high_contrast=True)),
        class_name="pm-option",
    )


def change_plan_dialog() -> rx.Component:
    P = ChangePlanState  # noqa: N806
    return charge_dialog(
        P, "Change plan", "A dearer plan starts now, charged for the days left in this period; a cheaper one starts "
                          "at the next renewal.",
        rx.vstack(
            rx.el.fieldset(
                rx.el.legend("Plan", class_name="field-label", style={"margin_bottom": "8px"}),
                rx.vstack(rx.foreach(D.plans, plan_option), spacing="2", width="100%"),
                aria_describedby="license_plan-error",
                style={"border": "none", "padding": "0", "margin": "0", "min_width": "0"},
            ),
            field_error(P.plan_error, "license_plan-error"),
            spacing="1", width="100%",
        ),
        confirm="Confirm plan", max_width="520px",
    )


def cancel_dialog() -> rx.Component:
    return confirm_dialog(
        rx.text("Cancel ", D.reference_name, "?"),
        rx.text("It is not renewed. Seats keep working until ", D.renews_on, "; you can resume it until then."),
        action="Cancel license", on_confirm=S.cancel, open=S.cancel_open, on_open_change=S.set_cancel_open,
        cancel_label="Keep license", closes_on_confirm=False, busy=S.busy == "cancel", max_width="480px",
    )


# --- the page -------------------------------------------------------------------------------------------------


def license_view() -> rx.Component:
    return rx.vstack(
        rx.hstack(rx.heading(D.reference_name, as_="h2", size="6"), status_badge(D.status), align="center",
                  spacing="3", wrap="wrap"),
        payment_problem(),
        actions(),
        summary(),
        scheduled_changes(),
        billing_card(),
        invoices(),
        history(),
        spacing="4", width="100%",
    )


def manage_license_page() -> rx.Component:
    return page_shell(
        rx.link(rx.icon("arrow-left", size=16, aria_hidden="true"), "All licenses", href=routes.LICENSES,
                display="inline-flex", align_items="center", gap="4px", margin_bottom="16px"),
        rx.cond(
            S.loaded,
            rx.cond(S.detail, license_view(),
                    rx.callout(S.missing, icon="circle-alert", color_scheme="red", high_contrast=True, role="alert")),
            loading_rows(),
        ),
        add_licenses_dialog(), remove_licenses_dialog(), change_plan_dialog(), cancel_dialog(),
        title="Manage license",
    )
