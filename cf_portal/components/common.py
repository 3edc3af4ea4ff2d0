"""Small stateless pieces shared by pages."""

from __future__ import annotations

import reflex as rx

from cf_portal import routes


def empty_state(icon: str, title: str, body: str, action: rx.Component | None = None) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.icon(icon, size=36, color=rx.color("gray", 9), aria_hidden="true"),
            rx.heading(title, as_="h2", size="5"),
            rx.text(body, color_scheme="gray", text_align="center", max_width="420px"),
            *([action] if action is not None else []),
            align="center",
            spacing="3",
            padding="32px 16px",
        ),
        width="100%",
    )


def loading_rows(count: int = 3) -> rx.Component:
    return rx.vstack(
        *[rx.skeleton(rx.box(height="44px", width="100%"), loading=True) for _ in range(count)],
        width="100%",
        spacing="2",
        aria_busy="true",
        aria_label="Loading",
    )


def status_badge(status: rx.Var) -> rx.Component:
    return rx.badge(
        rx.match(status, ("active", "Active"), ("past_due", "Past due"), ("suspended", "Suspended"),
                 ("canceled", "Canceled"), status),
        color_scheme=rx.match(status, ("active", "green"), ("past_due", "amber"), ("suspended", "red"), "gray"),
        variant="soft",
        high_contrast=True,
    )


def contact_href() -> rx.Var:
    """Contact us, told which page the person was on (the form sends it along)."""
    return routes.CONTACT + "?from=" + rx.State.router.page.path
