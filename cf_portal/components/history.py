"""Seat history: who held a seat, from when to when, and who did it."""

from __future__ import annotations

import reflex as rx

from cf_portal.services.seats import SeatEvent


def history_line(event: SeatEvent) -> rx.Component:
    return rx.el.li(
        rx.text(
            rx.text.strong(event.holder), ": ", event.product, " · ", event.license, " — assigned ",
            rx.moment(event.assigned_at, format="YYYY-MM-DD HH:mm"),
            rx.cond(event.assigned_by != "", rx.fragment(" by ", event.assigned_by)),
            rx.cond(event.is_open, " (holds it now)",
                    rx.fragment(rx.cond(event.moved_to != "", rx.fragment("; moved to ", event.moved_to, " "), "; freed "),
                                rx.moment(event.unassigned_at, format="YYYY-MM-DD HH:mm"),
                                rx.cond(event.unassigned_by != "", rx.fragment(" by ", event.unassigned_by)))),
            size="2",
        ),
    )



def history_list(events: rx.Var[list[SeatEvent]]) -> rx.Component:
    return rx.cond(
        events.length() > 0,
        rx.el.ul(rx.foreach(events, history_line), class_name="history-list"),
        rx.text("No assignments yet.", size="2", color_scheme="gray"),
    )
