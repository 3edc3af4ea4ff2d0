"""HTTP routes beside the Reflex app (mounted with `api_transformer`): the session cookie's routes and the
payment provider's webhook."""

from __future__ import annotations

import asyncio
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from cf_portal import clock, routes
from cf_portal.db import session_scope
from cf_portal.middleware import cleared_cookie_headers, session_cookie_header, session_token
from cf_portal.payments.provider import PaymentEvent
from cf_portal.payments.stripe_webhook import InvalidSignature, verified_event
from cf_portal.services import auth
from cf_portal.services.provider_events import handle_event
from cf_portal.settings import get_settings

log = logging.getLogger(__name__)

STRIPE_WEBHOOK_PATH = "/api/webhooks/stripe"
MAX_BODY = 1_000_000  # Stripe's events are far smaller


def apply_provider_event(event: PaymentEvent) -> str:
    with session_scope() as session:
        return handle_event(session, event=event, now=clock.now())


async def _body_within_limit(request: Request) -> bytes | None:
    """The request's body, or None as soon as it is known to exceed MAX_BODY: from its declared length before
    reading anything, else while reading (a body sent without a length is read only up to the limit)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


async def stripe_webhook(request: Request) -> JSONResponse:
    """Verify the `Stripe-Signature` header (`payments/stripe_webhook.py`: HMAC with the endpoint's secret,
    within 5 minutes), then apply the event once. Anything unsigned or badly signed is refused before it is
    read as JSON."""
    secret = get_settings().stripe_webhook_secret
    if not secret:
        return JSONResponse({"error": "Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET)"}, status_code=404)
    payload = await _body_within_limit(request)
    if payload is None:
        return JSONResponse({"error": "too large"}, status_code=413)
    try:
        event = verified_event(payload, request.headers.get("stripe-signature", ""), secret)
    except InvalidSignature:
        log.warning("a Stripe webhook with a missing or wrong signature was refused")
        return JSONResponse({"error": "invalid signature"}, status_code=400)
    outcome = await asyncio.to_thread(apply_provider_event, event)
    log.info("Stripe event %s (%s): %s", event.event_id, event.type, outcome)
    return JSONResponse({"received": True, "outcome": outcome})


def _from_this_site(request: Request) -> bool:
    """A form posted by the portal's own pages (the browser says so in Sec-Fetch-Site, or Origin names this
    host); anything else is refused, so no other site can sign a visitor in to an account of its choosing."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin")
    return origin is None or origin.split("://", 1)[-1] == request.headers.get("host", "")


def _redeem(code: str) -> auth.SignedIn | None:
    with session_scope() as session:
        return auth.redeem_handoff(session, code, now=clock.now())


def _end(token: str) -> None:
    with session_scope() as session:
        auth.end_session(session, token)


async def begin_session(request: Request) -> RedirectResponse:
    """Trade the one-time code a sign-in handed to this tab for the HttpOnly session cookie, then go on to
    `next` (a path of this portal only)."""
    form = await request.form()
    code, next_path = str(form.get("code", "")), routes.safe_next(str(form.get("next", "")))
    signed_in = await asyncio.to_thread(_redeem, code) if _from_this_site(request) else None
    if signed_in is None:
        log.info("a session hand-off code was refused (unknown, used, expired or from another site)")
        return RedirectResponse(routes.SIGN_IN, status_code=303)
    response = RedirectResponse(next_path, status_code=303)
    response.headers.append("set-cookie", session_cookie_header(signed_in.token, remember=signed_in.remember))
    for cleared in cleared_cookie_headers(session=False):
        response.headers.append("set-cookie", cleared)
    response.headers["cache-control"] = "no-store"
    return response


async def end_session(request: Request) -> RedirectResponse:
    """Sign this browser out: its session ends on the server and its cookie is cleared (for the portal's own
    pages only: another site cannot sign a visitor out)."""
    response = RedirectResponse(routes.SIGN_IN, status_code=303)
    if _from_this_site(request):
        if token := session_token(request.headers.get("cookie", "")):
            await asyncio.to_thread(_end, token)
        for cleared in cleared_cookie_headers():
            response.headers.append("set-cookie", cleared)
    response.headers["cache-control"] = "no-store"
    return response


api = Starlette(routes=[
    Route(routes.BEGIN_SESSION, begin_session, methods=["POST"]),
    Route(routes.END_SESSION, end_session, methods=["POST"]),
    Route(STRIPE_WEBHOOK_PATH, stripe_webhook, methods=["POST"]),
])
