"""Settings → Webhooks (owners): the endpoints told of seat and license changes, each endpoint's delivery log with
Resend, and the dialogs that add an endpoint and roll its signing secret (shown once)."""

from __future__ import annotations

import reflex as rx

from cf_portal.components.common import empty_state, loading_rows
from cf_portal.components.dialogs import confirm_dialog
from cf_portal.components.forms import dialog_buttons, field_error, labelled
from cf_portal.components.shell import page_shell
from cf_portal.services.webhooks import AttemptView, EndpointView, EventView
from cf_portal.state.webhooks import (
    EVENT_TYPES,
    NEW_SECRET_INPUT,
    ROLLED_SECRET_INPUT,
    AddEndpointState,
    RollSecretState,
)
from cf_portal.state.webhooks import WebhooksState as S

WHEN = "YYYY-MM-DD HH:mm"


def when(moment: rx.Var) -> rx.Component:
    return rx.moment(moment, format=WHEN)


def secret_once(input_id: str, shown: rx.Var, done: rx.Component) -> rx.Component:
    """The signing secret in a read-only input, with Copy. The input is mounted (hidden) while its dialog is open,
    so the handler's `rx.set_value` always finds it; the secret is in no state var. (Reflex's call_script text
    takes no braces.)"""
    field = f"document.getElementById('{input_id}')"
    return rx.vstack(
        labelled("Signing secret",
                 rx.input(id=input_id, read_only=True, size="3", font_family="monospace",
                          on_focus=rx.call_script(f"{field}.select()")),
                 field_id=input_id),
        rx.text("Copy it now and keep it with your receiver: it will not be shown again. Check each delivery's "
                "CF-Signature header with it.", size="2"),
        rx.hstack(
            rx.button(rx.icon("copy", size=16, aria_hidden="true"), "Copy", size="3", variant="soft", type="button",
                      on_click=[rx.call_script(f"navigator.clipboard.writeText({field}.value).catch(() => {field}.select())"),
                                rx.toast.success("Secret copied.")]),
            done,
            justify="end", spacing="3", width="100%",
        ),
        spacing="4", width="100%", display=rx.cond(shown, "flex", "none"),
    )


# --- The endpoints --------------------------------------------------------------------------------------------


def endpoint_card(endpoint: EndpointView) -> rx.Component:
    return rx.el.li(
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.text(endpoint.url, weight="medium", font_family="monospace", word_break="break-all",
                            flex="1", min_width="0"),
                    rx.cond(endpoint.enabled,
                            rx.badge("Enabled", color_scheme="green", variant="soft", high_contrast=True),
                            rx.badge("Paused", color_scheme="amber", variant="soft", high_contrast=True)),
                    align="start", spacing="3", width="100%",
                ),
                rx.cond(endpoint.description != "", rx.text(endpoint.description, size="2")),
                rx.hstack(rx.foreach(endpoint.event_types,
                                     lambda kind: rx.badge(kind, variant="outline", color_scheme="gray",
                                                           high_contrast=True)),
                          spacing="1", wrap="wrap", aria_label="Events"),
                rx.text("Added ", when(endpoint.created_at), size="1", color_scheme="gray"),
                rx.hstack(
                    rx.button(rx.icon("list", size=16, aria_hidden="true"), "Delivery log", size="2",
                              variant="soft", on_click=S.show_log(endpoint.id),
                              aria_label="Delivery log of " + endpoint.url),
                    rx.cond(endpoint.enabled,
                            rx.button("Pause", size="2", variant="soft", color_scheme="gray",
                                      on_click=S.set_enabled(endpoint.id, False),
                                      aria_label="Pause " + endpoint.url),
                            rx.button("Resume", size="2", variant="soft", color_scheme="gray",
                                      on_click=S.set_enabled(endpoint.id, True),
                                      aria_label="Resume " + endpoint.url)),
                    rx.button("Roll secret", size="2", variant="soft", color_scheme="gray",
                              on_click=RollSecretState.ask_roll(endpoint.id, endpoint.url),
                              aria_label="Roll the secret of " + endpoint.url),
                    rx.button("Delete", size="2", variant="soft", color_scheme="red",
                              on_click=S.ask_delete(endpoint.id, endpoint.url),
                              aria_label="Delete " + endpoint.url),
                    spacing="2", wrap="wrap",
                ),
                spacing="2", width="100%",
            ),
            width="100%",
        ),
        list_style="none",
    )


def endpoints_list() -> rx.Component:
    return rx.cond(
        S.endpoints.length() > 0,
        rx.el.ul(rx.foreach(S.endpoints, endpoint_card), aria_label="Endpoints", padding="0", margin="0",
                 display="flex", flex_direction="column", gap="12px", width="100%"),
        empty_state("webhook", "No endpoints yet",
                    "Add the address of a receiver and it is told, within seconds, when a seat is assigned, freed or "
                    "moved and when a license is suspended or canceled.",
                    rx.button(rx.icon("plus", size=16, aria_hidden="true"), "Add endpoint", size="3",
                              on_click=AddEndpointState.open_add)),
    )


# --- The delivery log -----------------------------------------------------------------------------------------


def event_status(event: EventView) -> rx.Component:
    return rx.match(
        event.status,
        ("delivered", rx.badge("Delivered", color_scheme="green", variant="soft", high_contrast=True)),
        ("failed", rx.badge("Failed", color_scheme="red", variant="soft", high_contrast=True)),
        rx.cond(
            event.attempts > 0,
            rx.hstack(rx.badge("Retrying", color_scheme="amber", variant="soft", high_contrast=True),
                      rx.cond(event.next_attempt_at,
                              rx.text("next attempt at ", when(event.next_attempt_at), size="1")),
                      spacing="2", align="center", wrap="wrap"),
            rx.badge("Queued", color_scheme="gray", variant="soft", high_contrast=True),
        ),
    )


def last_answer(event: EventView) -> rx.Component:
    return rx.cond(event.last_error != "", rx.text(event.last_error, size="2"),
                   rx.cond(event.last_status_code, rx.text("HTTP ", event.last_status_code, size="2"),
                           rx.text("No attempt yet", size="2", color_scheme="gray")))


def log_entry(event: EventView) -> rx.Component:
    return rx.el.li(
        rx.vstack(
            rx.hstack(
                rx.text(event.type, weight="medium"),
                event_status(event),
                spacing="3", align="center", wrap="wrap",
            ),
            rx.text(event.event_id, " · ", when(event.created_at), size="1", color_scheme="gray",
                    font_family="monospace", word_break="break-all"),
            rx.text("Attempts: ", event.attempts, " · Last answer: ", last_answer(event), size="2",
                    as_="div", display="flex", gap="4px", flex_wrap="wrap"),
            rx.hstack(
                rx.button(rx.icon("send", size=16, aria_hidden="true"), "Resend", size="2", variant="soft",
                          on_click=S.resend(event.id), aria_label="Resend " + event.event_id),
                rx.button("Attempts", size="2", variant="soft", color_scheme="gray",
                          on_click=S.show_attempts(event.id, event.event_id),
                          aria_label="Attempts of " + event.event_id),
                spacing="2",
            ),
            spacing="1", width="100%",
        ),
        list_style="none", padding="12px", border=f"1px solid {rx.color('gray', 6)}", border_radius="8px",
    )


def delivery_log() -> rx.Component:
    return rx.cond(
        S.log_endpoint_id > 0,
        rx.el.section(
            rx.vstack(
                rx.hstack(
                    rx.heading("Delivery log", as_="h2", size="5", id="delivery-log-heading"),
                    rx.spacer(),
                    rx.button(rx.icon("refresh-cw", size=16, aria_hidden="true"), "Refresh", size="2",
                              variant="soft", on_click=S.refresh_log),
                    rx.button("Close log", size="2", variant="soft", color_scheme="gray", on_click=S.close_log),
                    align="center", spacing="2", width="100%", wrap="wrap",
                ),
                rx.text(S.log_endpoint_url, size="2", color_scheme="gray", font_family="monospace",
                        word_break="break-all"),
                rx.cond(
                    S.log.length() > 0,
                    rx.el.ul(rx.foreach(S.log, log_entry), aria_label="Events, newest first", padding="0",
                             margin="0", display="flex", flex_direction="column", gap="8px", width="100%"),
                    rx.text("Nothing sent to this endpoint yet: events appear here when seats or licenses change.",
                            color_scheme="gray"),
                ),
                rx.cond(
                    (S.log_offset > 0) | S.log_has_more,
                    rx.hstack(
                        rx.button("Newer", size="2", variant="soft", disabled=S.log_offset == 0,
                                  on_click=S.log_page(False)),
                        rx.button("Older", size="2", variant="soft", disabled=~S.log_has_more,
                                  on_click=S.log_page(True)),
                        spacing="2",
                    ),
                ),
                spacing="3", width="100%",
            ),
            aria_labelledby="delivery-log-heading", width="100%",
        ),
    )


def attempt_row(attempt: AttemptView) -> rx.Component:
    return rx.table.row(
        rx.table.cell(when(attempt.attempted_at)),
        rx.table.cell(rx.cond(attempt.error != "", attempt.error, rx.text("HTTP ", attempt.status_code))),
        rx.table.cell(attempt.duration_ms, " ms"),
    )


def attempts_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Attempts"),
            rx.dialog.description(rx.text("Every attempt to deliver ", rx.code(S.attempts_event), ", oldest first.",
                                          as_="span"),
                                  size="2"),
            rx.cond(
                S.attempts.length() > 0,
                rx.box(
                    rx.table.root(
                        rx.table.header(rx.table.row(rx.table.column_header_cell("When"),
                                                     rx.table.column_header_cell("Answer"),
                                                     rx.table.column_header_cell("Took"))),
                        rx.table.body(rx.foreach(S.attempts, attempt_row)),
                        variant="surface", width="100%",
                    ),
                    width="100%", overflow_x="auto", margin_top="12px",
                ),
                rx.text("Not tried yet: it is sent within a few seconds.", margin_top="12px"),
            ),
            rx.hstack(rx.dialog.close(rx.button("Close", size="3", variant="soft", color_scheme="gray")),
                      justify="end", width="100%", margin_top="16px"),
            max_width="560px",
        ),
        open=S.attempts_event != "", on_open_change=S.set_attempts_open,
    )


# --- The dialogs ----------------------------------------------------------------------------------------------


def event_checkbox(kind: str) -> rx.Component:
    return rx.checkbox(kind, checked=AddEndpointState.events.contains(kind),
                       on_change=lambda checked: AddEndpointState.set_event(kind, checked), size="2",
                       min_height="32px", align="center")


def add_dialog() -> rx.Component:
    A = AddEndpointState  # noqa: N806
    made = A.created_url != ""
    form = rx.vstack(
        labelled("Endpoint URL",
                 rx.input(id="endpoint_url", type="url", value=A.url, on_change=A.set_url, size="3",
                          placeholder="https://example.com/webhooks", max_length=2000,
                          aria_invalid=rx.cond(A.url_error != "", "true", "false"),
                          aria_describedby="endpoint_url-error"),
                 field_id="endpoint_url", error=A.url_error),
        labelled("Description (optional)",
                 rx.input(id="endpoint_description", value=A.description, on_change=A.set_description, size="3",
                          max_length=120),
                 field_id="endpoint_description"),
        rx.el.fieldset(
            rx.el.legend("Events", class_name="field-label"),
            *[event_checkbox(kind) for kind in EVENT_TYPES],
            field_error(A.events_error, "endpoint_events-error"),
            border="none", padding="0", margin="0", display="flex", flex_direction="column", gap="2px",
            aria_describedby="endpoint_events-error",
        ),
        dialog_buttons(rx.button("Add endpoint", size="3", on_click=A.create)),
        spacing="4", width="100%", display=rx.cond(made, "none", "flex"),
    )
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Add endpoint"),
            rx.dialog.description(
                rx.cond(made,
                        rx.text("Endpoint added: ", rx.text.strong(A.created_url, word_break="break-all"), ".", as_="span"),
                        "Each event is posted as JSON, signed with the endpoint's own secret."),
                size="2", margin_bottom="12px",
            ),
            form,
            secret_once(NEW_SECRET_INPUT, made, rx.dialog.close(rx.button("Done", size="3"))),
            max_width="520px",
        ),
        open=A.is_open, on_open_change=A.set_open,
    )


def roll_dialog() -> rx.Component:
    R = RollSecretState  # noqa: N806
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title(rx.cond(R.rolled, "New signing secret", "Roll the signing secret?")),
            rx.alert_dialog.description(
                rx.cond(R.rolled,
                        rx.text("For ", rx.text.strong(R.roll_url, word_break="break-all"), ".", as_="span"),
                        rx.text("A new secret signs every delivery to ", rx.text.strong(R.roll_url,
                                                                                        word_break="break-all"),
                                " from now on; the old one stops working at once.", as_="span")),
                size="2", margin_bottom="12px",
            ),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray", size="3")),
                rx.button("Roll secret", color_scheme="red", high_contrast=True, size="3", on_click=R.roll),
                justify="end", spacing="3", width="100%", display=rx.cond(R.rolled, "none", "flex"),
            ),
            secret_once(ROLLED_SECRET_INPUT, R.rolled, rx.alert_dialog.cancel(rx.button("Done", size="3"))),
            max_width="520px",
        ),
        open=R.roll_id > 0, on_open_change=R.set_roll_open,
    )


def delete_dialog() -> rx.Component:
    return confirm_dialog("Delete this endpoint?",
                          rx.text(rx.text.strong(S.delete_url, word_break="break-all"), " is told of nothing more, "
                                  "and its delivery log is deleted with it.", as_="span"),
                          action="Delete", on_confirm=S.delete, open=S.delete_id > 0, on_cancel=S.cancel_delete)


def owners_only() -> rx.Component:
    return rx.callout("Only owners can manage webhooks. Ask an owner of the account to add or change endpoints.",
                      icon="lock", color_scheme="gray", high_contrast=True, width="100%")


def webhooks_page() -> rx.Component:
    return page_shell(
        rx.vstack(
            rx.hstack(
                rx.text("Your products are told when a seat or license changes, without asking: each event is "
                        "posted to your endpoints, signed, and tried again until it is delivered.",
                        color_scheme="gray", flex="1", min_width="240px"),
                rx.cond(S.allowed & (S.endpoints.length() > 0),
                        rx.button(rx.icon("plus", size=16, aria_hidden="true"), "Add endpoint", size="3",
                                  on_click=AddEndpointState.open_add)),
                align="center", spacing="3", width="100%", wrap="wrap",
            ),
            rx.cond(
                S.loaded,
                rx.cond(S.allowed, rx.vstack(endpoints_list(), delivery_log(), spacing="5", width="100%"),
                        owners_only()),
                loading_rows(),
            ),
            add_dialog(),
            roll_dialog(),
            delete_dialog(),
            attempts_dialog(),
            spacing="4", width="100%",
        ),
        title="Webhooks",
    )
