"""Form pieces: a labelled field with its message, and a native select styled like the theme."""

from __future__ import annotations

import reflex as rx


def field_error(message: rx.Var, error_id: str) -> rx.Component:
    return rx.cond(
        message != "",
        rx.text(rx.icon("circle-alert", size=14, aria_hidden="true"), message, id=error_id, color_scheme="red",
                size="2", display="flex", align_items="center", gap="4px", role="alert"),
    )


def field_hint(hint: str | list, hint_id: str) -> rx.Component:
    return rx.text(*(hint if isinstance(hint, list) else [hint]), size="1", color_scheme="gray", id=hint_id)


def described_by(control: rx.Component, *ids: str) -> None:
    """Add `ids` to the control's aria-describedby (after any it names already), so a screen reader reads its hint
    and its message after its label. A describedby computed in the browser (a Var) is left as the page set it."""
    current = control.custom_attrs.get("aria-describedby", "")
    if isinstance(current, str):
        control.custom_attrs["aria-describedby"] = " ".join(dict.fromkeys([*current.split(), *ids]))


def labelled(label: str, control: rx.Component, *, field_id: str, error: rx.Var | None = None,
             hint: str | list | None = None) -> rx.Component:
    """A label above its control, an optional hint, and the field's message next to it. The control whose id is
    `field_id` is described by the hint and the message (`aria-describedby`), whatever the page passed."""
    ids = [f"{field_id}-hint"] * (hint is not None) + [f"{field_id}-error"] * (error is not None)
    if ids and control.id == field_id:
        described_by(control, *ids)
    return rx.vstack(
        rx.el.label(label, html_for=field_id, class_name="field-label"),
        control,
        *([field_hint(hint, f"{field_id}-hint")] if hint is not None else []),
        *([field_error(error, f"{field_id}-error")] if error is not None else []),
        spacing="1",
        width="100%",
        align="stretch",
    )


def labelled_group(legend: str, *controls: rx.Component, group_id: str, error: rx.Var | None = None,
                   hint: str | list | None = None) -> rx.Component:
    """A group of controls (radio buttons) under its legend, with an optional hint and the group's message; the
    fieldset is described by both."""
    ids = [f"{group_id}-hint"] * (hint is not None) + [f"{group_id}-error"] * (error is not None)
    return rx.el.fieldset(
        rx.el.legend(legend, class_name="field-label", style={"margin_bottom": "4px"}),
        *([field_hint(hint, f"{group_id}-hint")] if hint is not None else []),
        rx.box(*controls, margin_top="8px", width="100%"),
        *([field_error(error, f"{group_id}-error")] if error is not None else []),
        id=group_id,
        class_name="field-group",
        **({"aria_describedby": " ".join(ids)} if ids else {}),
    )


def native_select(options: rx.Component, *, field_id: str, value: rx.Var, on_change, invalid: rx.Var | None = None,  # noqa: ANN001
                  name: str | None = None) -> rx.Component:
    """A native <select>: it opens the phone's own picker and works with every screen reader."""
    return rx.el.select(
        options,
        id=field_id,
        name=name or field_id,
        value=value,
        on_change=on_change,
        class_name="native-select",
        aria_invalid=invalid if invalid is not None else "false",
        aria_describedby=f"{field_id}-error",
    )


def dialog_buttons(primary: rx.Component) -> rx.Component:
    """A dialog's footer: Cancel (closes it) and the dialog's own action, on the right."""
    return rx.hstack(
        rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray", size="3", type="button")),
        primary,
        justify="end", spacing="3", width="100%",
    )
