"""HTTP routes beside the Reflex app (mounted with `api_transformer`): the session cookie's routes, the
payment provider's webhook, and the entitlements API under /api/v1 (its own section below)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from urllib.parse import quote

import sqlalchemy as sa
from pydantic import BaseModel, Field, ValidationError
from pydantic.json_schema import models_json_schema
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from cf_portal import clock, routes
from cf_portal.db import get_engine, read_scope, session_scope
from cf_portal.middleware import cleared_cookie_headers, session_cookie_header, session_token
from cf_portal.payments.provider import PaymentError, PaymentEvent
from cf_portal.payments.stripe_webhook import InvalidSignature, verified_event
from cf_portal.services import api_keys, auth, entitlements, invoice_pdf
from cf_portal.services.api_keys import ApiCaller
from cf_portal.services.errors import DomainError, NotFound, SignInRequired
from cf_portal.services.provider_events import handle_event
from cf_portal.services.providers import get_provider
from cf_portal.services.rate_limit import TokenBuckets
from cf_portal.settings import get_settings

log = logging.getLogger(__name__)

STRIPE_WEBHOOK_PATH = "/api/webhooks/stripe"
MAX_BODY = 1_000_000  # Stripe's events are far smaller
NO_STORE = {"cache-control": "no-store"}


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


# --- An invoice's documents (the Billing page's "Download PDF" and "Stripe's PDF") --------------------------------
#
# Plain GETs a browser makes with its session cookie. Each resolves the member from the cookie again (an ended
# session or a removed member is sent to sign in) and reads the invoice by id *and* the member's account: another
# account's invoice is 404, as is one that does not exist. Every role sees the Billing page's invoices, so every
# role of the account may download them. Answers are never cached (no-store): an invoice is the account's alone.

def _invoice_document(token: str, invoice_id: int) -> invoice_pdf.InvoiceDocument:
    with read_scope() as session:
        actor = auth.actor_for_token(session, token, now=clock.now())
        return invoice_pdf.invoice_document(session, account_id=actor.account_id, invoice_id=invoice_id)


def _provider_document_url(token: str, invoice_id: int) -> str | None:
    with read_scope() as session:
        actor = auth.actor_for_token(session, token, now=clock.now())
        return invoice_pdf.provider_document_url(session, get_provider(), account_id=actor.account_id,
                                                 invoice_id=invoice_id)


async def _invoice_answer(request: Request, work: Callable[[str, int], Response]) -> Response:
    token = session_token(request.headers.get("cookie", ""))
    try:
        if not token:
            raise SignInRequired(routes.BILLING)
        return await asyncio.to_thread(work, token, request.path_params["invoice_id"])
    except SignInRequired:
        return RedirectResponse(f"{routes.SIGN_IN}?next={quote(routes.BILLING, safe='')}", status_code=303,
                                headers=NO_STORE)
    except NotFound:
        return PlainTextResponse("No such invoice.", status_code=404, headers=NO_STORE)
    except PaymentError as exc:
        log.warning("the payment provider's PDF of invoice %s was not found: %s", request.path_params["invoice_id"],
                    exc.code)
        return PlainTextResponse(exc.message, status_code=502, headers=NO_STORE)


async def invoice_pdf_download(request: Request) -> Response:
    """The invoice as a PDF attachment, `invoice-<number>.pdf`."""
    def work(token: str, invoice_id: int) -> Response:
        document = _invoice_document(token, invoice_id)
        return Response(invoice_pdf.render_pdf(document), media_type="application/pdf", headers={
            **NO_STORE, "content-disposition": f'attachment; filename="{document.filename}"'})

    return await _invoice_answer(request, work)


async def provider_invoice_pdf(request: Request) -> Response:
    """A redirect to the payment provider's own PDF of the invoice (Stripe's; asked for now, never stored); 404
    when the provider keeps none."""
    def work(token: str, invoice_id: int) -> Response:
        if (url := _provider_document_url(token, invoice_id)) is None:
            raise NotFound("That invoice's PDF at the payment provider")
        return RedirectResponse(url, status_code=303, headers=NO_STORE)

    return await _invoice_answer(request, work)


# --- The entitlements API (/api/v1) --------------------------------------------------------------------------
#
# Every answer is JSON; every error is {"error": {"message": ..., "code": ...}}. A request names its key with
# `Authorization: Bearer cfk_…` (no session cookie: PortalMiddleware lets this header through, adds its security
# headers, which do no harm to JSON, and caps the body at 1 MB, enough for 1,000 emails). The key is looked up
# again on every request (a revoked key is refused at once by every worker), then counted against its rate
# (`API_RATE`), then the work runs as a read (`db.read_scope`: autocommit on PostgreSQL) in a worker thread, or on
# the event loop for a single check on SQLite (`_short_reads_inline`); the seats' and the key's last use are written after the answer is sent (a background task), in a short transaction of their own
# and only when stale (`services.entitlements.record_use`).
# Nothing here logs a key or an email: refusals are logged by reason, keys by id.

API_RATE = TokenBuckets(rate=50, burst=100)  # per key and per worker process: see services/rate_limit.py
ENTITLEMENTS_CHECK = f"{routes.API_V1}/entitlements/check"
OPENAPI = f"{routes.API_V1}/openapi.json"


class RateLimited(Exception):  # noqa: N818
    def __init__(self, wait_seconds: float) -> None:
        super().__init__("rate limited")
        self.retry_after = max(1, math.ceil(wait_seconds))


class ApiErrorBody(BaseModel):
    message: str
    code: str


class ApiError(BaseModel):
    error: ApiErrorBody


class BatchCheck(BaseModel):
    product: str = Field(max_length=40, description="A product code of the catalog: awareness, phishing, darkweb")
    emails: list[str] = Field(max_length=entitlements.MAX_BATCH, description="Up to 1,000 emails, answered in order")


def error_response(status: int, message: str, *, code: str, headers: Mapping[str, str] | None = None) -> Response:
    body = ApiError(error=ApiErrorBody(message=message, code=code)).model_dump_json()
    return Response(body, status_code=status, media_type="application/json", headers={**NO_STORE, **(headers or {})})


def _json(payload: BaseModel) -> Response:
    return Response(payload.model_dump_json(), media_type="application/json", headers=NO_STORE)


def _bearer(request: Request) -> str:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


Work = Callable[[Session, ApiCaller], tuple[BaseModel, list[entitlements.Entitlement]]]


def _serve(key: str, work: Work) -> tuple[BaseModel, Callable[[], None] | None]:
    """In a worker thread: authenticate, count against the rate, do the (read-only) work. Returns the answer and,
    when a stamp of last use is stale, what records it (run once the answer is sent: the caller never waits for
    a write)."""
    now = clock.now()
    with read_scope() as session:
        caller = api_keys.authenticate(session, key, scope=api_keys.ENTITLEMENTS_READ, now=now)
        if wait := API_RATE.take(caller.key_id):
            raise RateLimited(wait)
        payload, answers = work(session, caller)
    seats = entitlements.uses_to_record(answers, now)
    if not seats and not caller.use_to_record(now):
        return payload, None

    def record_uses() -> None:
        try:
            with session_scope() as session:
                entitlements.record_use(session, account_id=caller.account_id, seat_ids=seats, now=now)
                api_keys.record_use(session, caller=caller, now=now)
        except sa.exc.SQLAlchemyError as exc:
            # The answer stands; the stamp is tried again by the next check (it is stale still).
            log.warning("the last use of API key %s and %s seats was not recorded: %s", caller.key_id, len(seats),
                        type(exc).__name__)

    return payload, record_uses


def _short_reads_inline() -> bool:
    """Whether a short read (one check) runs on the event loop rather than in a worker thread. On SQLite it
    does: its reads are in-process and CPU-bound, a check taking a few tenths of a millisecond, and the thread hop
    cost more than that (server CPU per check 1.45 → 0.72 ms, 820 → 1,600 checks/s: docs/benchmarks.md).
    PostgreSQL's reads wait on the network, so they stay off the loop, as do batches and pages (up to ~20 ms) on
    both databases; so do the stamps of last use (writes, in a background task after the answer)."""
    return get_engine().dialect.name == "sqlite"


async def _answer(request: Request, work: Work, *, short: bool = False) -> Response:
    key = _bearer(request)
    if not key:
        return error_response(401, "Send an API key: Authorization: Bearer cfk_…", code="unauthorized",
                              headers={"www-authenticate": 'Bearer realm="cf_portal"'})
    try:
        if short and _short_reads_inline():
            payload, record_uses = _serve(key, work)
        else:
            payload, record_uses = await asyncio.to_thread(_serve, key, work)
        response = _json(payload)
        if record_uses is not None:
            response.background = BackgroundTask(record_uses)  # in a worker thread, after the answer is sent
        return response
    except api_keys.InvalidApiKey as exc:
        log.info("an API request was refused: %s", exc.message)
        return error_response(401, exc.message, code="unauthorized",
                              headers={"www-authenticate": 'Bearer realm="cf_portal", error="invalid_token"'})
    except api_keys.MissingScope as exc:
        return error_response(403, exc.message, code="forbidden")
    except RateLimited as exc:
        return error_response(429, f"Too many requests for this API key: at most {API_RATE.rate:g} a second "
                              f"(bursts of {API_RATE.burst}). Retry after {exc.retry_after} s.", code="rate_limited",
                              headers={"retry-after": str(exc.retry_after)})
    except entitlements.UnknownProduct as exc:
        return error_response(404, exc.message, code="unknown_product")
    except DomainError as exc:
        return error_response(400, exc.message, code="invalid_request")
    except Exception:
        log.exception("an API request failed")
        return error_response(500, "Something went wrong on our side; try again.", code="server_error")


def _batch(body: bytes) -> BatchCheck:
    try:
        return BatchCheck.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise DomainError(f'Send JSON like {{"product": "phishing", "emails": ["name@company.com"]}}: {where}: '
                          f"{first['msg']}") from None


async def check_entitlement(request: Request) -> Response:
    """GET ?product=&email=: one answer. POST {"product", "emails"}: up to 1,000 answers in one query. The
    parameters are judged after the key (401 before 400)."""
    if request.method == "GET":
        product, email = request.query_params.get("product", ""), request.query_params.get("email", "")

        def check_one(session: Session, caller: ApiCaller) -> tuple[BaseModel, list[entitlements.Entitlement]]:
            if not product or not email:
                raise DomainError("Name the product and the email: ?product=phishing&email=name@company.com")
            answer = entitlements.check(session, account_id=caller.account_id, product_code=product, email=email)
            return answer, [answer]

        return await _answer(request, check_one, short=True)
    body = await request.body()

    def check_batch(session: Session, caller: ApiCaller) -> tuple[BaseModel, list[entitlements.Entitlement]]:
        batch = _batch(body)
        answer = entitlements.check_many(session, account_id=caller.account_id, product_code=batch.product,
                                         emails=batch.emails)
        return answer, list(answer.results)

    return await _answer(request, check_batch)


async def product_holders(request: Request) -> Response:
    """Everyone entitled to the product, a page at a time (keyset: pass `next_cursor` back as `cursor`)."""
    code, cursor = request.path_params["code"], request.query_params.get("cursor")
    limit = request.query_params.get("limit", str(entitlements.DEFAULT_PAGE))

    def page(session: Session, caller: ApiCaller) -> tuple[BaseModel, list[entitlements.Entitlement]]:
        if not limit.isdigit():
            raise DomainError(f"limit is a number of holders, 1 to {entitlements.MAX_PAGE:,}.")
        return entitlements.holders(session, account_id=caller.account_id, product_code=code, cursor=cursor,
                                    limit=int(limit)), []

    return await _answer(request, page)


async def health(request: Request) -> Response:
    """A trivial answer (no key, no database): for load balancers, and the benchmark's yardstick of what the
    server itself costs a JSON route (bench/entitlements_api.py)."""
    return Response(b'{"ok":true}', media_type="application/json", headers=NO_STORE)


async def openapi_document(request: Request) -> Response:
    return Response(json.dumps(openapi()), media_type="application/json")


@lru_cache
def openapi() -> dict:
    """The OpenAPI 3.1 description of these routes; its schemas are the Pydantic models' own."""
    ref = "#/components/schemas/{model}"
    _, schemas = models_json_schema(
        [(model, "serialization") for model in (entitlements.Entitlement, entitlements.BatchAnswer,
                                                entitlements.HoldersPage, ApiError)]
        + [(BatchCheck, "validation")], ref_template=ref)

    def body(model: type[BaseModel]) -> dict:
        return {"content": {"application/json": {"schema": {"$ref": ref.format(model=model.__name__)}}}}

    def errors(*statuses: int) -> dict:
        said = {400: "The request is malformed (a parameter is missing or wrong)",
                401: "No API key, or one that is unknown or revoked",
                403: "The API key may not do this (scope)",
                404: "No product has this code",
                413: "The body is larger than 1 MB",
                429: "Past the key's rate; wait the seconds in Retry-After"}
        answers = {str(s): {"description": said[s], **body(ApiError)} for s in statuses}
        answers["429"]["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                     "description": "Seconds to wait before the next request"}}
        return answers

    product = {"name": "product", "required": True, "schema": {"type": "string"}, "example": "phishing",
               "description": "A product code of the catalog: awareness, phishing, darkweb"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "ChatFortress entitlements API", "version": "1",
                 "description": "Who may use which ChatFortress product, answered per person. Every request "
                                "names an API key of one account (Settings → API keys) and is answered from that "
                                f"account only. Rate: {API_RATE.rate:g} requests a second per key, bursts of "
                                f"{API_RATE.burst}, per server process; past it, 429 with Retry-After."},
        "servers": [{"url": routes.API_V1}],
        "components": {"schemas": schemas["$defs"],
                       "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                                      "description": "cfk_live_… (cfk_demo_… in demo mode)"}}},
        "security": [{"apiKey": []}],
        "paths": {
            "/entitlements/check": {
                "get": {"summary": "May this email use this product?", "operationId": "checkEntitlement",
                        "parameters": [{**product, "in": "query"},
                                       {"name": "email", "in": "query", "required": True,
                                        "schema": {"type": "string", "format": "email"}}],
                        "responses": {"200": {"description": "The answer (entitled false for an unknown email)",
                                              **body(entitlements.Entitlement)}, **errors(400, 401, 403, 404, 429)}},
                "post": {"summary": "The same for up to 1,000 emails of one product",
                         "operationId": "checkEntitlements", "requestBody": {"required": True, **body(BatchCheck)},
                         "responses": {"200": {"description": "One answer per email, in the order sent",
                                               **body(entitlements.BatchAnswer)},
                                       **errors(400, 401, 403, 404, 413, 429)}},
            },
            "/products/{code}/holders": {
                "get": {"summary": "Everyone entitled to a product, a page at a time", "operationId": "listHolders",
                        "parameters": [{**product, "name": "code", "in": "path"},
                                       {"name": "cursor", "in": "query", "required": False,
                                        "schema": {"type": "string"},
                                        "description": "next_cursor of the previous page; none for the first"},
                                       {"name": "limit", "in": "query", "required": False,
                                        "schema": {"type": "integer", "minimum": 1,
                                                   "maximum": entitlements.MAX_PAGE,
                                                   "default": entitlements.DEFAULT_PAGE}}],
                        "responses": {"200": {"description": "A page of holders",
                                              **body(entitlements.HoldersPage)}, **errors(400, 401, 403, 404, 429)}},
            },
            "/health": {"get": {"summary": "Is the server up? (no key needed)", "operationId": "health",
                                "security": [], "responses": {"200": {"description": '{"ok": true}'}}}},
            "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi", "security": [],
                                      "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
    }


entitlements_routes = [
    Route("/health", health, methods=["GET"]),
    Route("/entitlements/check", check_entitlement, methods=["GET", "POST"]),
    Route("/products/{code}/holders", product_holders, methods=["GET"]),
    Route("/openapi.json", openapi_document, methods=["GET"]),
]


async def http_error(request: Request, exc: HTTPException) -> Response:
    """No such route, or not with this method: JSON like every other answer under /api/v1; Starlette's plain
    text elsewhere."""
    if request.url.path.startswith(routes.API_V1 + "/"):
        message = "There is no such API route." if exc.status_code == 404 else str(exc.detail)
        return error_response(exc.status_code, message, code="not_found" if exc.status_code == 404 else "bad_route",
                              headers=exc.headers)
    if exc.status_code in {204, 304}:
        return Response(status_code=exc.status_code, headers=exc.headers)
    return PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=exc.headers)


class ServerTiming:
    """Adds `Server-Timing: app;dur=<ms>` to every answer under /api/v1 (errors too): the time from the request
    reaching the portal's routes to its answer's headers, as the server measured it (clients and benchmarks
    tell it apart from the network's time)."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(routes.API_V1 + "/"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: dict) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - started) * 1000
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"server-timing", f"app;dur={took:.2f}".encode())]}
            await send(message)

        await self.app(scope, receive, timed)


api = Starlette(middleware=[Middleware(ServerTiming)], routes=[
    Route(routes.BEGIN_SESSION, begin_session, methods=["POST"]),
    Route(routes.END_SESSION, end_session, methods=["POST"]),
    Route(STRIPE_WEBHOOK_PATH, stripe_webhook, methods=["POST"]),
    Route(routes.INVOICE_PDF, invoice_pdf_download, methods=["GET"]),
    Route(routes.PROVIDER_INVOICE_PDF, provider_invoice_pdf, methods=["GET"]),
    Mount(routes.API_V1, routes=entitlements_routes),
], exception_handlers={HTTPException: http_error})
