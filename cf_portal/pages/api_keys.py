"""Settings → API keys: the keys the ChatFortress products call the entitlements API with. Owners make them (the
key is shown once, in the dialog), list and revoke them; other members read why they cannot."""

from __future__ import annotations

import reflex as rx

from cf_portal import routes
from cf_portal.api import API_RATE
from cf_portal.components.common import empty_state, loading_rows
from cf_portal.components.dialogs import confirm_dialog
from cf_portal.components.forms import dialog_buttons, labelled
from cf_portal.components.shell import page_shell
from cf_portal.services.api_keys import MAX_NAME_LENGTH, ApiKeyRow
from cf_portal.state.api_keys import NEW_KEY_INPUT
from cf_portal.state.api_keys import ApiKeysState as S

NAME_INPUT = "api_key_name"
# Copies the new key from its input (the only place it is): the state never had it.
COPY_NEW_KEY = (f"(() => {{ const input = document.getElementById({NEW_KEY_INPUT!r}); input.select();"
                " navigator.clipboard.writeText(input.value).catch(() => document.execCommand('copy')); })()")


def back_to_settings() -> rx.Component:
    return rx.link(rx.icon("arrow-left", size=16, aria_hidden="true"), "Settings", href=routes.ACCOUNT_SETTINGS,
                   display="inline-flex", align_items="center", gap="6px", size="2")


def rate_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Using a key", as_="h2", size="4"),
            rx.text("A product sends its key with every request: ", rx.code("Authorization: Bearer cfk_live_…"),
                    ". A key answers for this account only.", size="2"),
            rx.text(f"Rate limit: {API_RATE.rate:g} requests a second per key, in bursts of up to {API_RATE.burst}. "
                    "Past it the API answers 429 with Retry-After, the seconds to wait.", size="2"),
            rx.link("API documentation: endpoints, product codes and examples", href=routes.API_DOCS, size="2"),
            spacing="2", align="start",
        ),
        width="100%",
    )


def key_card(key: ApiKeyRow) -> rx.Component:
    def item(label: str, value: rx.Var | rx.Component) -> rx.Component:
        return rx.data_list.item(rx.data_list.label(label, min_width="96px"), rx.data_list.value(value))

    return rx.card(
        rx.flex(
            rx.vstack(
                rx.heading(key.name, as_="h2", size="3", word_break="break-word"),
                rx.data_list.root(
                    item("Key", rx.code(key.prefix, variant="ghost")),
                    item("Created", key.created),
                    item("Last used", key.last_used),
                    item("Status", rx.badge(key.status, color_scheme=rx.cond(key.revoked, "gray", "green"),
                                            variant="soft", high_contrast=True)),
                    size="2", orientation=rx.breakpoints(initial="vertical", sm="horizontal"),
                ),
                spacing="2", flex="1", min_width="0",
            ),
            rx.cond(
                ~key.revoked,
                rx.button(rx.icon("ban", size=16, aria_hidden="true"), "Revoke", variant="soft", color_scheme="red",
                          size="2", on_click=S.ask_revoke(key.id, key.name), aria_label=f"Revoke {key.name}"),
            ),
            direction=rx.breakpoints(initial="column", sm="row"), gap="12px", align=rx.breakpoints(
                initial="start", sm="center"), width="100%",
        ),
        width="100%", role="listitem",
    )


def keys_list() -> rx.Component:
    return rx.cond(
        S.keys.length() > 0,
        rx.vstack(rx.foreach(S.keys, key_card), spacing="3", width="100%", role="list", aria_label="API keys"),
        empty_state("key-round", "No API keys yet",
                    "An API key lets a ChatFortress product ask this portal who may use it. Create one for each "
                    "product or script, so you can revoke one without stopping the others."),
    )


def create_dialog() -> rx.Component:
    made = S.created_name != ""
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(rx.cond(made, "API key created", "Create API key")),
            rx.dialog.description(
                rx.cond(made, rx.text("Copy it now: it will not be shown again. Put it where ",
                                      rx.text.strong(S.created_name), " keeps its secrets."),
                        "The key may check which people of this account may use which product."),
                size="2",
            ),
            # Both parts stay in the page while the dialog is open: the key is written into its input by an event
            # (rx.set_value), which needs the input to be there already.
            rx.box(
                rx.form(
                    rx.vstack(
                        labelled("Name",
                                 rx.input(id=NAME_INPUT, name="name", size="3", max_length=MAX_NAME_LENGTH,
                                          auto_complete="off",
                                          aria_invalid=rx.cond(S.name_error != "", "true", "false"),
                                          aria_describedby=f"{NAME_INPUT}-hint {NAME_INPUT}-error"),
                                 field_id=NAME_INPUT, error=S.name_error,
                                 hint="What will use it, like “Phishing Simulator”: the list shows keys by name."),
                        dialog_buttons(rx.button("Create", type="submit", size="3", loading=S.creating)),
                        spacing="4", width="100%",
                    ),
                    on_submit=S.create, reset_on_submit=False,
                ),
                display=rx.cond(made, "none", "block"), margin_top="12px",
            ),
            rx.box(
                rx.vstack(
                    labelled("Your new API key",
                             rx.input(id=NEW_KEY_INPUT, read_only=True, size="3", font_family="monospace",
                                      on_focus=rx.call_script(f"document.getElementById({NEW_KEY_INPUT!r}).select()")),
                             field_id=NEW_KEY_INPUT),
                    rx.hstack(
                        rx.button(rx.icon("copy", size=16, aria_hidden="true"), "Copy", size="3", variant="soft",
                                  type="button", on_click=[rx.call_script(COPY_NEW_KEY),
                                                           rx.toast.success("API key copied.")]),
                        rx.dialog.close(rx.button("Done", size="3", type="button")),
                        justify="end", spacing="3", width="100%",
                    ),
                    spacing="4", width="100%",
                ),
                display=rx.cond(made, "block", "none"), margin_top="12px",
            ),
            max_width="520px",
        ),
        open=S.create_open, on_open_change=S.set_create_open,
    )


def revoke_dialog() -> rx.Component:
    return confirm_dialog(rx.text("Revoke ", S.revoke_name, "?"),
                          "Every request with this key is refused from now on, at once. This cannot be undone: a "
                          "product that still uses it needs a new key.",
                          action="Revoke key", on_confirm=S.revoke, open=S.revoke_id > 0, on_cancel=S.cancel_revoke)


def api_keys_page() -> rx.Component:
    return page_shell(
        rx.vstack(
            back_to_settings(),
            rx.cond(
                S.loaded,
                rx.cond(
                    S.may_manage,
                    rx.vstack(
                        rx.flex(
                            rx.text("Keys the ChatFortress products use to ask who may use them.",
                                    color_scheme="gray", flex="1"),
                            rx.button(rx.icon("plus", size=16, aria_hidden="true"), "Create API key", size="3",
                                      on_click=S.open_create),
                            align="center", gap="12px", width="100%", wrap="wrap",
                        ),
                        keys_list(),
                        spacing="4", width="100%",
                    ),
                    rx.callout("Only owners can manage API keys. Ask an owner of your account to create one.",
                               icon="lock", color_scheme="gray", high_contrast=True, width="100%"),
                ),
                loading_rows(),
            ),
            rate_card(),
            create_dialog(),
            revoke_dialog(),
            spacing="4", width="100%",
        ),
        title="API keys",
    )
