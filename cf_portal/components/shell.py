"""The app shell: navigation (a sidebar on wide screens, a menu on phones) around a page."""

from __future__ import annotations

import reflex as rx
from reflex_components_core.el.elements.inline import A as PlainAnchor  # rx.el.a is a router link

from cf_portal import routes
from cf_portal.components.common import contact_href
from cf_portal.components.help import help_panel
from cf_portal.help_content import HelpTopic
from cf_portal.state.auth import AuthState
from cf_portal.state.emails import SupportState
from cf_portal.state.portal import PortalState

NAV = [
    ("Licenses", routes.LICENSES, "key-round"),
    ("Employees", routes.EMPLOYEES, "users"),
    ("Billing", routes.BILLING, "receipt"),
    ("Members", routes.MEMBERS, "user-cog"),
    ("Settings", routes.ACCOUNT_SETTINGS, "settings"),
]


def brand() -> rx.Component:
    return rx.hstack(
        rx.icon("shield-check", size=22, color=rx.color("indigo", 10), aria_hidden="true"),
        rx.text("ChatFortress", weight="bold", size="4"),
        align="center",
        spacing="2",
    )


def nav_link(label: str, href: str, icon: str) -> rx.Component:
    active = rx.State.router.page.path.startswith(href)
    return rx.link(
        rx.hstack(rx.icon(icon, size=18, aria_hidden="true"), rx.text(label, size="3"), align="center", spacing="3"),
        href=href,
        underline="none",
        aria_current=rx.cond(active, "page", "false"),
        color=rx.cond(active, rx.color("indigo", 11), rx.color("gray", 12)),
        background=rx.cond(active, rx.color("indigo", 3), "transparent"),
        border_radius="8px",
        padding_x="12px",
        min_height="44px",
        display="flex",
        align_items="center",
        width="100%",
        _hover={"background": rx.color("gray", 3)},
    )


def contact_link() -> rx.Component:
    return rx.link(
        rx.hstack(rx.icon("life-buoy", size=18, aria_hidden="true"), rx.text("Contact us", size="3"), align="center",
                  spacing="3"),
        href=contact_href(), underline="none", color=rx.color("gray", 12), border_radius="8px", padding_x="12px",
        min_height="44px", display="flex", align_items="center", width="100%",
        _hover={"background": rx.color("gray", 3)},
    )


def footer_links() -> rx.Component:
    """Links every page carries, signed in or not (the sidebar's foot, the sign-in pages)."""
    return rx.link("Accessibility", href=routes.ACCESSIBILITY, size="2", color_scheme="gray")


def support_footer() -> rx.Component:
    """The foot of the pages for people who are not signed in: the accessibility statement and the support
    address (signed in, the navigation has Contact us and its form)."""
    return rx.hstack(
        footer_links(),
        rx.text("·", size="2", color_scheme="gray", aria_hidden="true"),
        rx.link("Email support", href="mailto:" + SupportState.support_email, size="2", color_scheme="gray"),
        spacing="2", align="center", wrap="wrap", justify="center",
    )


def signed_in_as() -> rx.Component:
    return rx.vstack(
        rx.separator(size="4"),
        rx.vstack(
            rx.text(PortalState.user_name, size="2", weight="medium"),
            rx.text(PortalState.role_label, size="1", color_scheme="gray"),
            spacing="0",
        ),
        rx.button(rx.icon("log-out", size=16, aria_hidden="true"), "Sign out", variant="soft", color_scheme="gray",
                  size="2", on_click=AuthState.sign_out, width="100%"),
        footer_links(),
        spacing="3",
        width="100%",
    )


def sidebar() -> rx.Component:
    # A vertical banner: the brand, the account and the main navigation.
    return rx.el.header(
        rx.vstack(
            brand(),
            rx.text(PortalState.account_name, size="2", color_scheme="gray", padding_bottom="8px"),
            rx.el.nav(
                rx.vstack(*[nav_link(*item) for item in NAV], spacing="1", width="100%"),
                aria_label="Main",
                width="100%",
            ),
            rx.spacer(),
            contact_link(),
            signed_in_as(),
            spacing="3",
            padding="20px 16px",
            width="100%",
            height="100%",
        ),
        width="240px",
        min_width="240px",
        height="100vh",
        position="sticky",
        top="0",
        overflow_y="auto",
        border_right=f"1px solid {rx.color('gray', 5)}",
        background=rx.color("gray", 1),
    )


def mobile_bar() -> rx.Component:
    return rx.el.header(
        brand(),
        rx.menu.root(
            rx.menu.trigger(
                rx.button(rx.icon("menu", aria_hidden="true"), "Menu", variant="soft", size="3",
                          aria_label="Open menu"),
            ),
            rx.menu.content(
                rx.text(PortalState.user_name, " · ", PortalState.role_label, size="1", color_scheme="gray",
                        padding="6px 12px"),
                # The link is the menu item itself (as_child): its whole row is the target, not just its text.
                *[rx.menu.item(rx.el.a(label, href=href), as_child=True) for label, href, _ in NAV],
                rx.menu.item(rx.el.a("Contact us", href=contact_href()), as_child=True),
                rx.menu.separator(),
                rx.menu.item(rx.el.a("Accessibility", href=routes.ACCESSIBILITY), as_child=True),
                rx.menu.item("Sign out", on_select=AuthState.sign_out),
            ),
        ),
        display="flex",
        justify_content="space-between",
        align_items="center",
        padding="0 16px",
        height="100%",
        width="100%",
        border_bottom=f"1px solid {rx.color('gray', 5)}",
        background=rx.color("gray", 1),
    )


def page_title(title: str, help_topic: HelpTopic | None) -> rx.Component:
    heading = rx.heading(title, as_="h1", size="7", margin_bottom="0" if help_topic else "16px")
    if help_topic is None:
        return heading
    return rx.flex(heading, help_panel(help_topic), justify="between", align="center", gap="12px", wrap="wrap",
                   margin_bottom="16px")


def page_shell(*children: rx.Component, title: str, help_topic: HelpTopic | None = None) -> rx.Component:
    """A page in the shell, with one h1 and a main landmark for screen readers; with `help_topic`, a Help button
    beside the h1 opens that screen's help."""
    return rx.box(
        # A plain <a href="#main">: a router link would write the page's route ("/licenses/new/#main"), which is
        # not the page's own address when it is opened without the trailing slash.
        PlainAnchor.create("Skip to content", href="#main", class_name="skip-link"),
        rx.flex(
            rx.tablet_and_desktop(sidebar()),
            rx.box(
                # Sticks to the top of a phone's screen; html's scroll-padding-top keeps focus out from under it.
                rx.mobile_only(mobile_bar(), class_name="app-header"),
                rx.el.main(
                    page_title(title, help_topic),
                    *children,
                    id="main",
                    tab_index=-1,
                    padding=["16px", "16px", "32px"],
                    max_width="1100px",
                    width="100%",
                ),
                flex="1",
                min_width="0",
            ),
            width="100%",
        ),
        width="100%",
        # Not "hidden": that would make this box the scroll container the sticky header and sidebar stick in.
        overflow_x="clip",
    )
