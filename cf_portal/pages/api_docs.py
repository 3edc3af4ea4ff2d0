"""Settings → API documentation: how a product asks who may use it (the entitlements API) and how it checks the
webhooks it is sent. The examples are services/api_guide.py's, with this portal's address."""

from __future__ import annotations

import reflex as rx

from cf_portal import routes
from cf_portal.api import API_RATE, ENTITLEMENTS_CHECK, OPENAPI
from cf_portal.components.common import loading_rows
from cf_portal.components.shell import page_shell
from cf_portal.pages.api_keys import back_to_settings
from cf_portal.services.api_guide import WEBHOOK_RECEIVER
from cf_portal.services.entitlements import MAX_BATCH, MAX_PAGE, ProductCode
from cf_portal.services.webhooks import RETRY_DELAYS, SIGNATURE_HEADER, TOLERANCE_S
from cf_portal.state.api_docs import ApiDocsState as S

HOLDERS = f"{routes.API_V1}/products/<code>/holders"
ERRORS = [
    ("400", "A parameter is missing or wrong (the message says which)."),
    ("401", "No API key, or one that is unknown or revoked."),
    ("403", "The key may not do this."),
    ("404", "No product has this code, or there is no such route."),
    ("413", "The body is larger than 1 MB."),
    ("429", "Past the key's rate: wait the seconds the Retry-After header gives, then try again."),
]


def code_block(text: str | rx.Var, label: str) -> rx.Component:
    """Code to read and copy: scrolls sideways on its own (focusable, so a keyboard can scroll it too)."""
    return rx.el.pre(
        rx.el.code(text),
        tab_index=0, role="region", aria_label=label,
        font_family="ui-monospace, SFMono-Regular, Menlo, Consolas, monospace", font_size="13px", line_height="1.5",
        background=rx.color("gray", 2), color=rx.color("gray", 12), border=f"1px solid {rx.color('gray', 6)}",
        border_radius="8px", padding="12px 14px", overflow_x="auto", white_space="pre", width="100%", margin="0",
    )


def section(title: str, *children: rx.Component) -> rx.Component:
    return rx.card(rx.vstack(rx.heading(title, as_="h2", size="5"), *children, spacing="3", width="100%",
                             align="stretch"), width="100%")


def endpoint(method: str, path: str, what: str) -> rx.Component:
    return rx.el.li(
        rx.vstack(
            rx.text(rx.code(f"{method} {path}", word_break="break-all"), weight="medium"),
            rx.text(what, size="2"),
            spacing="1",
        ),
        margin_bottom="8px",
    )


def product_row(product: ProductCode) -> rx.Component:
    return rx.table.row(rx.table.row_header_cell(rx.code(product.code)), rx.table.cell(product.name))


def api_section() -> rx.Component:
    return section(
        "Entitlements API",
        rx.text("Products ask this portal whether a person may use them. Every request sends an API key of your "
                "account and is answered from your account only: nobody else's people, licenses or products.",
                size="2"),
        rx.heading("Authentication", as_="h3", size="3"),
        rx.text("Owners create keys in ", rx.link("Settings → API keys", href=routes.API_KEYS, underline="always"),
                ". Send the key in the Authorization header of every request:", size="2"),
        code_block("Authorization: Bearer cfk_live_…", "Authorization header"),
        rx.text("Keys of a demo account begin with cfk_demo_. A revoked key is refused at once.", size="2"),
        rx.heading("Base URL", as_="h3", size="3"),
        code_block(S.guide.base_url + routes.API_V1, "Base URL"),
        rx.heading("Endpoints", as_="h3", size="3"),
        rx.el.ul(
            endpoint("GET", f"{ENTITLEMENTS_CHECK}?product=<code>&email=<email>",
                     "May this person use this product? Answers entitled true or false, the holder, the license and "
                     "since when. An unknown email, a deactivated person or a suspended or canceled license answer "
                     "entitled: false, never an error."),
            endpoint("POST", ENTITLEMENTS_CHECK,
                     f'The same for up to {MAX_BATCH:,} emails of one product: JSON {{"product": "<code>", '
                     '"emails": [...]}, answered in the order sent.'),
            endpoint("GET", f"{HOLDERS}?cursor=<cursor>&limit=<n>",
                     f"Everyone entitled to the product, up to {MAX_PAGE:,} a page: pass next_cursor back as cursor "
                     "until it is null."),
            endpoint("GET", OPENAPI, "The OpenAPI 3.1 description of these routes (no key needed)."),
            padding_left="20px", margin="0",
        ),
        rx.heading("Product codes", as_="h3", size="3"),
        rx.box(
            rx.table.root(
                rx.table.header(rx.table.row(rx.table.column_header_cell("Code"),
                                             rx.table.column_header_cell("Product"))),
                rx.table.body(rx.foreach(S.guide.products, product_row)),
                variant="surface", size="1",
            ),
            width="100%",
        ),
        rx.heading("Errors", as_="h3", size="3"),
        rx.text('Errors are JSON: {"error": {"message": "…", "code": "…"}}, the message written for people.',
                size="2"),
        rx.el.ul(*[rx.el.li(rx.text(rx.text.strong(status), " ", meaning, size="2")) for status, meaning in ERRORS],
                 padding_left="20px", margin="0"),
        rx.heading("Rate limit", as_="h3", size="3"),
        rx.text(f"{API_RATE.rate:g} requests a second per key, in bursts of up to {API_RATE.burst}. Past it the API "
                "answers 429 with a Retry-After header: the seconds to wait before the next request.", size="2"),
        rx.heading("curl", as_="h3", size="3"),
        code_block(S.guide.curl_example, "curl examples"),
        rx.heading("Python (httpx)", as_="h3", size="3"),
        code_block(S.guide.httpx_example, "Python (httpx) example"),
    )


def webhooks_section() -> rx.Component:
    retries = ", ".join(f"{int(delay.total_seconds() // 60)} min" if delay.total_seconds() < 3600
                        else f"{int(delay.total_seconds() // 3600)} h" for delay in RETRY_DELAYS)
    return section(
        "Webhooks",
        rx.text("Instead of asking, a product can be told. Owners add endpoints in ",
                rx.link("Settings → Webhooks", href=routes.WEBHOOKS, underline="always"),
                "; each gets its own signing secret, shown once. The portal then posts a JSON event to the "
                "endpoint when one of these happens:", size="2"),
        rx.el.ul(rx.foreach(S.guide.event_types, lambda kind: rx.el.li(rx.code(kind))),
                 padding_left="20px", margin="0"),
        rx.text('Every event has an "id" (evt_…), a "type", a "created" time and its "data". A delivery that is '
                f"not answered with a 2xx status is tried again after {retries}: it may come more than once, so "
                "skip an id you have already handled.", size="2"),
        rx.heading("Signatures", as_="h3", size="3"),
        rx.text(f"Each delivery has a {SIGNATURE_HEADER} header: the time it was signed (Unix seconds) and the "
                'HMAC-SHA256, in hex, of that time, a dot and the raw body, keyed with the endpoint\'s secret:',
                size="2"),
        code_block(f"{SIGNATURE_HEADER}: t=1764936000,v1=5f2b…(64 hex digits)", "Signature header"),
        rx.text(f"Check it on the raw bytes before parsing the JSON, and refuse a time more than {TOLERANCE_S // 60} "
                "minutes away from yours (a replay). In Python:", size="2"),
        code_block(WEBHOOK_RECEIVER, "Python webhook receiver"),
    )


def api_docs_page() -> rx.Component:
    return page_shell(
        rx.vstack(
            back_to_settings(),
            rx.cond(S.guide, rx.vstack(api_section(), webhooks_section(), spacing="4", width="100%"),
                    loading_rows()),
            spacing="4", width="100%",
        ),
        title="API documentation",
    )
