"""Charts (Reflex's Recharts components) with their text equivalent for screen readers.

Each chart is drawn for the eye only (`aria-hidden`, and Recharts' keyboard layer off so nothing hidden takes
focus); a visually hidden table (monthly spend) or list (seat use, beside the Licenses table) gives the same
values to screen readers. Recharts is a large library:
only the pages that show a chart (Licenses, Billing) import it, so it is in their chunks alone, never in the
sign-in or Add License page's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reflex as rx

from cf_portal.services.billing import SpendMonth
from cf_portal.services.licenses import SeatUse

# Recharts 3 makes the chart a focusable "application" by default; the table is the accessible version here.
NO_KEYBOARD_LAYER = {"accessibilityLayer": False}
ACCENT, MUTED = "var(--accent-9)", "var(--gray-6)"


def _figure(title: str, chart: rx.Component, table: rx.Component) -> rx.Component:
    return rx.el.figure(
        rx.el.figcaption(rx.text(title, size="2", weight="medium")),
        rx.box(chart, aria_hidden="true", width="100%"),
        table,
        margin="0", width="100%",
    )


def _hidden_table(caption: str, headers: list[str], rows: rx.Var, row: Callable) -> rx.Component:
    return rx.el.table(
        rx.el.caption(caption),
        rx.el.thead(rx.el.tr(*[rx.el.th(header, scope="col") for header in headers])),
        rx.el.tbody(rx.foreach(rows, row)),
        class_name="visually-hidden",
    )


def seat_use_chart(seats: rx.Var[list[SeatUse]], height: rx.Var[int]) -> rx.Component:
    """Per license, one bar of its seats: assigned, then available."""
    chart = rx.recharts.responsive_container(
        rx.recharts.bar_chart(
            rx.recharts.x_axis(type_="number", allow_decimals=False),
            rx.recharts.y_axis(data_key="name", type_="category", width=120),
            rx.recharts.bar(data_key="assigned", name="Assigned", stack_id="seats", fill=ACCENT,
                            is_animation_active=False),
            rx.recharts.bar(data_key="available", name="Available", stack_id="seats", fill=MUTED,
                            is_animation_active=False),
            rx.recharts.legend(),
            data=seats.to(list[dict[str, Any]]), layout="vertical", custom_attrs=NO_KEYBOARD_LAYER,
        ),
        width="100%", height=height,
    )
    # A list, not a table: the Licenses table beside it already has a row per license, and a second row of the
    # same name would be heard twice.
    text = rx.el.ul(
        rx.foreach(seats, lambda s: rx.el.li(s.name, ": ", s.assigned.to_string(), " assigned, ",
                                             s.available.to_string(), " available, of ", s.quantity.to_string(),
                                             " seats")),
        aria_label="Seat use per license", class_name="visually-hidden",
    )
    return _figure("Seat use: assigned / available", chart, text)


def monthly_spend_chart(months: rx.Var[list[SpendMonth]]) -> rx.Component:
    """What was paid each month, oldest first (bars of integer cents; the axis shows them as whole units)."""
    chart = rx.recharts.responsive_container(
        rx.recharts.bar_chart(
            rx.recharts.cartesian_grid(vertical=False, stroke_dasharray="3 3"),
            rx.recharts.x_axis(data_key="label", interval="preserveStartEnd"),
            rx.recharts.y_axis(tick_formatter="(cents) => (cents / 100).toLocaleString()", width=64,
                               allow_decimals=False),
            rx.recharts.bar(data_key="cents", name="Paid", fill=ACCENT, is_animation_active=False),
            data=months.to(list[dict[str, Any]]), custom_attrs=NO_KEYBOARD_LAYER,
        ),
        width="100%", height=240,
    )
    table = _hidden_table("Monthly spend, last 12 months", ["Month", "Paid"], months,
                          lambda m: rx.el.tr(rx.el.th(m.label, scope="row"), rx.el.td(m.amount)))
    return _figure("Monthly spend, last 12 months", chart, table)
