"""Stripe's Payment Element (through @stripe/react-stripe-js), for saving a card with a SetupIntent, and the
bank's confirmation step (3-D Secure) of a first payment (`stripe_payment_action`).

The component gets the publishable key and the SetupIntent's client secret, and answers with the id of the
saved payment method (`on_saved`) or Stripe's message (`on_error`). Card fields live in Stripe's iframe:
their values never reach a Reflex event or state var.
"""

from __future__ import annotations

import reflex as rx


def _saved(payment_method_id: rx.Var[str]) -> list[rx.Var[str]]:
    return [payment_method_id]


def _failed(message: rx.Var[str]) -> list[rx.Var[str]]:
    return [message]


class _StripeJs(rx.Component):
    """What both components share: the module they live in, Stripe.js, and the keys they use it with."""

    library = "$/public/" + rx.asset("stripe_setup.jsx", shared=True)
    lib_dependencies: list[str] = ["@stripe/stripe-js@10.2.1", "@stripe/react-stripe-js@7.0.1"]

    publishable_key: rx.Var[str]
    client_secret: rx.Var[str]


class StripeSetup(_StripeJs):
    tag = "StripeSetup"

    submit_label: rx.Var[str]

    on_saved: rx.EventHandler[_saved]
    on_error: rx.EventHandler[_failed]


stripe_setup = StripeSetup.create


class StripePaymentAction(_StripeJs):
    """Runs Stripe.js's `handleNextAction` for the payment of `client_secret` (nothing is rendered by the
    portal: Stripe shows the bank's step); `on_done` gets "" or Stripe's message once the step is over."""

    tag = "StripePaymentAction"

    on_done: rx.EventHandler[_failed]


stripe_payment_action = StripePaymentAction.create
