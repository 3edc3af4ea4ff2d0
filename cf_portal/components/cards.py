"""The add-card dialog ("Add payment method") of Add License and Billing, bound to a `CardsState` subclass
(cf_portal/state/cards.py). With Stripe it holds Stripe's Payment Element; in the sandbox, a plain card form."""

from __future__ import annotations

import reflex as rx

from cf_portal.components.forms import field_error, labelled
from cf_portal.components.stripe_setup import stripe_setup
from cf_portal.state.cards import CardsState


def card_dialog(S: type[CardsState]) -> rx.Component:  # noqa: N803 (the page's state class, as pages name it)
    """The "Add payment method" button and its dialog, bound to the page's `CardsState` subclass."""
    def card_field(label: str, field_id: str, error: rx.Var, **props) -> rx.Component:  # noqa: ANN003
        return labelled(
            label,
            rx.input(id=field_id, name=field_id, size="3", aria_invalid=rx.cond(error != "", "true", "false"),
                     aria_describedby=f"{field_id}-error", **props),
            field_id=field_id, error=error,
        )

    return rx.dialog.root(
        rx.dialog.trigger(rx.button(rx.icon("plus", aria_hidden="true"), "Add payment method", variant="soft",
                                    size="3", type="button")),
        rx.dialog.content(
            rx.dialog.title("Add payment method"),
            rx.dialog.description("Your card is saved with the payment provider. We keep only its brand, "
                                  "last 4 digits and expiry."),
            rx.cond(
                S.is_sandbox,
                rx.callout("Sandbox: use 4242 4242 4242 4242 with any future date and CVC. "
                           "4000 0000 0000 0002 is declined at Create.", icon="info", size="1", margin_top="8px", high_contrast=True),
            ),
            rx.cond(S.uses_stripe, stripe_card_form(S), sandbox_card_form(S, card_field)),
            max_width="460px",
        ),
        open=S.card_dialog_open,
        on_open_change=S.set_card_dialog_open,
    )


def stripe_card_form(S: type[CardsState]) -> rx.Component:  # noqa: N803
    """Stripe's Payment Element: the card goes from the browser to Stripe; we get the saved card's id."""
    return rx.vstack(
        rx.cond(
            S.setup_client_secret != "",
            stripe_setup(publishable_key=S.stripe_publishable_key, client_secret=S.setup_client_secret,
                         submit_label="Save card", on_saved=S.stripe_card_saved),
            rx.cond(S.card_form_error == "", rx.hstack(rx.spinner(size="2"), rx.text("Opening the secure card form…",
                                                                                   size="2"), align="center")),
        ),
        field_error(S.card_form_error, "card-form-error"),
        rx.cond(S.saving_card, rx.hstack(rx.spinner(size="2"), rx.text("Saving the card…", size="2"),
                                         align="center")),
        rx.hstack(rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray", size="3", type="button")),
                  justify="end", width="100%"),
        spacing="3", margin_top="12px", width="100%",
    )


def sandbox_card_form(S: type[CardsState], card_field) -> rx.Component:  # noqa: ANN001, N803
    return rx.fragment(
            rx.form(
                rx.vstack(
                    card_field("Card number", "card_number", S.card_number_error, input_mode="numeric",
                               auto_complete="cc-number", placeholder="1234 1234 1234 1234", max_length=23),
                    rx.flex(
                        card_field("Expiry (MM / YY)", "expiry", S.card_expiry_error, auto_complete="cc-exp",
                                   placeholder="MM / YY", max_length=7),
                        card_field("CVC", "cvc", S.card_cvc_error, input_mode="numeric", auto_complete="cc-csc",
                                   placeholder="123", max_length=4),
                        gap="12px", width="100%", direction=rx.breakpoints(initial="column", sm="row"),
                    ),
                    field_error(S.card_form_error, "card-form-error"),
                    rx.hstack(
                        rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray", size="3",
                                                  type="button")),
                        rx.button("Save card", type="submit", size="3", loading=S.saving_card),
                        justify="end", width="100%", spacing="3",
                    ),
                    spacing="3",
                    margin_top="12px",
                ),
                on_submit=S.save_card,
                reset_on_submit=False,
            ),
    )
