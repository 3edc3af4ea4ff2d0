"""The Reflex app: pages and routes, nothing else."""

import reflex as rx

from cf_portal import routes
from cf_portal.db import all_metadata
from cf_portal.pages.add_license import add_license_page
from cf_portal.pages.billing import billing_page
from cf_portal.pages.employees import employees_page
from cf_portal.pages.licenses import licenses_page
from cf_portal.state.add_license import AddLicenseState
from cf_portal.state.billing import BillingState
from cf_portal.state.employees import EmployeesState
from cf_portal.state.licenses import LicensesState

# Reflex checks at start-up that the database matches SQLModel's metadata: load every table into it.
all_metadata()

app = rx.App(
    stylesheets=["/portal.css"],
    head_components=[rx.el.meta(name="viewport", content="width=device-width, initial-scale=1")],
)

app.add_page(lambda: rx.fragment(), route="/", on_load=rx.redirect(routes.LICENSES), title="ChatFortress")
app.add_page(licenses_page, route=routes.LICENSES, on_load=LicensesState.load, title="Licenses · ChatFortress")
app.add_page(add_license_page, route=routes.ADD_LICENSE, on_load=AddLicenseState.load,
             title="Add License · ChatFortress")
app.add_page(employees_page, route=routes.EMPLOYEES, on_load=EmployeesState.load, title="Employees · ChatFortress")
app.add_page(billing_page, route=routes.BILLING, on_load=BillingState.load, title="Billing · ChatFortress")
