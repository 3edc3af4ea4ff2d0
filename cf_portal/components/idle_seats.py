"""The Idle seats panel of the Licenses page: seats paid for and not used, what they cost a month, and one action per
license ("Reduce to N at renewal" or "Free these seats"), each confirmed first. A member whose role may not take
the action reads who can instead of a button."""

from __future__ import annotations

import reflex as rx

from cf_portal.components.dialogs import confirm_dialog
from cf_portal.services.idle_seats import IdleLicense
from cf_portal.state.idle_seats import ACTION_ID_PREFIX, HEADING_ID
from cf_portal.state.idle_seats import IdleSeatsState as S


def _line(*children: rx.Component | str | rx.Var) -> rx.Component:
    return rx.el.li(rx.text(*children, size="2"))


def _action(row: IdleLicense, kind: str, allowed: rx.Var, who: str) -> rx.Component:
    button = rx.button(row.action_label, size="2", variant="soft", on_click=S.ask(row.license_id),
                       disabled=S.working, aria_label=row.action_label + " (" + row.reference_name + ")",
                       id=ACTION_ID_PREFIX + row.license_id.to_string())
    return rx.cond(row.action == kind, rx.cond(allowed, button, rx.text(who, size="2", color_scheme="gray")))


def idle_license(row: IdleLicense) -> rx.Component:
    return rx.el.li(
        rx.flex(
            rx.vstack(
                rx.text(rx.text.strong(row.reference_name), " · ", row.product, " ", row.plan, size="2"),
                rx.el.ul(
                    rx.cond(row.unassigned > 0, _line(row.unassigned.to_string(), " unassigned · ",
                                                      row.unassigned_cost_display, " a month")),
                    rx.cond(row.deactivated_text != "", _line(row.deactivated_text, " · ",
                                                              row.deactivated_cost_display, " a month")),
                    rx.cond(row.unused_text != "", _line(row.unused_text, " · ", row.unused_cost_display, " a month")),
                    rx.cond(row.scheduled != "", _line("Already scheduled: ", row.scheduled)),
                    rx.cond(row.note != "", _line(row.note)),
                    class_name="idle-seats-lines",
                ),
                spacing="1",
                flex="1 1 220px",
                min_width="0",
            ),
            _action(row, "reduce", S.can_reduce, "Owners and billing admins can reduce licenses."),
            _action(row, "free", S.can_free, "Owners and license admins can free these seats."),
            align="center", gap="12px", wrap="wrap", width="100%",
        ),
        padding="10px 12px", border=f"1px solid {rx.color('gray', 6)}", border_radius="8px",
    )


def reduce_dialog() -> rx.Component:
    row = S.confirm_license
    return confirm_dialog(
        rx.cond(row, "Reduce " + row.reference_name + " at renewal?", "Reduce at renewal"),
        rx.cond(row, row.confirm_text, ""),
        action="Reduce at renewal", on_confirm=S.reduce, open=S.confirm_kind == "reduce",
        on_open_change=S.set_confirm_open, closes_on_confirm=False, busy=S.working, max_width="480px",
    )


def free_dialog() -> rx.Component:
    row = S.confirm_license
    return confirm_dialog(
        rx.cond(row, "Free the seats of deactivated people on " + row.reference_name + "?", "Free these seats"),
        rx.cond(row, row.confirm_text, ""),
        action="Free seats", on_confirm=S.free, open=S.confirm_kind == "free", on_open_change=S.set_confirm_open,
        closes_on_confirm=False, busy=S.working, max_width="480px",
    )


def idle_seats_panel() -> rx.Component:
    """The panel, once loaded and only for an account with licenses that renew."""
    return rx.cond(
        S.loaded & S.has_licenses,
        rx.el.section(
            rx.card(
                rx.vstack(
                    rx.heading("Idle seats", as_="h2", size="4", id=HEADING_ID, tab_index=-1),
                    rx.cond(
                        S.has_idle_seats,
                        rx.fragment(
                            rx.text(S.panel.summary, weight="medium"),
                            rx.text("Seats paid for that nobody uses, and what each license can do about it.",
                                    size="2", color_scheme="gray"),
                            rx.el.ul(rx.foreach(S.panel.licenses, idle_license), class_name="idle-seats-list"),
                        ),
                        rx.vstack(
                            rx.text("No idle seats", weight="medium"),
                            rx.text("Every seat you pay for is held by an active person.", size="2",
                                    color_scheme="gray"),
                            spacing="1",
                        ),
                    ),
                    spacing="3",
                    width="100%",
                ),
                width="100%",
            ),
            reduce_dialog(),
            free_dialog(),
            aria_labelledby=HEADING_ID,
            width="100%",
            margin_top="24px",
        ),
    )
