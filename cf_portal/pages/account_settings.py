"""Settings: your profile, your password, signing out everywhere, and resetting the demo or advancing it a month
(demo mode)."""

from __future__ import annotations

import reflex as rx

from cf_portal import routes
from cf_portal.components.dialogs import confirm_dialog
from cf_portal.components.shell import page_shell
from cf_portal.pages.auth import text_field
from cf_portal.services.passwords import MIN_LENGTH
from cf_portal.state.account_settings import AccountSettingsState as S


def profile_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Profile", as_="h2", size="4"),
            rx.data_list.root(
                rx.data_list.item(rx.data_list.label("Name"), rx.data_list.value(S.user_name)),
                rx.data_list.item(rx.data_list.label("Email"), rx.data_list.value(S.email)),
                rx.data_list.item(rx.data_list.label("Company"), rx.data_list.value(S.account_name)),
                rx.data_list.item(rx.data_list.label("Role"), rx.data_list.value(S.role_label)),
            ),
            spacing="3",
        ),
        width="100%",
    )


def password_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(rx.cond(S.has_password, "Change password", "Set a password"), as_="h2", size="4"),
            rx.text("Every other browser signed in as you is signed out.", size="2", color_scheme="gray"),
            rx.form(
                rx.vstack(
                    rx.cond(S.form_error != "", rx.callout(S.form_error, icon="circle-alert", color_scheme="red",
                                                           high_contrast=True, role="alert", width="100%")),
                    rx.cond(S.has_password,
                            text_field("Current password", "current_password", kind="password",
                                       error=S.current_error, autocomplete="current-password")),
                    text_field("New password", "new_password", kind="password", error=S.new_error,
                               autocomplete="new-password", hint=f"At least {MIN_LENGTH} characters."),
                    text_field("Confirm new password", "confirm_password", kind="password", error=S.confirm_error,
                               autocomplete="new-password"),
                    rx.button(rx.cond(S.saving, rx.hstack(rx.spinner(size="2"), "Saving…", align="center"),
                                      "Save password"), type="submit", size="3", disabled=S.saving),
                    spacing="4", width="100%", align="start",
                ),
                on_submit=S.change_password, reset_on_submit=False, key=S.form_key, width="100%",
            ),
            spacing="3", width="100%",
        ),
        width="100%", max_width="520px",
    )


def sessions_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Signed-in browsers", as_="h2", size="4"),
            rx.text("Lost a laptop or used a shared computer? Sign out of every browser at once, this one included.",
                    size="2", color_scheme="gray"),
            rx.button("Sign out everywhere", variant="soft", color_scheme="gray", size="3",
                      on_click=S.sign_out_everywhere),
            spacing="3", align="start",
        ),
        width="100%", max_width="520px",
    )


def integrations_card() -> rx.Component:
    def link(label: str, href: str, icon: str, what: str) -> rx.Component:
        return rx.el.li(
            rx.link(rx.icon(icon, size=16, aria_hidden="true"), label, href=href, display="inline-flex",
                    align_items="center", gap="6px", weight="medium"),
            rx.text(what, size="2", color_scheme="gray"),
        )

    return rx.card(
        rx.vstack(
            rx.heading("Integrations", as_="h2", size="4"),
            rx.text("Let the ChatFortress products ask who may use them, or be told when seats change.", size="2",
                    color_scheme="gray"),
            rx.el.ul(
                link("API keys", routes.API_KEYS, "key-round", "Keys the products call the API with (owners)."),
                link("Webhooks", routes.WEBHOOKS, "webhook", "Endpoints told of seat and license changes (owners)."),
                link("API documentation", routes.API_DOCS, "book-open", "Endpoints, product codes, examples."),
                list_style="none", padding="0", margin="0", display="flex", flex_direction="column", gap="10px",
            ),
            spacing="3", align="start",
        ),
        width="100%", max_width="520px",
    )


def email_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Email", as_="h2", size="4"),
            rx.text("Invitations, receipts and payment reminders are always sent; billing emails go to owners and "
                    "billing admins.", size="2", color_scheme="gray"),
            rx.el.label(
                rx.hstack(
                    rx.switch(id="seat_access_email", checked=S.seat_access_email,
                              on_change=S.set_seat_access_email, disabled=~S.can_change_seat_access_email),
                    rx.text("Email employees when they get a license (\"You now have access to …\")", size="2"),
                    align="center", spacing="3",
                ),
                html_for="seat_access_email",
                # The label is the switch's target (a click on it flips the switch): as tall as the theme's
                # minimum target (assets/portal.css), since the switch itself is 20 px high.
                display="flex", align_items="center", min_height="var(--target-min)",
            ),
            rx.cond(S.can_read_sent_emails,
                    rx.link(rx.icon("mail", size=16, aria_hidden="true"), "Sent emails", href=routes.SENT_EMAILS,
                            display="inline-flex", align_items="center", gap="6px", weight="medium")),
            spacing="3", align="start",
        ),
        id="email", width="100%", max_width="520px",
    )


def demo_card() -> rx.Component:
    return rx.cond(
        S.can_reset_demo,
        rx.card(
            rx.vstack(
                rx.heading("Demo data", as_="h2", size="4"),
                rx.text("See what a month does: licenses renew and appear on Billing, a coupon's months run out, and "
                        "a license billed to the test card 4000 0000 0000 0341 becomes past due, then suspended.",
                        size="2", color_scheme="gray"),
                rx.button(rx.icon("calendar-clock", aria_hidden="true"), "Advance one month", variant="soft",
                          size="3", loading=S.advancing, on_click=S.set_advance_open(True)),
                rx.text("Put the demo account back to how it started: no licenses, cards or invoices, the seeded "
                        "employees and members.", size="2", color_scheme="gray"),
                rx.button("Reset demo data", color_scheme="red", variant="soft", size="3",
                          on_click=S.set_reset_open(True)),
                spacing="3", align="start",
            ),
            width="100%", max_width="520px",
        ),
    )


def reset_dialog() -> rx.Component:
    return confirm_dialog("Reset the demo data?",
                          "Every license, card, invoice and change made in the demo account is deleted. Members who "
                          "joined are removed.",
                          action="Reset demo data", on_confirm=S.reset_demo, open=S.reset_open,
                          on_open_change=S.set_reset_open)


def advance_dialog() -> rx.Component:
    return confirm_dialog("Advance one month?",
                          "Every license of the demo account moves a month into the past, and what has fallen due is "
                          "charged now, as the monthly renewal would. This cannot be undone (Reset demo data starts "
                          "over).",
                          action="Advance one month", on_confirm=S.advance_month, open=S.advance_open,
                          on_open_change=S.set_advance_open)


def account_settings_page() -> rx.Component:
    return page_shell(
        rx.vstack(profile_card(), password_card(), sessions_card(), email_card(), integrations_card(), demo_card(),
                  reset_dialog(),
                  advance_dialog(),
                  spacing="4", width="100%"),
        title="Settings",
    )
