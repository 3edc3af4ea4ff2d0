"""Outgoing webhooks: the account's endpoints are told when a seat is assigned, freed or moved and when a license
is suspended or canceled, so a product need not ask.

Where each promise lives:
- None lost, none sent for a change that rolled back: `enqueue` only adds outbox rows (`webhook_event`) to the
  caller's session, in the transaction of the change (seats.py, renewals.py, provider_events.py and
  provider_sync.py call the `seat_*` and `license_status_changed` helpers here). An endpoint gets its own row,
  with the same public event id ("evt_…") for every endpoint, so each is retried and logged on its own.
- Each event delivered once by several workers at a time: `deliver_due` claims due rows in a short transaction
  (PostgreSQL `FOR UPDATE SKIP LOCKED`; SQLite's write lock, `BEGIN IMMEDIATE`), sets a claim token and moves
  `next_attempt_at` to the end of the claim, commits, and only then posts, outside any transaction. The outcome
  is written only while the row still carries that token. A worker that dies leaves the row to be claimed again
  when its claim ends: delivery is at least once, and receivers deduplicate by the event id.
- Retries: an answer other than 2xx (a redirect too: they are not followed), a timeout or no connection is
  tried again 1 min, 5 min, 30 min, 2 h, 12 h and 24 h later (`RETRY_DELAYS`); after the last the row is
  Failed. Every attempt is kept (`webhook_delivery`: when, how long, the status code or the error; never the
  answer's body). `resend` queues any event of the account again, with a fresh schedule.
- Signing, like Stripe's: `CF-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with the
  endpoint's secret; receivers check it with `verify_signature`. The secret is never stored: it is
  HMAC-SHA256(CF_WEBHOOK_SIGNING_KEY, "<endpoint id>:<salt>") with a random salt kept in the row, so the
  database alone can neither sign nor forge a delivery. It is shown once, when the endpoint is made (or its
  secret rolled); changing the server key changes every endpoint's secret.
- Where deliveries may go (SSRF): https only, no user name or password in the URL; an address that is not
  public (private, loopback, link-local, reserved, multicast) is refused, as an IP in the URL when the endpoint
  is saved and again for every address the host name resolves to before each attempt. Demo mode (and tests)
  also allow http and loopback (localhost, 127.0.0.1, ::1), never the other private ranges. What is left: a name
  that resolves differently between the check and the connection (DNS rebinding); an egress firewall closes that.
- Logs name the event id, its type and the endpoint id: never the secret, the URL or the payload (names, emails).
  Delivered and failed events are deleted after 30 days (`purge_finished`, run by `cli purge-expired`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, select

from cf_portal import clock
from cf_portal.db import session_scope
from cf_portal.models import (
    WEBHOOK_EVENT_TYPES,
    ChildAccount,
    Employee,
    License,
    LicenseStatus,
    Plan,
    Product,
    SeatAssignment,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventStatus,
)
from cf_portal.services import audit
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError, NotFound
from cf_portal.services.roles import Permission
from cf_portal.settings import get_settings

log = logging.getLogger(__name__)

EVENT_TYPES = WEBHOOK_EVENT_TYPES
SIGNATURE_HEADER = "CF-Signature"
# Waits after the 1st, 2nd, … failed attempt; a failure after the last makes the event Failed.
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
                timedelta(hours=12), timedelta(hours=24))
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
TIMEOUT_S = 10.0
BATCH = 20  # events one worker claims at a time
# How long a receiver accepts a signature's timestamp (the default of `verify_signature`).
TOLERANCE_S = 300
# Demo mode's stand-in for CF_WEBHOOK_SIGNING_KEY: not secret, and refused outside demo mode.
DEMO_SIGNING_KEY = "cf-portal-demo-webhook-signing-key (demo mode only)"
URL_MAX = 2000
# Delivered and failed events are deleted this long after they were made (`purge_finished`, cli purge-expired).
KEEP_FINISHED = timedelta(days=30)
LICENSE_EVENTS = {LicenseStatus.SUSPENDED.value: "license.suspended", LicenseStatus.CANCELED.value: "license.canceled"}

# (url, body, headers, timeout in seconds) → the HTTP status code; raises when there is no answer.
HttpPost = Callable[[str, bytes, dict[str, str], float], int]


# --- Signatures -----------------------------------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The CF-Signature header of `body` sent at `timestamp` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, header: str, body: bytes, tolerance: int = TOLERANCE_S,
                     now: float | None = None) -> bool:
    """For receivers: True when `header` (CF-Signature) signs exactly `body` with `secret` and its timestamp is
    within `tolerance` seconds of now (an old delivery replayed by someone else is refused)."""
    timestamp, signatures = None, []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).partition(",v1=")[2]
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)


def _server_key() -> bytes:
    settings = get_settings()
    if settings.webhook_signing_key:
        return settings.webhook_signing_key.encode()
    if settings.demo_mode:
        return DEMO_SIGNING_KEY.encode()
    raise DomainError("Webhooks are not set up on this server: the operator sets CF_WEBHOOK_SIGNING_KEY.")


def endpoint_secret(endpoint_id: int, salt: str) -> str:
    """The endpoint's signing secret ("whsec_…"), worked out again whenever it is needed, never stored."""
    return "whsec_" + hmac.new(_server_key(), f"{endpoint_id}:{salt}".encode(), hashlib.sha256).hexdigest()


# --- Where deliveries may go ----------------------------------------------------------------------------------

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def _address_allowed(address: str, *, demo_mode: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:  # ::ffff:10.0.0.1 is 10.0.0.1
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return demo_mode
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, demo_mode: bool | None = None) -> str:
    """The endpoint URL, trimmed, or a DomainError saying what is wrong with it (see the module's docstring)."""
    demo_mode = get_settings().demo_mode if demo_mode is None else demo_mode
    url = (url or "").strip()
    wrong = DomainError("Enter the full address of your endpoint, like https://example.com/webhooks.", field="url")
    if not url or len(url) > URL_MAX or any(ch.isspace() for ch in url):
        raise wrong
    try:
        parts = urllib.parse.urlsplit(url)
        host = (parts.hostname or "").lower()
        _ = parts.port  # a port that is not a number raises
    except ValueError as exc:
        raise wrong from exc
    if parts.scheme not in ("https", "http") or not host:
        raise wrong
    if parts.username is not None or parts.password is not None:
        raise DomainError("Leave the user name and password out of the address; check the signature instead.",
                          field="url")
    if parts.fragment:
        raise DomainError("The address cannot have a #fragment.", field="url")
    loopback = host in LOOPBACK_NAMES
    if parts.scheme == "http" and not (demo_mode and loopback):
        raise DomainError("The address must start with https://.", field="url")
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        if not (demo_mode and host == "localhost"):
            raise DomainError("The address must be reachable on the internet, not a local name.", field="url")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None and not _address_allowed(host, demo_mode=demo_mode):
        raise DomainError("The address must be a public one, not a private or local network's.", field="url")
    return urllib.parse.urlunsplit(parts)  # the scheme lower-cased


class UnsafeDestination(Exception):  # noqa: N818 (an outcome of an attempt, written to the delivery log)
    pass


def _check_destination(url: str, *, demo_mode: bool) -> None:
    """Before each attempt: every address the host resolves to must be allowed (a name may point anywhere)."""
    parts = urllib.parse.urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeDestination("host name not found") from exc
    if not infos or not all(_address_allowed(info[4][0], demo_mode=demo_mode) for info in infos):
        raise UnsafeDestination("refused: the host resolves to a private or local address")


def httpx_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """The real POST: a short timeout; redirects not followed (each would need the checks again); the answer's
    body never read (it could be endless); no proxy settings or .netrc credentials taken from the environment."""
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client, \
            client.stream("POST", url, content=body, headers=headers) as response:
        return response.status_code


# --- Endpoints: what the Settings → Webhooks page uses --------------------------------------------------------


class EndpointView(BaseModel):
    id: int
    url: str
    event_types: list[str]
    description: str
    created_at: datetime
    enabled: bool


class NewSecret(BaseModel):
    """An endpoint with its signing secret: shown once (on creation, or when rolled), never again."""

    endpoint: EndpointView
    secret: str


class EventView(BaseModel):
    """One line of an endpoint's delivery log."""

    id: int  # what `resend` takes
    event_id: str
    type: str
    created_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime | None  # None once delivered or failed
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str


class AttemptView(BaseModel):
    attempted_at: datetime
    status_code: int | None
    error: str
    duration_ms: int


def _view(row: WebhookEndpoint) -> EndpointView:
    return EndpointView(id=row.id, url=row.url, event_types=row.event_types.split(","), description=row.description,
                        created_at=row.created_at, enabled=row.disabled_at is None)


def _types(event_types: Iterable[str]) -> str:
    wanted = set(event_types)
    unknown = wanted - set(EVENT_TYPES)
    if unknown or not wanted:
        raise DomainError("Choose at least one of the events: " + ", ".join(EVENT_TYPES) + ".", field="events")
    return ",".join(kind for kind in EVENT_TYPES if kind in wanted)


def _endpoint(session: Session, actor: Actor, endpoint_id: int) -> WebhookEndpoint:
    row = session.get(WebhookEndpoint, endpoint_id)
    if row is None or row.account_id != actor.account_id:
        raise NotFound("That webhook endpoint")
    return row


def list_endpoints(session: Session, *, actor: Actor) -> list[EndpointView]:
    actor.require(Permission.MANAGE_WEBHOOKS)
    rows = session.exec(select(WebhookEndpoint).where(WebhookEndpoint.account_id == actor.account_id)
                        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)).all()
    return [_view(row) for row in rows]


def create_endpoint(session: Session, *, actor: Actor, url: str, event_types: Iterable[str], description: str = "",
                    now: datetime | None = None) -> NewSecret:
    """Register an endpoint; the answer carries its signing secret, which is not shown again."""
    actor.require(Permission.MANAGE_WEBHOOKS)
    _server_key()  # refused at once on a server that could not sign
    row = WebhookEndpoint(account_id=actor.account_id, url=check_url(url), event_types=_types(event_types),
                          description=(description or "").strip()[:120], secret_salt=secrets.token_hex(16),
                          created_by_user_id=actor.user_id, created_at=now or clock.now())
    session.add(row)
    session.flush()
    audit.record(session, actor, "webhook.created", "webhook_endpoint", row.id, row.event_types, at=row.created_at)
    return NewSecret(endpoint=_view(row), secret=endpoint_secret(row.id, row.secret_salt))


def roll_secret(session: Session, *, actor: Actor, endpoint_id: int) -> NewSecret:
    """A new signing secret (the old one stops working at once), shown once."""
    actor.require(Permission.MANAGE_WEBHOOKS)
    row = _endpoint(session, actor, endpoint_id)
    row.secret_salt = secrets.token_hex(16)
    audit.record(session, actor, "webhook.secret_rolled", "webhook_endpoint", row.id)
    return NewSecret(endpoint=_view(row), secret=endpoint_secret(row.id, row.secret_salt))


def set_enabled(session: Session, *, actor: Actor, endpoint_id: int, enabled: bool,
                now: datetime | None = None) -> EndpointView:
    """Pause (nothing is written for it; its pending events wait) or resume an endpoint."""
    actor.require(Permission.MANAGE_WEBHOOKS)
    row = _endpoint(session, actor, endpoint_id)
    if enabled != (row.disabled_at is None):
        row.disabled_at = None if enabled else (now or clock.now())
        audit.record(session, actor, "webhook.enabled" if enabled else "webhook.disabled", "webhook_endpoint", row.id)
    return _view(row)


def delete_endpoint(session: Session, *, actor: Actor, endpoint_id: int) -> None:
    """Delete an endpoint with its events and their log."""
    actor.require(Permission.MANAGE_WEBHOOKS)
    row = _endpoint(session, actor, endpoint_id)
    audit.record(session, actor, "webhook.deleted", "webhook_endpoint", row.id)
    event_ids = select(WebhookEvent.id).where(WebhookEvent.endpoint_id == row.id)
    session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.webhook_event_id.in_(event_ids)))
    session.execute(sa.delete(WebhookEvent).where(WebhookEvent.endpoint_id == row.id))
    session.delete(row)


def delivery_log(session: Session, *, actor: Actor, endpoint_id: int, offset: int = 0,
                 limit: int = 50) -> list[EventView]:
    """An endpoint's events, newest first, each with its last attempt's answer."""
    actor.require(Permission.MANAGE_WEBHOOKS)
    _endpoint(session, actor, endpoint_id)
    rows = session.exec(select(WebhookEvent).where(WebhookEvent.endpoint_id == endpoint_id)
                        .order_by(WebhookEvent.created_at.desc(), WebhookEvent.id.desc())
                        .offset(max(offset, 0)).limit(min(max(limit, 1), 200))).all()
    last_ids = (select(sa.func.max(WebhookDelivery.id))
                .where(WebhookDelivery.webhook_event_id.in_([row.id for row in rows]))
                .group_by(WebhookDelivery.webhook_event_id))
    last = {d.webhook_event_id: d for d in session.exec(select(WebhookDelivery)
                                                         .where(WebhookDelivery.id.in_(last_ids))).all()}
    return [EventView(id=row.id, event_id=row.event_id, type=row.type, created_at=row.created_at, status=row.status,
                      attempts=row.attempts, delivered_at=row.delivered_at,
                      next_attempt_at=row.next_attempt_at if row.status == WebhookEventStatus.PENDING.value else None,
                      last_status_code=last[row.id].status_code if row.id in last else None,
                      last_error=last[row.id].error if row.id in last else "")
            for row in rows]


def attempts_of(session: Session, *, actor: Actor, webhook_event_id: int) -> list[AttemptView]:
    """Every attempt to deliver one event, oldest first."""
    actor.require(Permission.MANAGE_WEBHOOKS)
    row = session.get(WebhookEvent, webhook_event_id)
    if row is None or row.account_id != actor.account_id:
        raise NotFound("That webhook event")
    found = session.exec(select(WebhookDelivery).where(WebhookDelivery.webhook_event_id == row.id)
                         .order_by(WebhookDelivery.attempted_at, WebhookDelivery.id)).all()
    return [AttemptView(attempted_at=d.attempted_at, status_code=d.status_code, error=d.error,
                        duration_ms=d.duration_ms) for d in found]


def resend(session: Session, *, actor: Actor, webhook_event_id: int, now: datetime | None = None) -> None:
    """Queue an event of the account again, due at once, with a fresh retry schedule (delivered, failed or
    waiting for a retry; not while a worker is sending it)."""
    actor.require(Permission.MANAGE_WEBHOOKS)
    now = now or clock.now()
    row = session.exec(select(WebhookEvent).where(WebhookEvent.id == webhook_event_id).with_for_update()).first()
    if row is None or row.account_id != actor.account_id:
        raise NotFound("That webhook event")
    if row.claim_token is not None and row.next_attempt_at > now:
        raise DomainError("This event is being sent right now; look again in a moment.")
    row.status, row.attempts, row.next_attempt_at = WebhookEventStatus.PENDING.value, 0, now
    row.claim_token, row.delivered_at = None, None
    audit.record(session, actor, "webhook.resent", "webhook_event", row.id, f"{row.type} {row.event_id}", at=now)


# --- The outbox: written in the caller's transaction ----------------------------------------------------------


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _wanting(session: Session, account_id: int, type_: str) -> list[int]:
    rows = session.exec(select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
        WebhookEndpoint.account_id == account_id, WebhookEndpoint.disabled_at.is_(None))
        .order_by(WebhookEndpoint.id)).all()
    return [endpoint_id for endpoint_id, types in rows if type_ in types.split(",")]


def enqueue(session: Session, *, account_id: int, type_: str, data: dict, now: datetime | None = None) -> str | None:
    """Add the event to the outbox of every enabled endpoint of the account that wants `type_`, in the caller's
    session (its transaction decides whether the event exists). Returns the event id, None when no endpoint
    wants it."""
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {type_!r}")
    endpoints = _wanting(session, account_id, type_)
    if not endpoints:
        return None
    now = now or clock.now()
    event_id = "evt_" + secrets.token_hex(12)
    body = json.dumps({"id": event_id, "type": type_, "created": _stamp(now), "account": {"id": account_id},
                       "data": data}, separators=(",", ":"), ensure_ascii=False)
    session.add_all([WebhookEvent(account_id=account_id, endpoint_id=endpoint_id, event_id=event_id, type=type_,
                                  payload=body, created_at=now, next_attempt_at=now) for endpoint_id in endpoints])
    return event_id


def _license_data(session: Session, license_id: int) -> dict:
    lic, plan, product = session.exec(select(License, Plan, Product).join(Plan, Plan.id == License.plan_id)
                                      .join(Product, Product.id == Plan.product_id)
                                      .where(License.id == license_id)).one()
    return {"id": lic.id, "reference": lic.reference_name, "product": product.code, "plan": plan.code,
            "status": lic.status}


def _holder_data(session: Session, seat: SeatAssignment) -> dict:
    if seat.employee_id is not None:
        person = session.get(Employee, seat.employee_id)
        return {"kind": "employee", "id": person.id, "email": person.email, "name": person.name}
    child = session.get(ChildAccount, seat.child_account_id)
    return {"kind": "child_account", "id": child.id, "email": child.contact_email, "name": child.name}


def seats_assigned(session: Session, seats: list[SeatAssignment], *, now: datetime) -> None:
    """seat.assigned for each new seat (all of one account)."""
    if not seats or not _wanting(session, seats[0].account_id, "seat.assigned"):
        return
    license_data = {lid: _license_data(session, lid) for lid in {seat.license_id for seat in seats}}
    for seat in seats:
        enqueue(session, account_id=seat.account_id, type_="seat.assigned", now=now, data={
            "seat": {"id": seat.id, "assigned_at": _stamp(seat.assigned_at)},
            "license": license_data[seat.license_id], "holder": _holder_data(session, seat)})


def seat_unassigned(session: Session, seat: SeatAssignment, *, now: datetime) -> None:
    if not _wanting(session, seat.account_id, "seat.unassigned"):
        return
    enqueue(session, account_id=seat.account_id, type_="seat.unassigned", now=now, data={
        "seat": {"id": seat.id, "unassigned_at": _stamp(now)},
        "license": _license_data(session, seat.license_id), "holder": _holder_data(session, seat)})


def seat_moved(session: Session, old: SeatAssignment, new: SeatAssignment, *, now: datetime) -> None:
    """seat.moved: `from` loses the license and `to` gains it at the same instant."""
    if not _wanting(session, old.account_id, "seat.moved"):
        return
    enqueue(session, account_id=old.account_id, type_="seat.moved", now=now, data={
        "seat": {"id": new.id, "previous_id": old.id, "moved_at": _stamp(now)},
        "license": _license_data(session, old.license_id),
        "from": _holder_data(session, old), "to": _holder_data(session, new)})


def license_status_changed(session: Session, lic: License, *, before: str, now: datetime, reason: str,
                           seats_freed: int | None = None) -> None:
    """license.suspended or license.canceled when `lic` has just become so. A canceled license's seats end with
    it: no seat.unassigned is sent for each (`seats_freed` says how many)."""
    type_ = LICENSE_EVENTS.get(lic.status)
    if type_ is None or before == lic.status or not _wanting(session, lic.account_id, type_):
        return
    data = {"license": _license_data(session, lic.id), "reason": reason[:200]}
    if seats_freed is not None:
        data["seats_freed"] = seats_freed
    enqueue(session, account_id=lic.account_id, type_=type_, now=now, data=data)


def purge_finished(session: Session, *, now: datetime, older_than: timedelta = KEEP_FINISHED) -> int:
    """Delete delivered and failed events (with their attempts) older than `older_than`: their payloads name
    people, and the log need not keep them for ever. Returns how many."""
    old = select(WebhookEvent.id).where(WebhookEvent.created_at < now - older_than,
                                        WebhookEvent.status != WebhookEventStatus.PENDING.value)
    session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.webhook_event_id.in_(old)))
    return session.execute(sa.delete(WebhookEvent).where(WebhookEvent.id.in_(old))).rowcount or 0


# --- The worker -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: int
    event_id: str
    type: str
    endpoint_id: int
    url: str
    secret_salt: str
    payload: str
    attempts: int  # counting this one
    token: str


def _due(now: datetime) -> sa.Select:
    return (select(WebhookEvent.id).join(WebhookEndpoint, WebhookEndpoint.id == WebhookEvent.endpoint_id)
            .where(WebhookEvent.status == WebhookEventStatus.PENDING.value, WebhookEvent.next_attempt_at <= now,
                   WebhookEndpoint.disabled_at.is_(None)))


def _claim(engine: sa.Engine | None, *, now: datetime, batch: int, timeout_s: float) -> list[Claimed]:
    # A read first: a pass with nothing due (most passes of the app's worker, every 5 s) takes no lock.
    with session_scope(engine, write=False) as session:
        if session.exec(_due(now).limit(1)).first() is None:
            return []
    # The claim lasts until every claimed event could have timed out, and a minute more.
    until = now + timedelta(seconds=batch * (timeout_s + 1) + 60)
    token = secrets.token_hex(16)
    with session_scope(engine) as session:  # SQLite: the write lock from the start (BEGIN IMMEDIATE)
        ids = list(session.exec(
            _due(now).order_by(WebhookEvent.next_attempt_at, WebhookEvent.id).limit(batch)
            .with_for_update(skip_locked=True, of=WebhookEvent)).all())
        if not ids:
            return []
        session.execute(sa.update(WebhookEvent).where(WebhookEvent.id.in_(ids))
                        .values(claim_token=token, next_attempt_at=until, attempts=WebhookEvent.attempts + 1))
        rows = session.exec(select(WebhookEvent, WebhookEndpoint)
                            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookEvent.endpoint_id)
                            .where(WebhookEvent.id.in_(ids)).order_by(WebhookEvent.next_attempt_at,
                                                                       WebhookEvent.id)).all()
        return [Claimed(id=event.id, event_id=event.event_id, type=event.type, endpoint_id=endpoint.id,
                        url=endpoint.url, secret_salt=endpoint.secret_salt, payload=event.payload,
                        attempts=event.attempts, token=token) for event, endpoint in rows]


def _attempt(claim: Claimed, http_post: HttpPost, *, timeout_s: float, demo_mode: bool) -> tuple[int | None, str]:
    """Send one event: (status code or None, error in words; "" when delivered)."""
    body = claim.payload.encode()
    headers = {"Content-Type": "application/json", "User-Agent": "cf-portal-webhooks/1",
               "CF-Event-Id": claim.event_id, "CF-Event-Type": claim.type,
               SIGNATURE_HEADER: sign(endpoint_secret(claim.endpoint_id, claim.secret_salt), body,
                                      int(time.time()))}
    try:
        _check_destination(claim.url, demo_mode=demo_mode)
        status = http_post(claim.url, body, headers, timeout_s)
    except UnsafeDestination as exc:
        return None, str(exc)
    except httpx.TimeoutException:
        return None, f"no answer within {timeout_s:g} s"
    except (httpx.HTTPError, OSError) as exc:
        return None, f"could not connect ({type(exc).__name__})"
    except Exception as exc:  # a worker must record every attempt, whatever failed
        log.exception("webhook %s to endpoint %s: unexpected error", claim.event_id, claim.endpoint_id)
        return None, f"error ({type(exc).__name__})"
    return status, "" if 200 <= status < 300 else f"answered HTTP {status}"


def _record(engine: sa.Engine | None, claim: Claimed, *, status_code: int | None, error: str, started: datetime,
            duration_ms: int, now: datetime) -> str:
    """Log the attempt and, while the claim is still this worker's, its outcome: delivered, retrying, failed."""
    if not error:
        outcome, values = "delivered", {"status": WebhookEventStatus.DELIVERED.value, "delivered_at": now}
    elif claim.attempts >= MAX_ATTEMPTS:
        outcome, values = "failed", {"status": WebhookEventStatus.FAILED.value}
    else:
        outcome, values = "retrying", {"next_attempt_at": now + RETRY_DELAYS[claim.attempts - 1]}
    with session_scope(engine) as session:
        session.add(WebhookDelivery(webhook_event_id=claim.id, attempted_at=started, status_code=status_code,
                                    error=error[:200], duration_ms=max(duration_ms, 0)))
        kept = session.execute(sa.update(WebhookEvent).where(
            WebhookEvent.id == claim.id, WebhookEvent.claim_token == claim.token,
            WebhookEvent.status == WebhookEventStatus.PENDING.value).values(claim_token=None, **values)).rowcount
    log.info("webhook %s (%s) to endpoint %s, attempt %s: %s%s", claim.event_id, claim.type, claim.endpoint_id,
             claim.attempts, error or "delivered", "" if kept else " (claim taken over; outcome not kept)")
    return outcome if kept else "taken_over"


def deliver_due(engine: sa.Engine | None, *, now: datetime | None = None, http_post: HttpPost | None = None,
                batch: int = BATCH, timeout_s: float = TIMEOUT_S, max_batches: int = 50) -> dict[str, int]:
    """One pass: claim the due events (several workers may run at once) and send each; returns how many were
    delivered, are retrying, or failed for good. `now` decides what is due and when retries are; the signature's
    timestamp is the real moment of sending."""
    http_post = http_post or httpx_post
    demo_mode = get_settings().demo_mode
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    for _ in range(max_batches):
        moment = now or clock.now()
        claims = _claim(engine, now=moment, batch=batch, timeout_s=timeout_s)
        for claim in claims:
            started, clock_start = now or clock.now(), time.monotonic()
            status_code, error = _attempt(claim, http_post, timeout_s=timeout_s, demo_mode=demo_mode)
            outcome = _record(engine, claim, status_code=status_code, error=error, started=started,
                              duration_ms=int((time.monotonic() - clock_start) * 1000), now=now or clock.now())
            counts[outcome] = counts.get(outcome, 0) + 1
        if len(claims) < batch:
            break
    return {key: value for key, value in counts.items() if value}


def run_forever(engine: sa.Engine | None = None, *, interval_s: float = 10.0,
                stop: threading.Event | None = None, deliver: Callable[..., dict[str, int]] | None = None) -> None:
    """`deliver` (default: `deliver_due`; `emails.deliver_due` for the email outbox) every `interval_s` seconds
    until `stop` is set (the commands' --loop; a thread of the app)."""
    stop = stop or threading.Event()
    deliver = deliver or deliver_due
    while not stop.is_set():
        try:
            deliver(engine)
        except Exception:  # the database away for a moment: try again next time
            log.exception("outbox delivery pass failed (%s)", deliver.__module__)
        stop.wait(interval_s)
