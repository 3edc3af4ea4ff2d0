"""The accessibility statement: open to anyone (no sign-in; its only state is the support address), linked from the sign-in pages and from
the signed-in menu. What it says about testing is what tests/e2e/test_accessibility.py and the axe checks of
the other end-to-end tests do: keep the two in step."""

from __future__ import annotations

import reflex as rx

from cf_portal import routes
from cf_portal.components.shell import brand
from cf_portal.state.emails import SupportState

STATEMENT_DATE = "5 December 2026"


def section(title: str, *children: rx.Component) -> rx.Component:
    return rx.el.section(rx.heading(title, as_="h2", size="5", margin_bottom="8px"), *children,
                         class_name="statement-section")


def bullets(*items: str | rx.Component) -> rx.Component:
    return rx.el.ul(*[rx.el.li(item) for item in items], class_name="statement-list")


def accessibility_page() -> rx.Component:
    return rx.el.main(
        rx.vstack(
            rx.link(brand(), href=routes.LICENSES, underline="none", aria_label="ChatFortress portal home",
                    color=rx.color("gray", 12)),
            rx.heading("Accessibility statement", as_="h1", size="7"),
            rx.text("We want everyone who looks after their team's ChatFortress licenses to be able to use this "
                    "portal: with a keyboard alone, with a screen reader, zoomed in, or on a phone."),
            section(
                "Conformance",
                rx.text("The ChatFortress customer portal conforms to the Web Content Accessibility Guidelines "
                        "(WCAG) 2.2 at level AA, apart from the known limitations listed below. This covers every "
                        "page of the portal: sign-in, account creation, invitations, Licenses, Add License, "
                        "Manage license, Employees, Billing, Members, Settings, Sent emails and Contact us."),
            ),
            section(
                "How we test it",
                rx.text("Every change to the portal runs these checks automatically, in Chromium, on a desktop "
                        "window and on a 390-pixel-wide phone layout:"),
                bullets(
                    "axe-core checks each page and each dialog, in the states the end-to-end tests reach, and "
                    "fails the change on any violation.",
                    "Lighthouse's accessibility audit must score 100 on every page, signed-in pages included.",
                    "A whole purchase on Add License (name, product and plan, number of licenses, coupon, "
                    "adding a card, Create) is completed with the keyboard alone: Tab, Shift+Tab, Enter, Space "
                    "and the arrow keys, no mouse.",
                    "Every button, link and field on the main pages is measured: at least 24 × 24 CSS pixels "
                    "on a desktop and 44 × 44 on a phone. Links inside a sentence are exempt, as WCAG 2.5.8 "
                    "allows.",
                    "Tabbing through a long page checks that the focused control is never hidden under the "
                    "sticky header, and that focus stays inside an open dialog.",
                    "The price on Add License is announced by screen readers when it changes (a polite live "
                    "region).",
                ),
            ),
            section(
                "Known limitations",
                bullets(
                    "Automated checks find many problems but not all of them. The portal has not yet been "
                    "reviewed by an outside auditor or in sessions with people who use assistive technology "
                    "every day.",
                    "We test in Chromium. We expect Firefox and Safari, and screen readers such as NVDA, JAWS "
                    "and VoiceOver, to work, but they are not part of the automated tests.",
                    "When the portal takes card payments through Stripe, the card fields and the bank's "
                    "confirmation step (3-D Secure) are Stripe's own pages and frames; their accessibility is "
                    "Stripe's.",
                    "Downloaded documents such as invoice PDFs are not tagged for screen readers; the same "
                    "details are on the Billing page.",
                ),
            ),
            section(
                "Report a problem",
                rx.text("If something in the portal is hard or impossible for you to use, please tell us: say "
                        "which page, what you tried and what assistive technology you use, if any. ",
                        "Email ", rx.link(SupportState.support_email, href="mailto:" + SupportState.support_email,
                                          underline="always"),
                        " or, signed in, use ", rx.link("Contact us", href=routes.CONTACT, underline="always"),
                        " in the menu: we will fix what we can and, in the meantime, help you get it done another "
                        "way."),
            ),
            rx.text(f"This statement was prepared on {STATEMENT_DATE}.", size="2", color_scheme="gray"),
            rx.link("Go to the portal", href=routes.LICENSES, underline="always"),
            spacing="5",
            width="100%",
            max_width="720px",
        ),
        id="main",
        display="flex",
        justify_content="center",
        padding=["32px 16px", "48px 24px"],
        min_height="100vh",
    )
