"""What the portal adds around Reflex at the HTTP layer: the session cookie, security headers, body limits.

- **The session cookie** (`cf_session`) is HttpOnly, `SameSite=Strict` (and `Secure` behind HTTPS): scripts
  cannot read it, and only the /auth routes (cf_portal/api.py) set or clear it. Reflex copies the headers of
  the websocket handshake into every state (kept in its state store, on disk or in Redis), so before Reflex
  sees the handshake the session cookie is taken out of its `Cookie` header and only the token's SHA-256
  digest, which is what the database keeps, is passed on (`SESSION_DIGEST_HEADER`, a header Reflex never
  sends to the browser). The token itself is in no state var and no state store.
- **Security headers** on every HTTP response: a Content-Security-Policy (scripts from the portal, the hashes
  of the build's own inline scripts and Stripe.js; frames from Stripe only; `frame-ancestors 'none'`),
  X-Frame-Options, X-Content-Type-Options, Referrer-Policy, and HSTS when the portal is served over HTTPS.
- **Caching and pages**: the build's hashed files (`/assets/…`, precompressed at build, see rxconfig.py) are
  cached for a year as `immutable`; pages (HTML) are `no-cache` (checked with the server at each visit, so a
  new build shows at once). A page asked for without its trailing slash (`/signin`) is served in place rather
  than redirected to `/signin/` (a redirect costs a phone a round trip before anything paints).
- **Bodies**: an upload (`/_upload`, the CSV import) needs a signed-in member before a byte of it is read and
  may be at most the CSV limit plus the form's overhead; any other request body at most `MAX_BODY`. A larger
  body is answered 413 from its declared length, or as soon as a body sent without one passes the limit.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from cf_portal import clock, routes
from cf_portal.services import auth
from cf_portal.services.employee_import import MAX_BYTES as MAX_CSV_BYTES
from cf_portal.services.errors import SignInRequired
from cf_portal.settings import get_settings

SESSION_COOKIE = "cf_session"
# Cookies of earlier versions that held a session token scripts could read: never passed on, cleared on sign-in.
RETIRED_COOKIES = ("cf_session_remembered",)
# Reflex keeps request headers in its state store but never sends `authorization` to the browser.
SESSION_DIGEST_HEADER = "authorization"
SESSION_DIGEST_SCHEME = "CF-Session-Digest "
EVENT_PATH = "/_event"
UPLOAD_PATH = "/_upload"
MAX_BODY = 1024 * 1024  # the webhook (1 MB, checked again there), sign-in forms, anything else
MAX_UPLOAD_BODY = MAX_CSV_BYTES + 64 * 1024  # the CSV file and its multipart envelope
MAX_WEBSOCKET_MESSAGE = 256 * 1024  # an event: a form, a search; files come through /_upload
STRIPE_SCRIPT = "https://js.stripe.com"
STRIPE_FRAMES = ("https://js.stripe.com", "https://hooks.stripe.com")
STRIPE_API = ("https://api.stripe.com",)
HASHED_ASSETS = "/assets/"  # Vite's output: every name carries its content hash
IMMUTABLE = b"public, max-age=31536000, immutable"
REVALIDATE = b"no-cache"

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def session_cookie_header(token: str, *, remember: bool) -> str:
    """The Set-Cookie value that gives the browser its session (a 30-day cookie with "Remember me")."""
    parts = [f"{SESSION_COOKIE}={token}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if remember:
        parts.append(f"Max-Age={int(auth.session_lifetime(True).total_seconds())}")
    if get_settings().secure_cookies:
        parts.append("Secure")
    return "; ".join(parts)


def cleared_cookie_headers(*, session: bool = True) -> list[str]:
    """Set-Cookie values that clear the session cookie (if `session`) and the retired ones."""
    secure = "; Secure" if get_settings().secure_cookies else ""
    names = ((SESSION_COOKIE,) if session else ()) + RETIRED_COOKIES
    return [f"{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}" for name in names]


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def _cookie_pairs(cookie_header: str) -> list[tuple[str, str]]:
    return [(name.strip(), value.strip()) for name, _, value in
            (part.partition("=") for part in cookie_header.split(";") if part.strip())]


def session_token(cookie_header: str) -> str:
    """The session token from a `Cookie` header: '' when there is none, or more than one (a cookie planted by a
    sibling domain must not choose the session). Other cookies, whatever their syntax, do not matter."""
    tokens = [value for name, value in _cookie_pairs(cookie_header) if name == SESSION_COOKIE]
    return tokens[0] if len(tokens) == 1 else ""


def _without_session_cookie(cookie_header: str) -> str:
    return "; ".join(f"{name}={value}" for name, value in _cookie_pairs(cookie_header)
                     if name not in (SESSION_COOKIE, *RETIRED_COOKIES))


def scope_with_session_digest(scope: Scope) -> Scope:
    """The handshake's scope with the session cookie replaced by its digest (any digest header the client sent
    is dropped: only the cookie can name a session)."""
    cookie = "; ".join(v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == b"cookie")
    token = session_token(cookie)
    headers = [(k, v) for k, v in scope.get("headers", [])
               if k.lower() not in (b"cookie", SESSION_DIGEST_HEADER.encode())]
    if rest := _without_session_cookie(cookie):
        headers.append((b"cookie", rest.encode("latin-1")))
    if token:
        headers.append((SESSION_DIGEST_HEADER.encode(),
                        (SESSION_DIGEST_SCHEME + auth.token_digest(token)).encode()))
    return {**scope, "headers": headers}


def session_digest(headers: Mapping[str, str]) -> str:
    """The digest the handshake's headers carry (as Reflex hands them to a state), or ''."""
    value = headers.get(SESSION_DIGEST_HEADER, "")
    return value.removeprefix(SESSION_DIGEST_SCHEME) if value.startswith(SESSION_DIGEST_SCHEME) else ""


def _member_exists(token: str) -> bool:
    from cf_portal.db import session_scope

    try:
        with session_scope(write=False) as session:
            auth.actor_for_token(session, token, now=clock.now())
        return True
    except SignInRequired:
        return False


@lru_cache
def _inline_script_hashes(build_dir: str) -> tuple[str, ...]:
    """The CSP hashes of every inline <script> of the built pages (the router's bootstrap, the theme)."""
    hashes: set[str] = set()
    for page in Path(build_dir).rglob("*.html"):
        for body in re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", page.read_text(errors="replace"),
                               flags=re.S):
            digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            hashes.add(f"'sha256-{digest}'")
    return tuple(sorted(hashes))


def _build_dir() -> str:
    from reflex.utils import prerequisites

    return str(prerequisites.get_web_dir() / "build" / "client")


def content_security_policy(inline_hashes: Iterable[str] = ()) -> str:
    settings = get_settings()
    # Reflex runs `call_script` events with eval; inline <script> elements other than the build's are refused.
    scripts = ["'self'", "'unsafe-eval'", *inline_hashes, STRIPE_SCRIPT]
    connect = ["'self'", *STRIPE_API]
    if settings.stripe_api_base:  # a Stripe test server (never with a live key: see settings)
        connect.append(settings.stripe_api_base.rstrip("/"))
    directives = {
        "default-src": ["'self'"],
        "script-src": scripts,
        "style-src": ["'self'", "'unsafe-inline'"],  # Radix Themes and Emotion set inline styles
        "img-src": ["'self'", "data:", "https://*.stripe.com"],
        "font-src": ["'self'", "data:"],
        "connect-src": connect,
        "frame-src": list(STRIPE_FRAMES),
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def cache_control(path: str, status: int, content_type: bytes) -> bytes | None:
    """The Cache-Control of a response the app left without one: hashed build files for a year, pages always
    revalidated, anything else as it was."""
    if path.startswith(HASHED_ASSETS) and status in (200, 304):
        return IMMUTABLE
    if content_type.startswith(b"text/html"):
        return REVALIDATE
    return None


@lru_cache(maxsize=512)
def _page_folder(build_dir: str, path: str) -> bool:
    """Whether the build has the page `path` as a folder with an index.html (`/signin` → signin/index.html)."""
    relative = path.strip("/")
    if not relative or ".." in relative.split("/") or "." in relative.rsplit("/", 1)[-1]:
        return False
    return (Path(build_dir) / relative / "index.html").is_file()


def without_slash_redirect(scope: Scope) -> Scope:
    """A GET of a built page without its trailing slash, as the same page with it: the static files would
    answer a redirect first."""
    path = scope.get("path", "")
    if scope.get("method") not in ("GET", "HEAD") or path.endswith("/") or not _page_folder(_build_dir(), path):
        return scope
    return {**scope, "path": path + "/", "raw_path": (path + "/").encode()}


def security_headers() -> list[tuple[bytes, bytes]]:
    headers = {
        "content-security-policy": content_security_policy(_inline_script_hashes(_build_dir())),
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",  # invitation links carry a token: never in a Referer to another site
        "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(self \"https://js.stripe.com\")",
        "cross-origin-opener-policy": "same-origin",
    }
    if get_settings().secure_cookies:  # served over HTTPS
        headers["strict-transport-security"] = "max-age=63072000; includeSubDomains"
    return [(name.encode(), value.encode()) for name, value in headers.items()]


async def _answer(send: Send, status: int, message: str, *, path: str = "",
                  extra: Iterable[tuple[bytes, bytes]] = ()) -> None:
    # The entitlements API answers every error in one shape (cf_portal/api.py).
    api = path.startswith(routes.API_V1 + "/")
    error = {"message": message, "code": {413: "too_large"}.get(status, "error")} if api else message
    body = json.dumps({"error": error}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *extra]})
    await send({"type": "http.response.body", "body": body})


class PortalMiddleware:
    """Wraps the whole ASGI app (pages, websocket, uploads, API routes); see the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "websocket" or (scope["type"] == "http" and EVENT_PATH in path):
            # Every websocket (wherever it is mounted), and the event route's HTTP fallback: Reflex keeps their
            # headers in its state store, so they carry the digest, never the token.
            scope = scope_with_session_digest(scope)
        elif scope["type"] == "http":
            scope = {**scope, "headers": [(k, v) for k, v in scope.get("headers", [])
                                          if k.lower() != SESSION_DIGEST_HEADER.encode()
                                          or not v.startswith(SESSION_DIGEST_SCHEME.encode())]}
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = security_headers()
        scope = without_slash_redirect(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent = {name.lower(): value for name, value in message.get("headers", [])}
                extra = [h for h in headers if h[0] not in sent]
                if b"cache-control" not in sent and (
                        cache := cache_control(path, message["status"], sent.get(b"content-type", b""))):
                    extra.append((b"cache-control", cache))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        limit = MAX_UPLOAD_BODY if path.startswith(UPLOAD_PATH) else MAX_BODY
        if path.startswith(UPLOAD_PATH) and scope.get("method") == "POST":
            token = session_token(_header(scope, b"cookie"))
            if not token or not await asyncio.to_thread(_member_exists, token):
                await _answer(send_with_headers, 401, "Sign in to upload files.")
                return
        declared = _header(scope, b"content-length")
        if declared and not _header(scope, b"transfer-encoding"):  # with both, the server reads it as chunked
            if not declared.isdigit() or int(declared) > limit:
                await _answer(send_with_headers, 413, _too_large(limit), path=path)
                return
            await self.app(scope, _at_most(receive, limit), send_with_headers)
            return
        body = await _read_at_most(receive, limit)  # sent without a length (chunked): read up to the limit only
        if body is None:
            await _answer(send_with_headers, 413, _too_large(limit), path=path)
            return
        await self.app(scope, _replay(body), send_with_headers)


def _too_large(limit: int) -> str:
    return f"The request is too large: at most {limit // 1024:,} KB."


async def _read_at_most(receive: Receive, limit: int) -> bytes | None:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return bytes(body)
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return bytes(body)


def _at_most(receive: Receive, limit: int) -> Receive:
    """`receive` that ends the request as if the client had gone once more than `limit` bytes arrived (a body
    longer than its declared length)."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        return {"type": "http.disconnect"} if seen > limit else message

    return counted


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # like a client that stays connected: nothing more to read
        return {"type": "http.disconnect"}

    return receive
