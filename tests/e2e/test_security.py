"""Security at the HTTP layer, tried on the running production build as an attacker would: with a browser's
scripts, curl-like requests and a raw websocket."""

from __future__ import annotations

import http.client
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from cf_portal.middleware import MAX_WEBSOCKET_MESSAGE, SESSION_COOKIE
from tests.e2e.conftest import DESKTOP, PortalServer, url_of
from tests.e2e.test_accounts import PASSWORD, create_account, fill_sign_in, open_sign_in, unique

pytestmark = pytest.mark.e2e


def test_the_session_cookie_is_httponly_and_no_state_store_keeps_the_token(portal: PortalServer,
                                                                         anon_page: Page) -> None:
    page = anon_page
    email, company = f"{unique('hugo')}@httponly.example", unique("HttpOnly Ltd")
    create_account(portal, company=company, name="Hugo Httponly", email=email)
    page.set_viewport_size(DESKTOP)
    open_sign_in(portal, page)
    fill_sign_in(page, email, PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(url_of(portal, "/licenses"))
    expect(page.get_by_role("heading", name="No licenses yet")).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Employees").click()
    expect(page.get_by_role("heading", name="Employees", level=1)).to_be_visible()

    cookie = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"]
    assert SESSION_COOKIE not in page.evaluate("document.cookie"), "scripts can read the session cookie"
    # Reflex's state store of the production build (a file per state of each tab, written a moment later):
    # this tab's states are there (they hold the company's name), the token is not.
    deadline, ours = time.monotonic() + 30, []
    while not ours and time.monotonic() < deadline:
        time.sleep(0.5)
        stored = [p for p in (Path(portal.app_dir) / ".states").glob("*.pkl")]
        ours = [p for p in stored if company.encode() in p.read_bytes()]
    assert ours, "this tab's states never reached the state store"
    holding = [p.name for p in stored if cookie["value"].encode() in p.read_bytes()]
    assert holding == [], f"the session token is in the state store: {holding}"


def test_pages_carry_security_headers_and_injected_scripts_do_not_run(portal: PortalServer, page: Page) -> None:
    """(Every other browser test runs under the same policy and fails on a console error: the app works.)"""
    response = page.goto(portal.url + "/signin")
    headers = response.all_headers()
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";")[0]
    assert (headers["x-frame-options"], headers["x-content-type-options"]) == ("DENY", "nosniff")
    assert headers["referrer-policy"] == "same-origin"
    expect(page.get_by_role("button", name="Try the demo")).to_be_visible()
    blocked = page.evaluate("""() => new Promise((resolve) => {
        document.addEventListener('securitypolicyviolation', () => resolve('blocked'), {once: true});
        const injected = document.createElement('script');
        injected.textContent = 'window.__injected = true';
        document.body.appendChild(injected);
        setTimeout(() => resolve(window.__injected ? 'ran' : 'blocked'), 1000);
    })""")
    assert blocked == "blocked", "an injected inline script ran"


def _post(portal: PortalServer, path: str, *, declared: int, cookie: str = "") -> tuple[int, str, float]:
    """POST that announces `declared` bytes but sends none of them: the answer must come before any body."""
    host = urlsplit(portal.url)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
    started = time.monotonic()
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.putheader("Content-Length", str(declared))
    conn.putheader("Reflex-Client-Token", "any-tab")  # what Reflex's upload route asks for
    conn.putheader("Reflex-Event-Handler", "reflex___state____state.cf_portal___state___employees____employees_state"
                                           ".preview_csv")
    if cookie:
        conn.putheader("Cookie", cookie)
    conn.endheaders()
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    return response.status, body, time.monotonic() - started


def test_uploads_need_a_session_and_bodies_are_capped(portal: PortalServer) -> None:
    status, body, _ = _post(portal, "/_upload", declared=100 * 1024 * 1024)
    assert (status, body) == (401, '{"error": "Sign in to upload files."}')
    token = portal.session_token("owner@acme-security.example")
    status, body, _ = _post(portal, "/_upload", declared=100 * 1024 * 1024, cookie=f"{SESSION_COOKIE}={token}")
    assert status == 413 and "too large" in body
    status, _, _ = _post(portal, "/api/webhooks/stripe", declared=50 * 1024 * 1024)
    assert status == 413


def test_a_websocket_message_over_the_limit_closes_the_connection(portal: PortalServer, page: Page) -> None:
    page.goto(portal.url + "/signin")
    outcome = page.evaluate("""async ([size]) => {
        const url = location.origin.replace('http', 'ws') + '/_event/?EIO=4&transport=websocket&token=probe';
        const attempt = (bytes) => new Promise((resolve) => {
            const ws = new WebSocket(url);
            let sent = false;
            ws.onmessage = (m) => {
                if (!sent && String(m.data).startsWith('0')) { ws.send('40'); return; }
                if (!sent && String(m.data).startsWith('40')) {
                    sent = true;
                    ws.send('42' + JSON.stringify(['ping', 'x'.repeat(bytes)]));
                    setTimeout(() => { resolve('open'); ws.close(); }, 1500);
                }
            };
            ws.onclose = () => resolve(sent ? 'closed' : 'refused');
        });
        return [await attempt(size - 1024), await attempt(size + 1024)];
    }""", [MAX_WEBSOCKET_MESSAGE])
    assert outcome == ["open", "closed"]
