"""What each role may do. The one place that says so: state handlers ask `Actor.require(...)`, pages ask the
flags derived from the same table."""

from __future__ import annotations

from enum import StrEnum

from cf_portal.models import Role


class Permission(StrEnum):
    BUY = "buy"  # Add License: coupon checks, Create
    CHANGE_LICENSES = "change_licenses"  # more or fewer seats, another plan, the card billed, cancel, resume
    MANAGE_PAYMENT_METHODS = "manage_payment_methods"  # add a card, make one the default
    MANAGE_SEATS = "manage_seats"  # employees, child accounts, assign, move and free seats, CSV import
    MANAGE_MEMBERS = "manage_members"  # invite, change roles, remove members
    RESET_DEMO = "reset_demo"  # put the demo account back to the seed, or a month on (demo mode only)
    MANAGE_API_KEYS = "manage_api_keys"  # create, list and revoke the keys of the entitlements API
    MANAGE_WEBHOOKS = "manage_webhooks"  # webhook endpoints, their secrets, the delivery log, resend
    READ_SENT_EMAILS = "read_sent_emails"  # the Sent emails log: what the portal wrote to the account's people


PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.BILLING_ADMIN: frozenset({Permission.BUY, Permission.CHANGE_LICENSES, Permission.MANAGE_PAYMENT_METHODS,
                                   Permission.READ_SENT_EMAILS}),
    Role.LICENSE_ADMIN: frozenset({Permission.MANAGE_SEATS}),
    Role.VIEWER: frozenset(),
}

ROLE_LABELS: dict[Role, str] = {
    Role.OWNER: "Owner",
    Role.BILLING_ADMIN: "Billing admin",
    Role.LICENSE_ADMIN: "License admin",
    Role.VIEWER: "Viewer",
}

ROLE_DESCRIPTIONS: dict[Role, str] = {
    Role.OWNER: "Everything, including members and roles.",
    Role.BILLING_ADMIN: "Buys licenses, manages payment methods, sees invoices.",
    Role.LICENSE_ADMIN: "Manages employees and child accounts; assigns, moves and frees seats.",
    Role.VIEWER: "Sees everything, changes nothing.",
}

# What a role may not do, in the words a refused member reads.
REFUSALS: dict[Permission, str] = {
    Permission.BUY: "Only owners and billing admins can buy licenses.",
    Permission.CHANGE_LICENSES: "Only owners and billing admins can change or cancel licenses.",
    Permission.MANAGE_PAYMENT_METHODS: "Only owners and billing admins can change payment methods.",
    Permission.MANAGE_SEATS: "Only owners and license admins can change employees and seats.",
    Permission.MANAGE_MEMBERS: "Only owners can manage members.",
    Permission.RESET_DEMO: "Only an owner of the demo account can reset the demo or move its clock.",
    Permission.MANAGE_API_KEYS: "Only owners can manage API keys.",
    Permission.MANAGE_WEBHOOKS: "Only owners can manage webhooks.",
    Permission.READ_SENT_EMAILS: "Only owners and billing admins can read the emails the portal sent.",
}


def allows(role: str, permission: Permission) -> bool:
    try:
        return permission in PERMISSIONS[Role(role)]
    except ValueError:
        return False


# The role select of the Members page: [value, label, description] for each role, and the preselected one.
ROLE_CHOICES: list[list[str]] = [[role.value, ROLE_LABELS[role], ROLE_DESCRIPTIONS[role]] for role in Role]
DEFAULT_INVITE_ROLE: str = Role.VIEWER.value


def label(role: str) -> str:
    try:
        return ROLE_LABELS[Role(role)]
    except ValueError:
        return role
