"""Every route of the portal, in one place."""

LICENSES = "/licenses"
ADD_LICENSE = "/licenses/new"
EMPLOYEES = "/employees"
BILLING = "/billing"
SIGN_IN = "/signin"
SIGN_UP = "/signup"
INVITATION = "/invitation"
MEMBERS = "/members"
ACCOUNT_SETTINGS = "/settings"

# Pages anyone can open; every other page needs a signed-in member.
PUBLIC = (SIGN_IN, SIGN_UP, INVITATION)
