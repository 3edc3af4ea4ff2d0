"""The Billing page: what was charged (each invoice names its license) and the cards on file."""

from __future__ import annotations

import reflex as rx

from cf_portal import routes
from cf_portal.components.cards import card_dialog
from cf_portal.components.charts import monthly_spend_chart
from cf_portal.components.common import empty_state, loading_rows
from cf_portal.components.dialogs import confirm_dialog
from cf_portal.components.shell import page_shell
from cf_portal.services.billing import InvoiceView
from cf_portal.services.payment_methods import PaymentMethodView
from cf_portal.state.billing import BillingCardsState
from cf_portal.state.billing import BillingState as S


def card_row(card: PaymentMethodView) -> rx.Component:
    return rx.hstack(
        rx.icon("credit-card", size=18, aria_hidden="true"),
        rx.text(card.label, size="2", flex="1"),
        rx.cond(card.is_default, rx.badge("Default", variant="soft", high_contrast=True),
                rx.cond(~card.expired & S.can_manage_payment_methods, rx.button("Make default", size="2", variant="soft",
                                                 on_click=S.make_default(card.id),
                                                 loading=S.changing_card_id == card.id, disabled=S.changing,
                                                 aria_label=f"Make {card.label} the default"))),
        rx.cond(card.expired, rx.badge("Expired", color_scheme="red", variant="soft", high_contrast=True)),
        rx.cond(S.can_manage_payment_methods,
                rx.button("Remove", size="2", variant="soft", color_scheme="red", on_click=S.ask_remove(card.id),
                          disabled=S.changing, aria_label=f"Remove {card.label}")),
        align="center", spacing="3", width="100%", wrap="wrap",
        padding="10px 12px", border=f"1px solid {rx.color('gray', 6)}", border_radius="8px",
    )


def remove_card_dialog() -> rx.Component:
    """Asks before a card goes, naming it and saying what happens to the licenses billed to it (or why it cannot
    go yet). The dialog stays open, its button busy, until the provider has answered."""
    r = S.removal
    refused = r & (r.refusal != "")
    return confirm_dialog(
        rx.cond(r, "Remove " + r.name + "?", "Remove card"),
        rx.cond(r, rx.cond(refused, r.refusal, "Our payment provider will no longer be able to charge it. "
                                               + r.consequence), ""),
        action="Remove card", on_confirm=S.remove_card(r.card_id), open=S.remove_open,
        on_open_change=S.set_remove_open, cancel_label=rx.cond(refused, "Close", "Cancel"),
        show_action=r & (r.refusal == ""), closes_on_confirm=False, busy=S.changing, max_width="480px",
    )


def invoice_row(invoice: InvoiceView) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(invoice.number),
        rx.table.cell(rx.moment(invoice.created_at, format="YYYY-MM-DD")),
        rx.table.cell(invoice.description),
        rx.table.cell(rx.vstack(rx.text(invoice.total, weight="medium"),
                                rx.cond(invoice.discount != "", rx.text(invoice.subtotal, " ", invoice.discount,
                                                                        size="1", color_scheme="gray")),
                                spacing="0", align="end"), text_align="right"),
        rx.table.cell(rx.badge(invoice.status, variant="soft", high_contrast=True, color_scheme="green")),
        rx.table.cell(rx.hstack(
            rx.button("View", size="2", variant="soft", on_click=S.open_invoice(invoice.id),
                      aria_label=f"View invoice {invoice.number}"),
            pdf_link(invoice),
            spacing="2", wrap="nowrap")),
    )


def pdf_link(invoice: InvoiceView) -> rx.Component:
    """A document navigation (not the router's): the route answers with the PDF as an attachment, the page
    stays."""
    return rx.button(rx.link("Download PDF", href=routes.invoice_pdf(invoice.id), reload_document=True,
                             underline="none", aria_label=f"Download PDF of invoice {invoice.number}"),
                     as_child=True, size="2", variant="soft", color_scheme="gray")


def provider_pdf_link(invoice: InvoiceView) -> rx.Component:
    return rx.cond(S.provider_pdfs, rx.link(
        "Stripe's PDF", href=routes.provider_invoice_pdf(invoice.id), is_external=True, reload_document=True, rel="noopener",
        aria_label=f"Stripe's PDF of invoice {invoice.number} (opens in a new tab)", size="2"))


def invoice_dialog() -> rx.Component:
    d = S.invoice
    return rx.dialog.root(
        rx.dialog.content(
            rx.cond(
                d,
                rx.vstack(
                    rx.dialog.title(rx.text("Invoice ", d.invoice.number)),
                    rx.dialog.description(rx.text(d.account_name, " · ", d.period)),
                    rx.box(
                        rx.table.root(
                            rx.table.header(rx.table.row(
                                rx.table.column_header_cell("Description"),
                                rx.table.column_header_cell("Qty", text_align="right"),
                                rx.table.column_header_cell("Unit price", text_align="right"),
                                rx.table.column_header_cell("Amount", text_align="right"),
                            )),
                            rx.table.body(rx.foreach(d.lines, lambda line: rx.table.row(
                                rx.table.row_header_cell(line.description),
                                rx.table.cell(line.quantity, text_align="right"),
                                rx.table.cell(line.unit_price, text_align="right"),
                                rx.table.cell(line.amount, text_align="right"),
                            ))),
                            variant="surface", width="100%",
                        ),
                        width="100%", overflow_x="auto",
                    ),
                    rx.vstack(
                        rx.cond(d.invoice.discount != "", rx.text("Subtotal ", d.invoice.subtotal, " · Discount ",
                                                                  d.invoice.discount, size="2")),
                        rx.text("Total ", rx.text.strong(d.invoice.total), " · ", d.invoice.status),
                        align="end", spacing="1", width="100%",
                    ),
                    rx.hstack(provider_pdf_link(d.invoice), pdf_link(d.invoice),
                              rx.dialog.close(rx.button("Close", variant="soft", color_scheme="gray", size="3")),
                              justify="end", align="center", width="100%", wrap="wrap"),
                    spacing="3", width="100%",
                ),
                rx.dialog.title("Invoice"),
            ),
            max_width="640px",
        ),
        open=S.invoice_open, on_open_change=S.set_invoice_open,
    )


def billing_page() -> rx.Component:
    return page_shell(
        rx.vstack(
            rx.heading("Payment methods", as_="h2", size="5"),
            rx.cond(
                S.cards.length() > 0,
                rx.vstack(rx.foreach(S.cards, card_row), spacing="2", width="100%"),
                rx.text(rx.cond(S.can_manage_payment_methods,
                                "No payment method yet. Add one here, or when you add a license.",
                                "No payment method yet."), color_scheme="gray"),
            ),
            rx.cond(S.can_manage_payment_methods, card_dialog(BillingCardsState)),
            rx.heading("Spending", as_="h2", size="5", margin_top="16px"),
            rx.cond(S.loaded, rx.cond(
                S.spend.has_spend,
                rx.card(monthly_spend_chart(S.spend.months), width="100%"),
                rx.text("Nothing paid in the last 12 months: each month's spend shows here once invoices are paid.",
                        color_scheme="gray"),
            )),
            rx.heading("Invoices", as_="h2", size="5", margin_top="16px"),
            rx.cond(
                S.loaded,
                rx.cond(
                    S.invoices.length() > 0,
                    rx.box(
                        rx.table.root(
                            rx.el.caption("Invoices", class_name="visually-hidden"),
                            rx.table.header(rx.table.row(
                                rx.table.column_header_cell("Number"),
                                rx.table.column_header_cell("Date"),
                                rx.table.column_header_cell("Description"),
                                rx.table.column_header_cell("Amount", text_align="right"),
                                rx.table.column_header_cell("Status"),
                                rx.table.column_header_cell(rx.text("Actions", class_name="visually-hidden")),
                            )),
                            rx.table.body(rx.foreach(S.invoices, invoice_row)),
                            variant="surface", width="100%",
                        ),
                        width="100%", overflow_x="auto",
                    ),
                    empty_state("receipt", "No invoices yet",
                                "Each license you add is charged monthly; its invoices appear here with the "
                                "license's name.",
                                rx.cond(S.can_buy,
                                        rx.button(rx.link("Add License", href=routes.ADD_LICENSE, underline="none"),
                                                  as_child=True, size="3"))),
                ),
                loading_rows(),
            ),
            invoice_dialog(),
            remove_card_dialog(),
            spacing="3", width="100%",
        ),
        title="Billing",
    )
