"""The Reflex app: pages and routes, and what happens to errors no handler caught."""

import logging
import os

import reflex as rx
from redis.exceptions import RedisError
from reflex.event import EventSpec

from cf_portal import routes
from cf_portal.api import api
from cf_portal.db import all_metadata
from cf_portal.logging_setup import configure_logging
from cf_portal.middleware import MAX_WEBSOCKET_MESSAGE, PortalMiddleware
from cf_portal.pages.accessibility import accessibility_page
from cf_portal.pages.account_settings import account_settings_page
from cf_portal.pages.add_license import add_license_page
from cf_portal.pages.api_docs import api_docs_page
from cf_portal.pages.api_keys import api_keys_page
from cf_portal.pages.auth import invitation_page, sign_in_page, sign_up_page
from cf_portal.pages.billing import billing_page
from cf_portal.pages.emails import contact_page, sent_emails_page
from cf_portal.pages.employees import employees_page
from cf_portal.pages.licenses import licenses_page
from cf_portal.pages.manage_license import manage_license_page
from cf_portal.pages.members import members_page
from cf_portal.pages.webhooks import webhooks_page
from cf_portal.services.errors import DomainError, SignInRequired
from cf_portal.state.account_settings import AccountSettingsState
from cf_portal.state.add_license import AddLicenseState
from cf_portal.state.api_docs import ApiDocsState
from cf_portal.state.api_keys import ApiKeysState
from cf_portal.state.auth import AuthState
from cf_portal.state.billing import BillingState
from cf_portal.state.emails import ContactState, SentEmailsState
from cf_portal.state.employees import EmployeesState
from cf_portal.state.idle_seats import IdleSeatsState
from cf_portal.state.licenses import LicensesState
from cf_portal.state.manage_license import ManageLicenseState
from cf_portal.state.members import MembersState
from cf_portal.state.portal import sign_in_url
from cf_portal.state.webhooks import WebhooksState
from cf_portal.webhook_worker import email_worker, webhook_worker
from cf_portal.worker_presence import install_presence_token_manager

log = logging.getLogger(__name__)

# Shown when the state store (Redis, with several workers) does not answer: the event was not handled, and
# the person can simply do it again once it is back (a restart takes seconds).
STATE_STORE_DOWN = ("The portal cannot reach its session store right now, so this was not done. "
                    "Please try again in a moment.")


def _is_state_store_error(exception: BaseException) -> bool:
    while exception is not None:
        if isinstance(exception, RedisError):
            return True
        exception = exception.__cause__ or exception.__context__
    return False


def handle_backend_exception(exception: Exception) -> list[EventSpec]:
    """No session (or it ended) → the sign-in page, then back to where the person was. A rule that said no
    (a role, a stale id) → its message. The state store down → a message saying so, and one log line for the
    operator (no traceback per click). Anything else → Reflex's handler: logged, and a generic message."""
    if isinstance(exception, SignInRequired):
        return [rx.redirect(sign_in_url(exception.next_path))]
    if isinstance(exception, DomainError):
        return [rx.toast.error(exception.message)]
    if _is_state_store_error(exception):
        log.error("an event was not handled: the state store (REFLEX_REDIS_URL) did not answer: %s", exception)
        return [rx.toast.error(STATE_STORE_DOWN, id="state-store-down")]
    return [rx.app.default_backend_exception_handler(exception)]


# Errors logged without an exception still say ERROR (and the e2e tests fail on them).
configure_logging()

# Reflex checks at start-up that the database matches SQLModel's metadata: load every table into it.
all_metadata()

# A websocket message larger than this closes the connection (files come through /_upload instead).
os.environ["REFLEX_SOCKET_MAX_HTTP_BUFFER_SIZE"] = str(MAX_WEBSOCKET_MESSAGE)

app = rx.App(
    stylesheets=["/portal.css"],
    head_components=[rx.el.meta(name="viewport", content="width=device-width, initial-scale=1")],
    backend_exception_handler=handle_backend_exception,
    # The session routes and the payment provider's webhook (cf_portal/api.py), then around everything the
    # session cookie's digest, security headers and body limits (cf_portal/middleware.py).
    api_transformer=[api, PortalMiddleware],
)

# The outgoing webhooks are delivered by the app itself unless CF_WEBHOOK_WORKER=off (cf_portal/webhook_worker.py).
app.register_lifespan_task(webhook_worker)
# So are the queued emails, unless CF_EMAIL_WORKER=off (services/emails.py).
app.register_lifespan_task(email_worker)
# With several workers, a tab whose worker died keeps its session when it reconnects (cf_portal/worker_presence.py).
app.register_lifespan_task(install_presence_token_manager)

# Open to anyone.
app.add_page(sign_in_page, route=routes.SIGN_IN, on_load=AuthState.load, title="Sign in · ChatFortress")
app.add_page(sign_up_page, route=routes.SIGN_UP, on_load=AuthState.load, title="Create account · ChatFortress")
app.add_page(invitation_page, route=routes.INVITATION, on_load=AuthState.load_invitation,
             title="Join your team · ChatFortress")
app.add_page(accessibility_page, route=routes.ACCESSIBILITY, title="Accessibility statement · ChatFortress")

# Every other page: its load handler resolves the member from the session (else → sign in).
app.add_page(lambda: rx.fragment(), route="/", on_load=rx.redirect(routes.LICENSES), title="ChatFortress")
app.add_page(licenses_page, route=routes.LICENSES, on_load=[LicensesState.load, IdleSeatsState.load],
             title="Licenses · ChatFortress")
app.add_page(add_license_page, route=routes.ADD_LICENSE, on_load=AddLicenseState.load,
             title="Add License · ChatFortress")
app.add_page(manage_license_page, route=routes.MANAGE_LICENSE, on_load=ManageLicenseState.load,
             title="Manage license · ChatFortress")
app.add_page(employees_page, route=routes.EMPLOYEES, on_load=EmployeesState.load, title="Employees · ChatFortress")
app.add_page(billing_page, route=routes.BILLING, on_load=BillingState.load, title="Billing · ChatFortress")
app.add_page(members_page, route=routes.MEMBERS, on_load=MembersState.load, title="Members · ChatFortress")
app.add_page(account_settings_page, route=routes.ACCOUNT_SETTINGS, on_load=AccountSettingsState.load,
             title="Settings · ChatFortress")
app.add_page(api_keys_page, route=routes.API_KEYS, on_load=ApiKeysState.load, title="API keys · ChatFortress")
app.add_page(api_docs_page, route=routes.API_DOCS, on_load=ApiDocsState.load, title="API documentation · ChatFortress")
app.add_page(webhooks_page, route=routes.WEBHOOKS, on_load=WebhooksState.load, title="Webhooks · ChatFortress")
app.add_page(sent_emails_page, route=routes.SENT_EMAILS, on_load=SentEmailsState.load,
             title="Sent emails · ChatFortress")
app.add_page(contact_page, route=routes.CONTACT, on_load=ContactState.load, title="Contact us · ChatFortress")
