"""The Members page: everyone in the account with their role. Owners invite (emailed, with the link to copy as a fallback), change roles
and remove members; others see the list."""

from __future__ import annotations

import reflex as rx

from cf_portal.components.common import loading_rows
from cf_portal.components.dialogs import confirm_dialog
from cf_portal.components.forms import dialog_buttons, labelled, native_select
from cf_portal.components.shell import page_shell
from cf_portal.services.members import InvitationRow, MemberRow
from cf_portal.state.members import ROLE_OPTIONS
from cf_portal.state.members import MembersState as S


def role_options() -> list[rx.Component]:
    return [rx.el.option(label, value=value) for value, label, _ in ROLE_OPTIONS]


def member_row(member: MemberRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(
            rx.vstack(
                rx.hstack(rx.text(member.name, weight="medium"),
                          rx.cond(member.is_you, rx.badge("You", variant="soft", high_contrast=True)),
                          spacing="2", align="center"),
                rx.text(member.email, size="1", color_scheme="gray"),
                spacing="0",
            ),
        ),
        rx.table.cell(
            rx.cond(
                S.can_manage_members,
                rx.el.select(
                    *role_options(), value=member.role, on_change=lambda value: S.change_role(member.id, value),
                    class_name="native-select", aria_label=f"Role of {member.name}", max_width="200px",
                ),
                rx.text(member.role_label),
            ),
        ),
        rx.cond(
            S.can_manage_members,
            rx.table.cell(
                rx.button(rx.icon("user-minus", size=16, aria_hidden="true"), "Remove", variant="soft",
                          color_scheme="red", size="2", on_click=S.ask_remove(member.id, member.name),
                          aria_label=f"Remove {member.name}"),
                text_align="right",
            ),
        ),
        align="center",
    )


def invitation_row(invitation: InvitationRow) -> rx.Component:
    return rx.hstack(
        rx.vstack(
            rx.text(invitation.email, weight="medium"),
            rx.text(invitation.role_label, " · ",
                    rx.cond(invitation.expired, "expired on ", "link works until "), invitation.expires,
                    size="1", color_scheme="gray"),
            spacing="0", flex="1", min_width="0",
        ),
        rx.button("Withdraw", variant="soft", color_scheme="gray", size="2", on_click=S.revoke(invitation.id),
                  aria_label=f"Withdraw the invitation for {invitation.email}"),
        align="center", spacing="3", width="100%", padding="10px 12px",
        border=f"1px solid {rx.color('gray', 6)}", border_radius="8px",
    )


def invite_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Invite a member"),
            rx.cond(
                S.created,
                rx.vstack(
                    rx.dialog.description(
                        rx.text("We emailed the invitation to ", rx.text.strong(S.created.email),
                                ". It works once, for 7 days, with the role ", rx.text.strong(S.created.role_label),
                                ". If the email does not arrive, copy the link below and send it yourself (it is "
                                "shown only now)."),
                    ),
                    labelled("Invitation link",
                             rx.input(value=S.created.link, read_only=True, id="invitation_link", size="3",
                                      on_focus=rx.call_script("document.getElementById('invitation_link').select()")),
                             field_id="invitation_link"),
                    rx.hstack(
                        rx.button(rx.icon("copy", size=16, aria_hidden="true"), "Copy link", size="3",
                                  variant="soft", on_click=[rx.set_clipboard(S.created.link),
                                                            rx.toast.success("Link copied.")]),
                        rx.dialog.close(rx.button("Done", size="3")),
                        justify="end", spacing="3", width="100%",
                    ),
                    spacing="4", width="100%",
                ),
                rx.vstack(
                    rx.dialog.description("We email them a link; they choose their own password when they open it.", size="2"),
                    labelled("Email", rx.input(id="invite_email", type="email", value=S.invite_email,
                                               on_change=S.set_invite_email, size="3", max_length=254,
                                               aria_invalid=rx.cond(S.invite_email_error != "", "true", "false"),
                                               aria_describedby="invite_email-error"),
                             field_id="invite_email", error=S.invite_email_error),
                    labelled("Role", native_select(rx.fragment(*role_options()), field_id="invite_role",
                                                   value=S.invite_role, on_change=S.set_invite_role),
                             field_id="invite_role", error=S.invite_role_error,
                             hint=rx.foreach(ROLE_OPTIONS, lambda o: rx.cond(o[0] == S.invite_role, o[2], ""))),
                    dialog_buttons(rx.button("Send invitation", size="3", on_click=S.invite)),
                    spacing="4", width="100%",
                ),
            ),
            max_width="480px",
        ),
        open=S.invite_open, on_open_change=S.set_invite_open,
    )


def remove_dialog() -> rx.Component:
    return confirm_dialog(rx.text("Remove ", S.remove_name, "?"),
                          "They are signed out at once and can no longer sign in. What they did stays in the history.",
                          action="Remove", on_confirm=S.remove, open=S.remove_id > 0, on_cancel=S.cancel_remove)


def members_page() -> rx.Component:
    return page_shell(
        rx.vstack(
            rx.hstack(
                rx.text("Everyone who can sign in to this account, and what their role lets them do.",
                        color_scheme="gray", flex="1"),
                rx.cond(S.can_manage_members,
                        rx.button(rx.icon("user-plus", size=16, aria_hidden="true"), "Invite member", size="3",
                                  on_click=S.open_invite)),
                align="center", spacing="3", width="100%", wrap="wrap",
            ),
            rx.cond(
                S.loaded,
                rx.box(
                    rx.table.root(
                        rx.el.caption("Members", class_name="visually-hidden"),
                        rx.table.header(rx.table.row(
                            rx.table.column_header_cell("Member"),
                            rx.table.column_header_cell("Role"),
                            rx.cond(S.can_manage_members,
                                    rx.table.column_header_cell(rx.text("Actions", class_name="visually-hidden"))),
                        )),
                        rx.table.body(rx.foreach(S.members, member_row)),
                        variant="surface", width="100%",
                    ),
                    width="100%", overflow_x="auto",
                ),
                loading_rows(),
            ),
            rx.cond(
                S.invitations.length() > 0,
                rx.vstack(
                    rx.heading("Pending invitations", as_="h2", size="5"),
                    rx.foreach(S.invitations, invitation_row),
                    spacing="2", width="100%",
                ),
            ),
            rx.card(
                rx.vstack(
                    rx.heading("Roles", as_="h2", size="4"),
                    *[rx.text(rx.text.strong(label), ": ", description, size="2")
                      for _, label, description in ROLE_OPTIONS],
                    spacing="2",
                ),
                width="100%",
            ),
            invite_dialog(),
            remove_dialog(),
            spacing="4", width="100%",
        ),
        title="Members",
    )
