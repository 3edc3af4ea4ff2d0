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
SENT_EMAILS = "/settings/emails"  # owners and billing admins: what the portal emailed (the demo's mailbox)
CONTACT = "/contact"  # ?from=<the page the person came from>
ACCESSIBILITY = "/accessibility"  # the accessibility statement (public)

# HTTP routes (cf_portal/api.py) that set and clear the HttpOnly session cookie.
BEGIN_SESSION = "/auth/session"
END_SESSION = "/auth/signout"

# HTTP routes (cf_portal/api.py) of an invoice's documents, for the signed-in member of its account: the portal's
# own PDF, and a redirect to the payment provider's (Stripe's) PDF of it.
INVOICE_PDF = "/billing/invoices/{invoice_id:int}/pdf"
PROVIDER_INVOICE_PDF = "/billing/invoices/{invoice_id:int}/provider-pdf"


def invoice_pdf(invoice_id: object) -> str:
    """The download address of an invoice's PDF (`invoice_id` may be a Reflex var: the page builds it in place)."""
    return f"/billing/invoices/{invoice_id}/pdf"


def provider_invoice_pdf(invoice_id: object) -> str:
    return f"/billing/invoices/{invoice_id}/provider-pdf"


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
