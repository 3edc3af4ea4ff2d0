"""Sign in, create an account, and accept an invitation: one centred card each, outside the app shell.

The inputs are uncontrolled inside a form: what a person typed stays in place when a message appears, and
passwords go to the server once, on submit, never into a state var."""

from __future__ import annotations

import reflex as rx

from cf_portal import routes
from cf_portal.components.forms import labelled
from cf_portal.components.shell import brand, support_footer
from cf_portal.services.passwords import MIN_LENGTH
from cf_portal.settings import get_settings
from cf_portal.state.auth import AuthState as S


def auth_card(title: str, *children: rx.Component) -> rx.Component:
    return rx.el.main(
        rx.vstack(
            brand(),
            rx.card(
                rx.vstack(rx.heading(title, as_="h1", size="6"), *children, spacing="4", width="100%"),
                width="100%", size="3",
            ),
            rx.el.footer(support_footer()),
            spacing="5", align="center", width="100%", max_width="440px",
        ),
        id="main",
        display="flex", justify_content="center", padding=["32px 16px", "64px 16px"], min_height="100vh",
        background=rx.color("gray", 2),
    )


def text_field(label: str, name: str, *, error: rx.Var | None = None, kind: str = "text",
               autocomplete: str = "off", hint: str | None = None, required: bool = True) -> rx.Component:
    describedby = " ".join(x for x in (f"{name}-hint" if hint else "", f"{name}-error" if error is not None else "")
                           if x)
    return labelled(
        label,
        rx.input(id=name, name=name, type=kind, size="3", auto_complete=autocomplete, required=required,
                 max_length=254 if kind != "password" else 200,
                 aria_invalid=rx.cond(error != "", "true", "false") if error is not None else "false",
                 **({"aria_describedby": describedby} if describedby else {})),
        field_id=name, error=error, hint=hint,
    )


def form_message() -> rx.Component:
    return rx.cond(
        S.form_error != "",
        rx.callout(S.form_error, icon="circle-alert", color_scheme="red", role="alert", high_contrast=True,
                   width="100%"),
    )


def submit(label: str, busy_label: str) -> rx.Component:
    return rx.button(rx.cond(S.busy, rx.hstack(rx.spinner(size="2"), busy_label, align="center"), label),
                     type="submit", size="3", width="100%", disabled=S.busy)


def sign_in_page() -> rx.Component:
    return auth_card(
        "Sign in",
        rx.form(
            rx.vstack(
                form_message(),
                text_field("Email", "email", kind="email", autocomplete="username"),
                text_field("Password", "password", kind="password", autocomplete="current-password"),
                rx.el.label(
                    rx.el.input(type="checkbox", name="remember", id="remember", class_name="checkbox"),
                    "Remember me for 30 days",
                    html_for="remember", class_name="check-label",
                ),
                submit("Sign in", "Signing in…"),
                spacing="4", width="100%",
            ),
            on_submit=S.sign_in, reset_on_submit=False, width="100%",
        ),
        rx.text("New to ChatFortress? ", rx.link("Create an account", href=routes.SIGN_UP, underline="always"), size="2"),
        *([demo_block()] if get_settings().demo_mode else []),
    )


def demo_block() -> rx.Component:
    """Rendered into the page at build (the build reads the settings), so it paints with the page rather than
    once the websocket has told the page it is a demo."""
    return rx.vstack(
        rx.separator(size="4"),
        rx.text("Exploring? The demo account has employees and coupons ready; payments are simulated.",
                size="2", color_scheme="gray"),
        rx.button(rx.icon("play", size=16, aria_hidden="true"), "Try the demo", on_click=S.try_demo,
                  variant="soft", size="3", width="100%", type="button"),
        spacing="3", width="100%",
    )


def sign_up_page() -> rx.Component:
    return auth_card(
        "Create your account",
        rx.form(
            rx.vstack(
                form_message(),
                text_field("Company name", "company", error=S.company_error, autocomplete="organization",
                           hint="Shown on your invoices."),
                text_field("Your name", "name", error=S.name_error, autocomplete="name"),
                text_field("Work email", "email", kind="email", error=S.email_error, autocomplete="email"),
                text_field("Password", "password", kind="password", error=S.password_error,
                           autocomplete="new-password", hint=f"At least {MIN_LENGTH} characters."),
                submit("Create account", "Creating your account…"),
                spacing="4", width="100%",
            ),
            on_submit=S.sign_up, reset_on_submit=False, width="100%",
        ),
        rx.text("You will be the account's owner, and can invite colleagues afterwards.", size="2",
                color_scheme="gray"),
        rx.text("Already have an account? ", rx.link("Sign in", href=routes.SIGN_IN, underline="always"), size="2"),
    )


def invitation_page() -> rx.Component:
    return auth_card(
        "Join your team",
        rx.cond(
            S.invitation_error != "",
            rx.vstack(
                rx.callout(S.invitation_error, icon="circle-alert", color_scheme="red", high_contrast=True,
                           width="100%"),
                rx.link("Go to sign in", href=routes.SIGN_IN),
                spacing="3", width="100%",
            ),
            rx.cond(
                S.invitation,
                rx.form(
                    rx.vstack(
                        rx.text("You are invited to ", rx.text.strong(S.invitation.account_name), " as ",
                                rx.text.strong(S.invitation.role_label), "."),
                        form_message(),
                        rx.vstack(
                            rx.text("Email", class_name="field-label", as_="div"),
                            rx.text(S.invitation.email, size="3"),
                            spacing="1", width="100%",
                        ),
                        text_field("Your name", "name", error=S.name_error, autocomplete="name"),
                        text_field("Password", "password", kind="password", error=S.password_error,
                                   autocomplete="new-password", hint=f"At least {MIN_LENGTH} characters."),
                        text_field("Confirm password", "confirm_password", kind="password", error=S.confirm_error,
                                   autocomplete="new-password"),
                        submit("Accept invitation", "Joining…"),
                        spacing="4", width="100%",
                    ),
                    on_submit=S.accept_invitation, reset_on_submit=False, width="100%",
                ),
                rx.spinner(size="3"),
            ),
        ),
    )
