"""The Members page: who is in the account with which role; owners invite, change roles and remove."""

from __future__ import annotations

import reflex as rx
from sqlmodel import Session

from cf_portal.clock import now
from cf_portal.services import members, roles
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError
from cf_portal.services.ids import client_text, parse_id
from cf_portal.services.members import InvitationCreated, InvitationRow, MemberRow
from cf_portal.services.roles import Permission
from cf_portal.state.calls import errors_by_field
from cf_portal.state.portal import PortalState

ROLE_OPTIONS = roles.ROLE_CHOICES


class MembersState(PortalState):
    members: list[MemberRow] = []
    invitations: list[InvitationRow] = []
    loaded: bool = False

    invite_open: bool = False
    invite_email: str = ""
    invite_role: str = roles.DEFAULT_INVITE_ROLE
    invite_email_error: str = ""
    invite_role_error: str = ""
    # The link just made: shown once, to the owner who made it, to copy.
    created: InvitationCreated | None = None

    remove_id: int = 0
    remove_name: str = ""

    def _refresh(self) -> None:
        def lists(session: Session, actor: Actor) -> tuple[list[MemberRow], list[InvitationRow]]:
            # Pending invitations are the owners' business (a viewer need not see who is about to join).
            return (members.list_members(session, account_id=actor.account_id, you=actor.user_id),
                    members.list_invitations(session, account_id=actor.account_id, now=now())
                    if actor.can(Permission.MANAGE_MEMBERS) else [])
        self.members, self.invitations = self._read(lists)
        self.loaded = True

    @rx.event
    def load(self):
        """The lists again; no dialog, typed address or invitation link is kept from an earlier visit."""
        self._refresh()
        self.invite_open, self.created, self.remove_id, self.remove_name = False, None, 0, ""
        self.invite_email, self.invite_role = "", roles.DEFAULT_INVITE_ROLE
        self.invite_email_error = self.invite_role_error = ""

    @rx.event
    def open_invite(self):
        self._require(Permission.MANAGE_MEMBERS)
        self.invite_email, self.invite_role = "", roles.DEFAULT_INVITE_ROLE
        self.invite_email_error = self.invite_role_error = ""
        self.created, self.invite_open = None, True

    @rx.event
    def set_invite_open(self, is_open: bool):
        self._require()
        self.invite_open = bool(is_open)
        if not is_open:
            self.created = None

    @rx.event
    def set_invite_email(self, value: str):
        self._require()
        self.invite_email = client_text(value)
        self.invite_email_error = ""

    @rx.event
    def set_invite_role(self, value: str):
        self._require()
        self.invite_role = client_text(value, 40)
        self.invite_role_error = ""

    @rx.event
    def invite(self):
        self.invite_email_error = self.invite_role_error = ""
        base_url = self.router.url.origin if self.router.url.netloc else ""
        try:
            self.created = self._write(lambda session, actor: members.invite(
                session, actor=actor, email=self.invite_email, role=self.invite_role, base_url=base_url, now=now()),
                Permission.MANAGE_MEMBERS)
        except DomainError as exc:
            errors = errors_by_field(exc, default="email")
            self.invite_email_error = errors.get("email", "")
            self.invite_role_error = errors.get("role", "")
            return
        self._refresh()

    @rx.event
    def revoke(self, invitation_id: int):
        try:
            email = self._write(lambda session, actor: members.revoke_invitation(
                session, actor=actor, now=now(), invitation_id=parse_id(invitation_id, "That invitation")),
                Permission.MANAGE_MEMBERS)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self._refresh()
        return rx.toast.success(f"The invitation for {email} was withdrawn; its link no longer works.")

    @rx.event
    def change_role(self, user_id: int, role: str):
        try:
            row = self._write(lambda session, actor: members.change_role(
                session, actor=actor, user_id=parse_id(user_id, "That member"), role=client_text(role, 40),
                now=now()), Permission.MANAGE_MEMBERS)
        except DomainError as exc:
            self._refresh()  # the select shows the role that stands
            return rx.toast.error(exc.message)
        self._refresh()
        return rx.toast.success(f"{row.name} is now {row.role_label.lower()}.")

    @rx.event
    def ask_remove(self, user_id: int, name: str):
        self._require()
        self.remove_id, self.remove_name = parse_id(user_id, "That member"), client_text(name, 200)

    @rx.event
    def cancel_remove(self):
        self._require()
        self.remove_id, self.remove_name = 0, ""

    @rx.event
    def remove(self):
        user_id = self.remove_id
        self.remove_id = 0
        try:
            name = self._write(lambda session, actor: members.remove_member(
                session, actor=actor, user_id=user_id, now=now()), Permission.MANAGE_MEMBERS)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self._refresh()
        return rx.toast.success(f"{name} was removed and signed out.")
