"""Every route of the portal, in one place."""

LICENSES = "/licenses"
ADD_LICENSE = "/licenses/new"
MANAGE_LICENSE = "/licenses/manage"  # ?id=<license id>
EMPLOYEES = "/employees"
BILLING = "/billing"
SIGN_IN = "/signin"
SIGN_UP = "/signup"
INVITATION = "/invitation"
MEMBERS = "/members"
ACCOUNT_SETTINGS = "/settings"
API_KEYS = "/settings/api-keys"  # owners: the keys products call the API with
API_DOCS = "/settings/api"  # how to call the entitlements API and check webhook signatures
WEBHOOKS = "/settings/webhooks"  # owners: endpoints told of seat and license changes
ACCESSIBILITY = "/accessibility"  # the accessibility statement (public)
CONTACT = "/contact"  # how to reach support (public)

# HTTP routes (cf_portal/api.py) that set and clear the HttpOnly session cookie.
BEGIN_SESSION = "/auth/session"
END_SESSION = "/auth/signout"

# The entitlements API (cf_portal/api.py): JSON, with an API key (`Authorization: Bearer cfk_…`), no session.
API_V1 = "/api/v1"

# Pages anyone can open; every other page needs a signed-in member.
PUBLIC = (SIGN_IN, SIGN_UP, INVITATION, ACCESSIBILITY)


def safe_next(next_path: str) -> str:
    """Only a path of this portal (never another site: "//evil.example" or "https://…")."""
    if next_path.startswith("/") and not next_path.startswith(("//", "/\\")) and not any(
            ord(c) < 32 for c in next_path):
        return next_path
    return LICENSES
