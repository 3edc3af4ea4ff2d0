"""Settings → Sent emails (owners and billing admins) and the Contact us page."""

from __future__ import annotations

import reflex as rx

from cf_portal.components.common import empty_state, loading_rows
from cf_portal.components.forms import labelled
from cf_portal.components.shell import page_shell
from cf_portal.services.emails import MESSAGE_MAX, SUBJECT_MAX, SentEmailRow
from cf_portal.state.emails import ContactState as C
from cf_portal.state.emails import SentEmailsState as S


def status_badge(row: SentEmailRow) -> rx.Component:
    return rx.match(
        row.status,
        ("sent", rx.badge("Sent", color_scheme="green", variant="soft", high_contrast=True)),
        ("failed", rx.badge("Failed", color_scheme="red", variant="soft", high_contrast=True)),
        rx.badge("Queued", color_scheme="gray", variant="soft", high_contrast=True),
    )


def email_row(row: SentEmailRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(row.recipient, word_break="break-all")),
        rx.table.cell(rx.text(row.subject)),
        rx.table.cell(rx.moment(row.created_at, format="YYYY-MM-DD HH:mm")),
        rx.table.cell(rx.vstack(status_badge(row),
                                rx.cond(row.error != "", rx.text(row.error, size="1", color_scheme="red")),
                                spacing="1")),
        rx.table.cell(rx.button("View", size="2", variant="soft", on_click=S.view(row.id),
                                aria_label="View the email " + row.subject + " to " + row.recipient)),
    )


def view_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(S.open_subject),
            rx.dialog.description(rx.text("To ", S.open_to), size="2"),
            rx.tabs.root(
                rx.tabs.list(rx.tabs.trigger("Formatted", value="html"), rx.tabs.trigger("Plain text", value="text")),
                rx.tabs.content(
                    # sandbox="" : no script, no form, no navigation of the portal; the HTML is only drawn.
                    rx.el.iframe(src_doc=S.open_html, sandbox="", title="The email as formatted",
                                 width="100%", height="420px", style={"border": "1px solid var(--gray-6)",
                                                                       "background": "white"}),
                    value="html", padding_top="12px"),
                rx.tabs.content(
                    rx.el.pre(S.open_text, white_space="pre-wrap", word_break="break-word", font_size="13px",
                              aria_label="The email as plain text"),
                    value="text", padding_top="12px"),
                default_value="html",
            ),
            rx.hstack(rx.dialog.close(rx.button("Close", size="3")), justify="end", width="100%",
                      padding_top="12px"),
            max_width="720px",
        ),
        open=S.open_id != 0, on_open_change=S.set_view_open,
    )


def sent_emails_page() -> rx.Component:
    return page_shell(
        rx.vstack(
            rx.text("What the portal emailed your people and ChatFortress support, newest first. Without a mail "
                    "server (demo mode) this is where they are delivered.", size="2", color_scheme="gray"),
            rx.cond(
                ~S.loaded, loading_rows(),
                rx.cond(
                    ~S.allowed,
                    rx.callout("Only owners and billing admins can read the emails the portal sent.", icon="lock"),
                    rx.cond(
                        S.rows.length() == 0,
                        empty_state("mail", "No emails yet", "Invitations, receipts and reminders appear here."),
                        rx.vstack(
                            rx.button(rx.icon("refresh-cw", size=16, aria_hidden="true"), "Refresh", size="2",
                                      variant="soft", on_click=S.refresh),
                            rx.table.root(
                                rx.table.header(rx.table.row(
                                    rx.table.column_header_cell("To"), rx.table.column_header_cell("Subject"),
                                    rx.table.column_header_cell("When"), rx.table.column_header_cell("Status"),
                                    rx.table.column_header_cell(rx.el.span("Message", class_name="sr-only")))),
                                rx.table.body(rx.foreach(S.rows, email_row)),
                                width="100%",
                            ),
                            spacing="3", width="100%", overflow_x="auto",
                        ),
                    ),
                ),
            ),
            view_dialog(),
            spacing="4", width="100%",
        ),
        title="Sent emails",
    )


def contact_page() -> rx.Component:
    return page_shell(
        rx.vstack(
            rx.text("Questions about licenses, seats or billing? Email us at ",
                    rx.link(C.support_email, href="mailto:" + C.support_email, underline="always"), " or write to us here: we answer "
                    "by email, and see which page you came from and your account.", size="3"),
            rx.card(
                rx.form(
                    rx.vstack(
                        rx.cond(C.form_error != "", rx.callout(C.form_error, icon="circle-alert", color_scheme="red",
                                                               role="alert", width="100%")),
                        labelled("Subject", rx.input(id="contact_subject", name="subject", size="3",
                                                     max_length=SUBJECT_MAX,
                                                     aria_invalid=rx.cond(C.subject_error != "", "true", "false"),
                                                     aria_describedby="contact_subject-error"),
                                 field_id="contact_subject", error=C.subject_error),
                        labelled("Message", rx.text_area(id="contact_message", name="message", rows="8", size="3",
                                                         max_length=MESSAGE_MAX,
                                                         aria_invalid=rx.cond(C.message_error != "", "true",
                                                                              "false"),
                                                         aria_describedby="contact_message-error"),
                                 field_id="contact_message", error=C.message_error),
                        rx.hstack(rx.button("Send message", size="3", type="submit", loading=C.sending),
                                  justify="end", width="100%"),
                        spacing="4", width="100%",
                    ),
                    on_submit=C.send, reset_on_submit=False, key=C.form_key.to_string(),
                ),
                width="100%", max_width="640px",
            ),
            spacing="4", width="100%",
        ),
        title="Contact us",
    )
