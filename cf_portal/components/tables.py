"""The responsive table: a table from tablet width up, a list of cards on a phone."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx


def responsive_table(caption: str, headers: list[rx.Component], rows: rx.Var,
                     table_row: Callable[[rx.Var], rx.Component], card: Callable[[rx.Var], rx.Component]) -> rx.Component:
    """`rows` as a table (a hidden `caption` names it for screen readers; `headers` are its column header cells)
    on tablets and desktops, and as `card`s on phones."""
    return rx.fragment(
        rx.tablet_and_desktop(
            rx.table.root(
                rx.el.caption(caption, class_name="visually-hidden"),
                rx.table.header(rx.table.row(*headers)),
                rx.table.body(rx.foreach(rows, table_row)),
                variant="surface", width="100%",
            ),
        ),
        rx.mobile_only(rx.vstack(rx.foreach(rows, card), spacing="3", width="100%")),
    )
