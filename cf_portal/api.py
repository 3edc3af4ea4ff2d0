"""HTTP routes beside the Reflex app (mounted with `api_transformer`): the payment provider's webhook."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cf_portal.db import session_scope
from cf_portal.services.provider_events import handle_event
from cf_portal.settings import get_settings

log = logging.getLogger(__name__)

STRIPE_WEBHOOK_PATH = "/api/webhooks/stripe"
MAX_BODY = 1_000_000  # Stripe's events are far smaller


def apply_stripe_event(event: dict) -> str:
    with session_scope() as session:
        return handle_event(session, provider="stripe", event=event, now=datetime.now(UTC))


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
    """Verify the `Stripe-Signature` header (HMAC with the endpoint's secret, within 5 minutes), then apply
    the event once. Anything unsigned or badly signed is refused before it is read as JSON."""
    secret = get_settings().stripe_webhook_secret
    if not secret:
        return JSONResponse({"error": "Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET)"}, status_code=404)
    payload = await _body_within_limit(request)
    if payload is None:
        return JSONResponse({"error": "too large"}, status_code=413)
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), request.headers.get("stripe-signature", ""),
                                              secret, tolerance=300)
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError, stripe.SignatureVerificationError):
        log.warning("a Stripe webhook with a missing or wrong signature was refused")
        return JSONResponse({"error": "invalid signature"}, status_code=400)
    outcome = await asyncio.to_thread(apply_stripe_event, event)
    log.info("Stripe event %s (%s): %s", event.get("id"), event.get("type"), outcome)
    return JSONResponse({"received": True, "outcome": outcome})


api = Starlette(routes=[Route(STRIPE_WEBHOOK_PATH, stripe_webhook, methods=["POST"])])
