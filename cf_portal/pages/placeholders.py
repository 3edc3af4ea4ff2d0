"""Pages whose features arrive in later releases; each says so plainly."""

from __future__ import annotations

import reflex as rx

from cf_portal.components.common import empty_state
from cf_portal.components.shell import page_shell


def billing_page() -> rx.Component:
    return page_shell(
        empty_state("receipt", "Billing", "Invoices and payment methods arrive in a later release."),
        title="Billing",
    )
