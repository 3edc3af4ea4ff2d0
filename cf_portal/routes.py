"""Every route of the portal, in one place."""

LICENSES = "/licenses"
ADD_LICENSE = "/licenses/new"
EMPLOYEES = "/employees"
BILLING = "/billing"
