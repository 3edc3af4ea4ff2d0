"""Email: what the portal writes to people (invitations, receipts, payment trouble, coupon reminders, seat access,
Contact us), and the account's Sent emails log.

Where each promise lives:
- Sending never blocks a click, and no message is sent for a change that rolled back: the `queue_*` helpers only
  add an `email_message` row to the caller's session, in the transaction of the change (members.invite,
  purchase._confirm, renewals._periods_paid / renewal_failed, seats.assign, contact). The message is rendered
  then, from Jinja2 templates (email_templates/, HTML autoescaped, plus a plain-text part).
- Delivered by a worker, at least once, with retries: the outbox pattern of `services.webhooks` (claim due rows in
  a short transaction with a token, send outside any transaction, write the outcome while the claim is still
  ours) and its retry schedule (`webhooks.RETRY_DELAYS`: 1 min … 24 h). An SMTP answer 5xx (a refused recipient
  or message) fails the message at once; after the last retry it is Failed. The outcome (and the last error) is
  on the row: the Sent emails page lists it.
- Transport: SMTP through the standard library's smtplib when CF_SMTP_URL is set (smtps:// is TLS from the
  start; smtp:// upgrades with STARTTLS, and sends nothing, password or message, to a server that does not offer
  it, except on loopback). Unset (demo mode): the message is "sent" to the Sent emails log only.
- Secrets: the SMTP URL and password are never logged, stored or shown; errors are scrubbed of them. An
  invitation's token is kept in `secret` only while the message waits: the bodies carry `SECRET_MARK` instead,
  replaced when sending; once sent over SMTP the token is dropped and the log shows the link without it. In
  the in-app log mode the log is the delivery, so the token stays in `secret` and the link is shown there, as in a
  mailbox, but only to members who may invite (owners): a billing admin reading the log could otherwise join as
  the invited person, in the invited role.
- Logs name the message id, its kind and the account: never the address, the subject or the body.
"""

from __future__ import annotations

import email.message
import email.utils
import ipaddress
import logging
import secrets
import smtplib
import ssl
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import jinja2
import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, select

from cf_portal import clock, routes
from cf_portal.db import session_scope
from cf_portal.models import (
    Account,
    Coupon,
    EmailMessage,
    EmailStatus,
    Employee,
    Invoice,
    InvoiceLine,
    License,
    Plan,
    Product,
    Role,
    SeatAssignment,
    User,
)
from cf_portal.services import audit
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError, NotFound
from cf_portal.services.pricing import format_money
from cf_portal.services.rate_limit import TokenBuckets
from cf_portal.services.roles import Permission
from cf_portal.services.webhooks import RETRY_DELAYS
from cf_portal.settings import get_settings

log = logging.getLogger(__name__)

MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
BATCH = 20
TIMEOUT_S = 20.0
SECRET_MARK = "@@secret@@"
SECRET_REMOVED = "(link removed from this log once sent)"
SECRET_OWNERS_ONLY = "(the invitation link: shown to owners only)"
KINDS = ("invitation", "purchase_receipt", "renewal_receipt", "payment_failed", "license_suspended",
         "coupon_ending", "seat_access", "contact")
# Messages a person may stop: they get an unsubscribe (preferences) link and a List-Unsubscribe header.
OPTIONAL_KINDS = ("coupon_ending", "seat_access")
SUBJECTS = {
    "invitation": "{inviter} invited you to {account} on ChatFortress",
    "purchase_receipt": "Receipt {number}: your ChatFortress licenses",
    "renewal_receipt": "Receipt {number}: your ChatFortress licenses renewed",
    "payment_failed": "Action needed: the payment for {reference} failed",
    "license_suspended": "{reference} is suspended",
    "coupon_ending": "Your coupon on {reference} ends next month",
    "seat_access": "You now have access to {product}",
    "contact": "[Contact us] {subject}",
}

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "email_templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def public_url() -> str:
    """Where links in messages point: CF_PUBLIC_URL, else this machine (a demo)."""
    settings = get_settings()
    return settings.public_url or settings.origins[0]


def link(path: str, **query: object) -> str:
    return public_url() + path + (("?" + urllib.parse.urlencode(query)) if query else "")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(kind: str, **context: object) -> Rendered:
    """The message `kind` with `context` (plus the links every message has). Subjects are one line."""
    context.setdefault("preferences_url", link(routes.ACCOUNT_SETTINGS) + "#email")
    context.setdefault("portal_url", public_url())
    context["optional"] = kind in OPTIONAL_KINDS
    subject = SUBJECTS[kind].format(**{key: value for key, value in context.items() if isinstance(value, str)})
    return Rendered(subject=" ".join(subject.split())[:200], text=_templates.get_template(f"{kind}.txt").render(context),
                    html=_templates.get_template(f"{kind}.html").render(context))


def queue(session: Session, *, account_id: int, kind: str, to: str, rendered: Rendered, reply_to: str = "",
          secret: str | None = None, now: datetime | None = None) -> EmailMessage:
    """Add one message to the outbox in the caller's session (its transaction decides whether it exists)."""
    if kind not in KINDS:
        raise ValueError(f"unknown email kind {kind!r}")
    now = now or clock.now()
    row = EmailMessage(account_id=account_id, kind=kind, to_address=to, reply_to=reply_to, subject=rendered.subject,
                       text_body=rendered.text, html_body=rendered.html, secret=secret, created_at=now,
                       next_attempt_at=now)
    session.add(row)
    return row


class Lookups:
    """Account names and billing people, read once per account for a batch of messages (`bill-due` renews
    thousands of licenses in a few transactions)."""

    def __init__(self) -> None:
        self._names: dict[int, str] = {}
        self._people: dict[int, list[str]] = {}

    def account_name(self, session: Session, account_id: int) -> str:
        if account_id not in self._names:
            self._names[account_id] = session.exec(select(Account.name).where(Account.id == account_id)).one()
        return self._names[account_id]

    def billing_people(self, session: Session, account_id: int) -> list[str]:
        """Who gets receipts and payment trouble: the account's owners and billing admins."""
        if account_id not in self._people:
            self._people[account_id] = list(session.exec(select(User.email).where(
                User.account_id == account_id, User.removed_at.is_(None),
                User.role.in_((Role.OWNER.value, Role.BILLING_ADMIN.value))).order_by(User.id)).all())
        return self._people[account_id]


def _account_name(session: Session, account_id: int) -> str:
    return Lookups().account_name(session, account_id)


def _billing_people(session: Session, account_id: int) -> list[str]:
    return Lookups().billing_people(session, account_id)


def _license_names(session: Session, license_id: int) -> tuple[License, str]:
    lic, plan, product = session.exec(select(License, Plan, Product).join(Plan, Plan.id == License.plan_id)
                                      .join(Product, Product.id == Plan.product_id)
                                      .where(License.id == license_id)).one()
    return lic, f"{product.name} {plan.name}"


def _day(moment: datetime) -> str:
    return f"{moment:%B} {moment.day}, {moment.year}"


# --- The messages, each queued in the transaction of its change -------------------------------------------------


def queue_invitation(session: Session, *, account_id: int, to: str, role_label: str, inviter: str, token: str,
                     expires_at: datetime, now: datetime) -> None:
    rendered = render("invitation", account=_account_name(session, account_id), inviter=inviter,
                      role=role_label, expires=_day(expires_at),
                      invitation_url=link(routes.INVITATION) + "?token=" + SECRET_MARK)
    queue(session, account_id=account_id, kind="invitation", to=to, rendered=rendered, secret=token, now=now)


@dataclass(frozen=True)
class Receipt:
    """What a receipt shows of a paid invoice."""

    account_id: int
    kind: str  # the invoice's: "first" (a purchase) or "renewal"
    number: str
    reference: str  # the license's reference name
    currency: str
    subtotal: int
    discount: int
    total: int
    created_at: datetime
    period_start: datetime
    period_end: datetime | None
    lines: tuple[tuple[str, int, int, int], ...]  # description, quantity, unit amount, amount


def queue_receipt(session: Session, *, invoice_id: int, now: datetime) -> None:
    """The receipt of a paid invoice (a purchase's first month or a renewal) to the account's billing people."""
    invoice = session.get(Invoice, invoice_id)
    lines = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id)
                         .order_by(InvoiceLine.id)).all()
    reference = session.get(License, invoice.license_id).reference_name if invoice.license_id is not None else ""
    queue_receipt_of(session, Receipt(
        account_id=invoice.account_id, kind=invoice.kind, number=invoice.number, reference=reference,
        currency=invoice.currency, subtotal=invoice.subtotal, discount=invoice.discount, total=invoice.total,
        created_at=invoice.created_at, period_start=invoice.period_start, period_end=invoice.period_end,
        lines=tuple((line.description, line.quantity, line.unit_amount, line.amount) for line in lines)), now=now)


def queue_receipt_of(session: Session, receipt: Receipt, *, now: datetime, lookups: Lookups | None = None) -> None:
    lookups = lookups or Lookups()
    kind = "renewal_receipt" if receipt.kind == "renewal" else "purchase_receipt"
    money = lambda cents: format_money(cents, receipt.currency)  # noqa: E731
    rendered = render(kind, account=lookups.account_name(session, receipt.account_id), number=receipt.number,
                      reference=receipt.reference, date=_day(receipt.created_at),
                      period=(f"{_day(receipt.period_start)} – {_day(receipt.period_end)}" if receipt.period_end
                              else _day(receipt.period_start)),
                      lines=[{"description": description, "quantity": quantity, "unit": money(unit),
                              "amount": money(amount)} for description, quantity, unit, amount in receipt.lines],
                      subtotal=money(receipt.subtotal), discount=money(receipt.discount) if receipt.discount else "",
                      total=money(receipt.total), billing_url=link(routes.BILLING))
    for to in lookups.billing_people(session, receipt.account_id):
        queue(session, account_id=receipt.account_id, kind=kind, to=to, rendered=rendered, now=now)


def queue_payment_trouble(session: Session, *, license_id: int, suspended: bool, next_attempt: datetime | None,
                          now: datetime) -> None:
    """Payment failed (the license is past due, with the next try) or, after the last try, suspended."""
    lic, product = _license_names(session, license_id)
    kind = "license_suspended" if suspended else "payment_failed"
    rendered = render(kind, account=_account_name(session, lic.account_id), reference=lic.reference_name,
                      product=product, next_attempt=_day(next_attempt) if next_attempt else "",
                      fix_url=link(routes.MANAGE_LICENSE, id=lic.id))
    for to in _billing_people(session, lic.account_id):
        queue(session, account_id=lic.account_id, kind=kind, to=to, rendered=rendered, now=now)


def queue_coupon_ending(session: Session, *, license_id: int, ends_at: datetime, full_price: int,
                        now: datetime) -> None:
    """The month that just started is the last one the license's coupon discounts (a coupon of N months)."""
    lic, product = _license_names(session, license_id)
    code = session.exec(select(Coupon.code).where(Coupon.id == lic.coupon_id)).first() or ""
    rendered = render("coupon_ending", account=_account_name(session, lic.account_id), reference=lic.reference_name,
                      product=product, code=code, ends=_day(ends_at), full_price=format_money(full_price, lic.currency),
                      license_url=link(routes.MANAGE_LICENSE, id=lic.id))
    for to in _billing_people(session, lic.account_id):
        queue(session, account_id=lic.account_id, kind="coupon_ending", to=to, rendered=rendered, now=now)


def queue_seat_access(session: Session, seats: list[SeatAssignment], *, now: datetime) -> None:
    """"You now have access to <product>" to each employee who got a seat, when the account asked for it."""
    if not seats:
        return
    account = session.get(Account, seats[0].account_id)
    if not account.email_seat_access:
        return
    for seat in seats:
        if seat.employee_id is None:
            continue
        person = session.get(Employee, seat.employee_id)
        if not person.email:
            continue
        _, product = _license_names(session, seat.license_id)
        rendered = render("seat_access", account=account.name, name=person.name, product=product)
        queue(session, account_id=account.id, kind="seat_access", to=person.email, rendered=rendered, now=now)


# --- The account's email settings -------------------------------------------------------------------------------


def seat_access_email(session: Session, *, account_id: int) -> bool:
    return bool(session.exec(select(Account.email_seat_access).where(Account.id == account_id)).one())


def set_seat_access_email(session: Session, *, actor: Actor, enabled: bool) -> None:
    """Email each employee "you now have access to <product>" when they get a seat (owners and license admins)."""
    actor.require(Permission.MANAGE_SEATS)
    session.get(Account, actor.account_id).email_seat_access = bool(enabled)
    audit.record(session, actor, "account.seat_access_email", "account", actor.account_id,
                 "on" if enabled else "off")


# --- Contact us -------------------------------------------------------------------------------------------------

SUBJECT_MAX, MESSAGE_MAX = 150, 5000
# Per member: 5 messages at once, then one every 10 minutes (in this process; see services/rate_limit.py).
CONTACT_LIMIT = TokenBuckets(rate=1 / 600, burst=5)


def send_to_support(session: Session, *, actor: Actor, subject: str, message: str, page: str,
                    now: datetime | None = None, limit: TokenBuckets | None = None) -> None:
    """The Contact us form: a message to CF_SUPPORT_EMAIL with the page it came from, the account and the member
    (replies go to the member). Field errors name the field; a member who sends too many is asked to wait."""
    from cf_portal.services.auth import FormErrors

    subject, message = " ".join((subject or "").split()), (message or "").strip()
    errors = []
    if not subject:
        errors.append(DomainError("Enter a subject.", field="subject"))
    elif len(subject) > SUBJECT_MAX:
        errors.append(DomainError(f"Keep the subject under {SUBJECT_MAX} characters.", field="subject"))
    if not message:
        errors.append(DomainError("Write your message.", field="message"))
    elif len(message) > MESSAGE_MAX:
        errors.append(DomainError(f"Keep the message under {MESSAGE_MAX} characters.", field="message"))
    if errors:
        raise FormErrors(errors)
    wait = (limit or CONTACT_LIMIT).take(("contact", actor.account_id, actor.user_id))
    if wait:
        raise DomainError(f"You have sent several messages in a short time. Please try again in "
                          f"{max(1, round(wait / 60))} minutes, or email {get_settings().support_email}.")
    page = routes.safe_next(page or "/")
    rendered = render("contact", account=actor.account_name, account_id=str(actor.account_id),
                      member=actor.user_name, member_email=actor.email, role=actor.role, subject=subject,
                      message=message, page_url=link(page))
    queue(session, account_id=actor.account_id, kind="contact", to=get_settings().support_email,
          reply_to=actor.email, rendered=rendered, now=now)


# --- The Sent emails log ----------------------------------------------------------------------------------------


class SentEmailRow(BaseModel):
    id: int
    recipient: str
    subject: str
    kind: str
    created_at: datetime
    status: str
    error: str


class SentEmailView(SentEmailRow):
    text: str
    html: str


def _shown(row: EmailMessage, *, reveal: bool) -> tuple[str, str]:
    """The message's text and HTML as the log shows them to a member (`reveal`: one who may invite)."""
    if row.secret is None:
        fill = SECRET_REMOVED
    elif row.status == EmailStatus.SENT.value and row.transport == "log":
        fill = row.secret if reveal else SECRET_OWNERS_ONLY
    else:
        fill = "…"  # waiting to be sent
    return row.text_body.replace(SECRET_MARK, fill), row.html_body.replace(SECRET_MARK, fill)


def list_sent(session: Session, *, actor: Actor, offset: int = 0, limit: int = 50) -> list[SentEmailRow]:
    actor.require(Permission.READ_SENT_EMAILS)
    rows = session.exec(select(EmailMessage).where(EmailMessage.account_id == actor.account_id)
                        .order_by(EmailMessage.created_at.desc(), EmailMessage.id.desc())
                        .offset(offset).limit(limit)).all()
    return [SentEmailRow(id=row.id, recipient=row.to_address, subject=row.subject, kind=row.kind,
                         created_at=row.created_at, status=row.status, error=row.last_error) for row in rows]


def sent_email(session: Session, *, actor: Actor, message_id: int) -> SentEmailView:
    """One message of the account, as sent (a waiting invitation's token is not shown)."""
    actor.require(Permission.READ_SENT_EMAILS)
    row = session.get(EmailMessage, message_id)
    if row is None or row.account_id != actor.account_id:
        raise NotFound("That email")
    text, html = _shown(row, reveal=actor.can(Permission.MANAGE_MEMBERS))
    return SentEmailView(id=row.id, recipient=row.to_address, subject=row.subject, kind=row.kind,
                         created_at=row.created_at, status=row.status, error=row.last_error, text=text, html=html)


KEEP_FINISHED = timedelta(days=90)


# How long the in-app log keeps an invitation's token: as long as the invitation can be accepted
# (members.INVITATION_DAYS; a test keeps the two equal).
LINK_KEPT = timedelta(days=7)


def purge_finished(session: Session, *, now: datetime, older_than: timedelta = KEEP_FINISHED) -> int:
    """Delete sent and failed messages older than `older_than` (they name people; `cli purge-expired`), and drop
    the tokens the in-app log kept once their invitation has expired."""
    session.execute(sa.update(EmailMessage).where(
        EmailMessage.secret.is_not(None), EmailMessage.status != EmailStatus.QUEUED.value,
        EmailMessage.created_at < now - LINK_KEPT).values(secret=None))
    return session.execute(sa.delete(EmailMessage).where(
        EmailMessage.created_at < now - older_than, EmailMessage.status != EmailStatus.QUEUED.value)).rowcount or 0


# --- SMTP -------------------------------------------------------------------------------------------------------


class NoStartTls(Exception):  # noqa: N818 (an outcome, written to the log)
    """An smtp:// server (not on loopback) that does not offer STARTTLS: nothing is sent."""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: str | None

    @classmethod
    def from_settings(cls) -> SmtpServer | None:
        settings = get_settings()
        if not settings.smtp_url:
            return None
        parts = urllib.parse.urlsplit(settings.smtp_url)
        implicit_tls = parts.scheme == "smtps"
        return cls(host=parts.hostname or "localhost", port=parts.port or (465 if implicit_tls else 587),
                   implicit_tls=implicit_tls,
                   username=urllib.parse.unquote(parts.username) if parts.username else settings.smtp_username,
                   password=urllib.parse.unquote(parts.password) if parts.password else settings.smtp_password)

    def _loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def scrub(self, text: str) -> str:
        """An error message without the credentials (a server may echo what it was sent)."""
        for secret in (self.password, self.username):
            if secret:
                text = text.replace(secret, "***")
        return text

    def send(self, message: email.message.EmailMessage, *, timeout_s: float = TIMEOUT_S) -> None:
        context = ssl.create_default_context()
        if self.implicit_tls:
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=timeout_s, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=timeout_s)
        with client:
            client.ehlo()
            if not self.implicit_tls:
                if client.has_extn("starttls"):
                    client.starttls(context=context)
                    client.ehlo()
                elif not self._loopback():
                    # Messages carry invitation links and names: never in clear text over a network.
                    raise NoStartTls()
            if self.username:
                client.login(self.username, self.password or "")
            client.send_message(message)


Sender = Callable[[email.message.EmailMessage], None]


def build_message(row: EmailMessage, secret: str | None) -> email.message.EmailMessage:
    fill = (lambda body: body.replace(SECRET_MARK, secret)) if secret else (lambda body: body)
    message = email.message.EmailMessage()
    message["From"] = get_settings().email_from
    message["To"] = row.to_address
    message["Subject"] = row.subject
    message["Date"] = email.utils.format_datetime(row.created_at)
    message["Message-ID"] = email.utils.make_msgid(idstring=f"cf{row.id}", domain="chatfortress.portal")
    if row.reply_to:
        message["Reply-To"] = row.reply_to
    if row.kind in OPTIONAL_KINDS:
        message["List-Unsubscribe"] = f"<{link(routes.ACCOUNT_SETTINGS)}#email>"
    message.set_content(fill(row.text_body))
    message.add_alternative(fill(row.html_body), subtype="html")
    return message


# --- The worker -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    account_id: int
    attempts: int  # counting this one
    token: str


def _due(now: datetime) -> sa.Select:
    return select(EmailMessage.id).where(EmailMessage.status == EmailStatus.QUEUED.value,
                                         EmailMessage.next_attempt_at <= now)


def _claim(engine: sa.Engine | None, *, now: datetime, batch: int) -> list[Claimed]:
    with session_scope(engine, write=False) as session:  # most passes find nothing: no lock for those
        if session.exec(_due(now).limit(1)).first() is None:
            return []
    until, token = now + timedelta(seconds=batch * (TIMEOUT_S + 1) + 60), secrets.token_hex(16)
    with session_scope(engine) as session:
        ids = list(session.exec(_due(now).order_by(EmailMessage.next_attempt_at, EmailMessage.id).limit(batch)
                                .with_for_update(skip_locked=True)).all())
        if not ids:
            return []
        session.execute(sa.update(EmailMessage).where(EmailMessage.id.in_(ids))
                        .values(claim_token=token, next_attempt_at=until, attempts=EmailMessage.attempts + 1))
        rows = session.exec(select(EmailMessage.id, EmailMessage.kind, EmailMessage.account_id,
                                   EmailMessage.attempts).where(EmailMessage.id.in_(ids))
                            .order_by(EmailMessage.id)).all()
        return [Claimed(id=i, kind=k, account_id=a, attempts=n, token=token) for i, k, a, n in rows]


def _attempt(engine: sa.Engine | None, claim: Claimed, server: SmtpServer | None,
             send: Sender | None) -> tuple[str, bool]:
    """Send one message: (error in words, "" when sent; whether a failure is for good)."""
    try:
        with session_scope(engine, write=False) as session:
            row = session.get(EmailMessage, claim.id)
            message = build_message(row, row.secret)
    except (ValueError, TypeError) as exc:  # a header that cannot be written: no retry will do better
        return f"the message could not be written ({type(exc).__name__})", True
    try:
        if send is not None:
            send(message)
        elif server is not None:
            server.send(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        return f"the recipient was refused (SMTP {', '.join(map(str, codes))})", all(c >= 500 for c in codes)
    except smtplib.SMTPAuthenticationError as exc:
        return f"the SMTP server refused the user name or password (SMTP {exc.smtp_code})", False
    except smtplib.SMTPResponseException as exc:
        detail = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        text = f"SMTP {exc.smtp_code}: {detail}"
        return (server.scrub(text) if server else text)[:250], exc.smtp_code >= 500
    except NoStartTls:
        return "the SMTP server offers no STARTTLS: nothing was sent in clear text", False
    except ssl.SSLCertVerificationError as exc:  # before OSError: it is one
        return (f"the SMTP server's TLS certificate is not trusted ({exc.verify_message}): nothing was sent"), False
    except (smtplib.SMTPException, OSError) as exc:
        return f"could not reach the SMTP server ({type(exc).__name__})", False
    except Exception as exc:  # every attempt is recorded, whatever failed
        log.exception("email %s: unexpected error", claim.id)
        return f"error ({type(exc).__name__})", False
    return "", False


def _record(engine: sa.Engine | None, claim: Claimed, *, error: str, permanent: bool, transport: str,
            now: datetime) -> str:
    if not error:
        outcome = "sent"
        values = {"status": EmailStatus.SENT.value, "sent_at": now, "last_error": "", "transport": transport}
    elif permanent or claim.attempts >= MAX_ATTEMPTS:
        outcome, values = "failed", {"status": EmailStatus.FAILED.value, "last_error": error}
    else:
        outcome = "retrying"
        values = {"next_attempt_at": now + RETRY_DELAYS[claim.attempts - 1], "last_error": error}
    with session_scope(engine) as session:
        row = session.exec(select(EmailMessage).where(EmailMessage.id == claim.id,
                                                      EmailMessage.claim_token == claim.token,
                                                      EmailMessage.status == EmailStatus.QUEUED.value)
                           .with_for_update()).first()
        if row is not None:
            for key, value in values.items():
                setattr(row, key, value)
            row.claim_token = None
            if outcome != "retrying" and not (outcome == "sent" and transport == "log"):
                row.secret = None  # (the in-app log is the mailbox: it keeps the token, shown to owners only)
    log.info("email %s (%s) of account %s, attempt %s: %s%s", claim.id, claim.kind, claim.account_id,
             claim.attempts, error or f"sent ({transport})", "" if row is not None else " (claim taken over)")
    return outcome if row is not None else "taken_over"


def deliver_due(engine: sa.Engine | None, *, now: datetime | None = None, send: Sender | None = None,
                batch: int = BATCH, max_batches: int = 50) -> dict[str, int]:
    """One pass: claim the due messages (several workers may run at once) and send each through SMTP (CF_SMTP_URL),
    or, without one, to the Sent emails log. `send` replaces the transport (tests). Returns how many were sent,
    are retrying, or failed for good."""
    server = SmtpServer.from_settings() if send is None else None
    transport = "smtp" if (server is not None or send is not None) else "log"
    counts = {"sent": 0, "retrying": 0, "failed": 0}
    for _ in range(max_batches):
        claims = _claim(engine, now=now or clock.now(), batch=batch)
        for claim in claims:
            error, permanent = _attempt(engine, claim, server, send)
            outcome = _record(engine, claim, error=error, permanent=permanent, transport=transport,
                              now=now or clock.now())
            counts[outcome] = counts.get(outcome, 0) + 1
        if len(claims) < batch:
            break
    return {key: value for key, value in counts.items() if value}

