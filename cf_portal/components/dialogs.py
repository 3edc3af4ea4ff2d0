"""The confirmation dialog: a question before something that cannot be undone, with Cancel and a red action."""

from __future__ import annotations

import reflex as rx


def confirm_dialog(title: str | rx.Component | rx.Var, description: str | rx.Component | rx.Var, *, action: str,
                   on_confirm: rx.EventHandler, open: rx.Var, on_open_change: rx.EventHandler | None = None,  # noqa: A002
                   on_cancel: rx.EventHandler | None = None, cancel_label: str | rx.Var = "Cancel",
                   show_action: rx.Var | bool = True, closes_on_confirm: bool = True, busy: rx.Var | bool = False,
                   max_width: str | None = None) -> rx.Component:
    """An alert dialog asking `title`, explaining `description`, with Cancel and a red `action` button (high
    contrast, so its text keeps AA contrast). With `closes_on_confirm=False` the dialog stays open, its button
    `busy`, until the state closes it (a slow provider call)."""
    confirm = rx.button(action, color_scheme="red", high_contrast=True, size="3", on_click=on_confirm, loading=busy)
    cancel = rx.button(cancel_label, variant="soft", color_scheme="gray", size="3", disabled=busy,
                       **({"on_click": on_cancel} if on_cancel is not None else {}))
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title(title),
            rx.alert_dialog.description(description),
            rx.hstack(
                rx.alert_dialog.cancel(cancel),
                rx.cond(show_action, rx.alert_dialog.action(confirm) if closes_on_confirm else confirm),
                justify="end", spacing="3", width="100%", margin_top="16px",
            ),
            **({"max_width": max_width} if max_width else {}),
        ),
        open=open,
        **({"on_open_change": on_open_change} if on_open_change is not None else {}),
    )
