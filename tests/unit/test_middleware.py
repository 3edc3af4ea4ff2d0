"""The HTTP layer around Reflex (cf_portal/middleware.py): session cookie to digest, security headers, body limits.

The middleware wraps a stand-in app that records what reached it, so each test sees exactly what Reflex would.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from cf_portal import db, middleware, settings
from cf_portal.middleware import (
    MAX_BODY,
    MAX_UPLOAD_BODY,
    SESSION_DIGEST_HEADER,
    PortalMiddleware,
    scope_with_session_digest,
    session_digest,
)
from cf_portal.services import auth
from tests.factories import make_account
from tests.support.events import run_on_a_loop


class Inner:
    """A stand-in for Reflex: answers 200 with a small HTML page and records the bodies it read."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.calls = 0

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        self.calls += 1
        body = bytearray()
        if scope["type"] == "http" and scope["method"] == "POST":
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
        self.bodies.append(bytes(body))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": b"<html></html>"})


@pytest.fixture
def app_db(empty_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    monkeypatch.setenv("REFLEX_DB_URL", empty_database_url)
    settings.get_settings.cache_clear()
    db.get_engine.cache_clear()
    engine = db.get_engine()
    db.all_metadata().create_all(engine)
    yield engine
    engine.dispose()
    settings.get_settings.cache_clear()
    db.get_engine.cache_clear()


def a_session(engine: sa.Engine) -> str:
    with db.session_scope(engine) as session:
        _account, user = make_account(session)
        return auth.start_session(session, user_id=user.id, remember=False, now=datetime.now(UTC)).token


def test_the_websocket_handshake_carries_the_digest_of_the_session_cookie_never_the_token() -> None:
    scope = {"type": "websocket", "path": "/_event/", "headers": [
        (b"cookie", b"theme=dark; cf_session=tok3n-value; other=1"),
        (b"authorization", b"CF-Session-Digest forged-by-the-client"),
        (b"origin", b"http://127.0.0.1:3000"),
    ]}
    passed = scope_with_session_digest(scope)
    headers = {k.decode(): v.decode() for k, v in passed["headers"]}
    assert "tok3n-value" not in repr(passed["headers"])
    assert headers["cookie"] == "theme=dark; other=1" and headers["origin"] == "http://127.0.0.1:3000"
    assert session_digest(headers) == auth.token_digest("tok3n-value")
    no_cookie = scope_with_session_digest({**scope, "headers": scope["headers"][1:]})
    assert session_digest({k.decode(): v.decode() for k, v in no_cookie["headers"]}) == ""  # nothing forged


def test_reflex_sees_no_session_cookie_on_the_event_route() -> None:
    seen = []

    async def inner(scope, receive, send) -> None:  # noqa: ANN001
        seen.append(dict(scope["headers"]))

    run_on_a_loop(PortalMiddleware(inner)({"type": "websocket", "path": "/_event", "headers": [
        (b"cookie", b"cf_session=abc")]}, None, None))
    assert seen == [{SESSION_DIGEST_HEADER.encode(): f"CF-Session-Digest {auth.token_digest('abc')}".encode()}]


def test_every_response_has_the_security_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(middleware, "_inline_script_hashes", lambda _dir: ("'sha256-abc='",))
    headers = TestClient(PortalMiddleware(Inner())).get("/signin/").headers
    csp = dict(d.strip().split(" ", 1) for d in headers["content-security-policy"].split(";"))
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
    assert csp["script-src"] == "'self' 'unsafe-eval' 'sha256-abc=' https://js.stripe.com"  # no 'unsafe-inline'
    assert csp["frame-src"] == "https://js.stripe.com https://hooks.stripe.com"
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert "strict-transport-security" not in headers  # plain HTTP: HSTS would mean nothing


def test_hsts_when_served_over_https(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(middleware, "_inline_script_hashes", lambda _dir: ())
    monkeypatch.setenv("CF_SECURE_COOKIES", "true")
    monkeypatch.setenv("CF_TRUSTED_PROXY_HOPS", "1")
    monkeypatch.setenv("CF_ALLOWED_ORIGINS", "https://licenses.example.com")
    settings.get_settings.cache_clear()
    try:
        headers = TestClient(PortalMiddleware(Inner())).get("/licenses/").headers
    finally:
        settings.get_settings.cache_clear()
    assert headers["strict-transport-security"].startswith("max-age=63072000")


def test_the_inline_script_hashes_are_those_of_the_built_pages(tmp_path) -> None:  # noqa: ANN001
    import base64
    import hashlib

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "index.html").write_text('<script>boot()</script><script type="module" src="/x.js"></script>'
                                               '<script id="r">go()</script>')
    expected = {f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'" for s in (b"boot()", b"go()")}
    assert set(middleware._inline_script_hashes(str(tmp_path))) == expected


def test_an_upload_without_a_session_is_refused_before_its_body_is_read(app_db: sa.Engine) -> None:
    inner = Inner()
    client = TestClient(PortalMiddleware(inner))
    refused = client.post("/_upload", content=b"x" * 1000, headers={"cookie": "cf_session=not-a-session"})
    assert refused.status_code == 401 and refused.json() == {"error": "Sign in to upload files."}
    assert client.post("/_upload", content=b"x" * 1000).status_code == 401
    assert inner.calls == 0
    token = a_session(app_db)
    accepted = client.post("/_upload", content=b"x" * 1000, headers={"cookie": f"cf_session={token}"})
    assert accepted.status_code == 200 and inner.bodies == [b"x" * 1000]


def test_a_body_over_the_limit_is_answered_413_from_its_declared_length(app_db: sa.Engine) -> None:
    inner = Inner()
    client = TestClient(PortalMiddleware(inner))
    token = a_session(app_db)
    too_big = client.post("/_upload", content=b"x" * (MAX_UPLOAD_BODY + 1), headers={"cookie": f"cf_session={token}"})
    assert too_big.status_code == 413 and "too large" in too_big.json()["error"]
    assert client.post("/api/webhooks/stripe", content=b"x" * (MAX_BODY + 1)).status_code == 413
    assert inner.calls == 0
    assert client.post("/api/webhooks/stripe", content=b"x" * MAX_BODY).status_code == 200


def test_a_body_sent_without_a_length_is_read_only_up_to_the_limit(app_db: sa.Engine) -> None:
    inner = Inner()
    client = TestClient(PortalMiddleware(inner))

    def chunks(total: int) -> Iterator[bytes]:
        for _ in range(total // 65536):
            yield b"y" * 65536

    too_big = client.post("/auth/session", content=chunks(MAX_BODY + 65536))  # chunked: no Content-Length
    assert too_big.status_code == 413 and inner.calls == 0
    fine = client.post("/auth/session", content=chunks(65536 * 2))
    assert fine.status_code == 200 and inner.bodies == [b"y" * 65536 * 2]


def test_a_declared_length_with_chunked_encoding_is_still_capped(app_db: sa.Engine) -> None:
    """Content-Length and Transfer-Encoding together: servers read the body as chunked, so the length proves
    nothing and the body is read only up to the limit."""
    inner = Inner()
    scope = {"type": "http", "method": "POST", "path": "/auth/session", "headers": [
        (b"content-length", b"10"), (b"transfer-encoding", b"chunked")]}
    chunks = [{"type": "http.request", "body": b"z" * 65536, "more_body": True}] * 20
    sent: list[dict] = []

    async def receive() -> dict:
        return chunks.pop() if chunks else {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    run_on_a_loop(PortalMiddleware(inner)(scope, receive, send))
    assert sent[0]["status"] == 413 and inner.calls == 0


def test_only_one_well_formed_session_cookie_names_a_session() -> None:
    assert middleware.session_token('consent={"ads":false}; cf_session=abc; x="a b"') == "abc"
    assert middleware.session_token("cf_session=abc; cf_session=planted") == ""  # tossed from a sibling domain
    assert middleware.session_token("other=1") == ""


def test_a_retired_cookie_never_reaches_reflex_and_sign_in_clears_it() -> None:
    scope = scope_with_session_digest({"type": "websocket", "path": "/app/_event", "headers": [
        (b"cookie", b"cf_session_remembered=old-token; theme=dark")]})
    assert b"old-token" not in repr(scope["headers"]).encode()
    cleared = middleware.cleared_cookie_headers(session=False)
    assert cleared == ["cf_session_remembered=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"]


def test_every_websocket_gets_the_digest_and_a_forged_digest_is_dropped_everywhere() -> None:
    seen = []

    async def inner(scope, receive, send) -> None:  # noqa: ANN001
        seen.append(dict(scope["headers"]))

    forged = (SESSION_DIGEST_HEADER.encode(), b"CF-Session-Digest " + b"0" * 64)
    run_on_a_loop(PortalMiddleware(inner)({"type": "websocket", "path": "/prefix/_event/",
                                           "headers": [forged, (b"cookie", b"cf_session=abc")]}, None, None))
    assert seen[-1][SESSION_DIGEST_HEADER.encode()] == f"CF-Session-Digest {auth.token_digest('abc')}".encode()



@pytest.fixture
def built_frontend(tmp_path, monkeypatch: pytest.MonkeyPatch) -> TestClient:  # noqa: ANN001
    """A production build's folder as Reflex leaves it (pages as folders, hashed assets with precompressed
    copies beside them), served by Reflex's own static files app inside the middleware, beside an API route."""
    import gzip

    from reflex.utils.precompressed_staticfiles import PrecompressedStaticFiles
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    (tmp_path / "signin").mkdir()
    (tmp_path / "signin" / "index.html").write_bytes(SIGN_IN_PAGE)
    (tmp_path / "signin" / "index.html.gz").write_bytes(gzip.compress(SIGN_IN_PAGE))
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "app-Ab12Cd34.js").write_bytes(SCRIPT)
    (tmp_path / "assets" / "app-Ab12Cd34.js.gz").write_bytes(gzip.compress(SCRIPT))
    (tmp_path / "assets" / "app-Ab12Cd34.js.br").write_bytes(b"brotli bytes")
    (tmp_path / "404.html").write_bytes(b"<html>not here</html>")
    monkeypatch.setattr(middleware, "_build_dir", lambda: str(tmp_path))
    monkeypatch.setattr(middleware, "_inline_script_hashes", lambda _dir: ())

    async def health(request) -> JSONResponse:  # noqa: ANN001
        return JSONResponse({"ok": True}, headers={"cache-control": "no-store"})

    app = Starlette(routes=[Route("/api/v1/health", health), Mount("/", app=PrecompressedStaticFiles(
        directory=tmp_path, html=True, encodings=["brotli", "gzip"]))])
    return TestClient(PortalMiddleware(app), follow_redirects=False)


SIGN_IN_PAGE = b"<!DOCTYPE html><html><body><h1>Sign in</h1></body></html>"
SCRIPT = b"console.log('portal');" * 50


def test_a_page_without_its_trailing_slash_is_served_in_place_not_redirected(built_frontend: TestClient) -> None:
    for path in ("/signin", "/signin/", "/signin?next=/licenses"):
        page = built_frontend.get(path, headers={"accept-encoding": "gzip"})
        assert page.status_code == 200, (path, page.status_code, page.headers.get("location"))
        assert page.content == SIGN_IN_PAGE and page.headers["content-encoding"] == "gzip"
        assert page.headers["cache-control"] == "no-cache"  # a new build shows at the next visit
    assert built_frontend.post("/signin").status_code == 405  # only GET and HEAD are served in place
    missing = built_frontend.get("/nowhere")
    assert missing.status_code == 404 and missing.headers["cache-control"] == "no-cache"


def test_hashed_assets_come_precompressed_and_immutable(built_frontend: TestClient) -> None:
    path = "/assets/app-Ab12Cd34.js"
    brotli = built_frontend.get(path, headers={"accept-encoding": "gzip, deflate, br, zstd"})
    assert brotli.headers["content-encoding"] == "br" and brotli.headers["vary"] == "Accept-Encoding"
    assert brotli.headers["cache-control"] == "public, max-age=31536000, immutable"
    gzipped = built_frontend.get(path, headers={"accept-encoding": "gzip"})
    assert gzipped.headers["content-encoding"] == "gzip" and gzipped.content == SCRIPT
    plain = built_frontend.get(path, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == SCRIPT
    assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
    again = built_frontend.get(path, headers={"accept-encoding": "gzip", "if-none-match": gzipped.headers["etag"]})
    assert again.status_code == 304 and again.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_a_response_that_says_its_own_caching_keeps_it(built_frontend: TestClient) -> None:
    health = built_frontend.get("/api/v1/health")
    assert health.json() == {"ok": True} and health.headers["cache-control"] == "no-store"
    assert "content-security-policy" in health.headers


def test_only_a_built_page_folder_is_served_in_place(tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "signin").mkdir()
    (tmp_path / "signin" / "index.html").write_text("<html></html>")
    (tmp_path / "assets").mkdir()
    assert middleware._page_folder(str(tmp_path), "/signin")
    assert not middleware._page_folder(str(tmp_path), "/assets")  # a folder without a page
    assert not middleware._page_folder(str(tmp_path), "/signin/../signin")
    assert not middleware._page_folder(str(tmp_path), "/")
    assert not middleware._page_folder(str(tmp_path), "/signin.html")
