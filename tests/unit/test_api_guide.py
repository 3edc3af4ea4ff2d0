"""The API documentation page's content (services/api_guide.py): its examples run, against the real routes, and its
webhook receiver accepts what the portal signs and nothing else."""

from __future__ import annotations

import re
import shlex
import time

import httpx
import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from cf_portal import api
from cf_portal.db import session_scope
from cf_portal.models import Product
from cf_portal.services import api_guide, webhooks
from cf_portal.services.api_guide import CURL_EXAMPLE, EXAMPLE_BASE_URL, HTTPX_EXAMPLE, WEBHOOK_RECEIVER
from cf_portal.services.entitlements import product_codes
from tests.unit.conftest import Seeded
from tests.unit.test_api_routes import client, tenant  # noqa: F401  (client is a fixture)

BODY = b'{"id":"evt_0123","type":"seat.assigned","data":{"holder":{"email":"ava@example.com"}}}'
SECRET = "whsec_" + "k" * 43


def receiver() -> object:
    """The receiver's verify function, run as a product would paste it: on its own, without cf_portal."""
    namespace: dict = {}
    exec(compile(WEBHOOK_RECEIVER, "webhook_receiver_example.py", "exec"), namespace)  # noqa: S102
    assert not any(name.startswith("cf_portal") for name in WEBHOOK_RECEIVER.split())
    return namespace["verify_cf_signature"]


def test_the_receiver_accepts_what_the_portal_signs() -> None:
    verify, now = receiver(), int(time.time())
    assert verify(SECRET, webhooks.sign(SECRET, BODY, now), BODY) is True
    # The portal's own check agrees with the example's on the same header.
    assert webhooks.verify_signature(SECRET, webhooks.sign(SECRET, BODY, now), BODY) is True


@pytest.mark.parametrize("change", ["tampered body", "another secret", "too old", "no v1", "empty header",
                                    "v1 of another body"])
def test_the_receiver_refuses_anything_else(change: str) -> None:
    verify, now = receiver(), int(time.time())
    header, body = webhooks.sign(SECRET, BODY, now), BODY
    if change == "tampered body":
        body = BODY.replace(b"ava@", b"eve@")
    elif change == "another secret":
        header = webhooks.sign("whsec_other", BODY, now)
    elif change == "too old":
        header = webhooks.sign(SECRET, BODY, now - 301)
    elif change == "no v1":
        header = f"t={now}"
    elif change == "empty header":
        header = ""
    else:
        header = webhooks.sign(SECRET, b"{}", now)
    assert verify(SECRET, header, body) is False


def curl_requests(example: str) -> list[tuple[str, str, dict | None]]:
    """(method, path with query, JSON body) of each curl command of the example."""
    commands = " ".join(example.replace("\\\n", " ").splitlines()).split("curl ")[1:]
    found = []
    for command in commands:
        words = shlex.split(command.split("#")[0])
        url = next(word for word in words if word.startswith(EXAMPLE_BASE_URL))
        method = words[words.index("-X") + 1] if "-X" in words else "GET"
        body = words[words.index("-d") + 1] if "-d" in words else None
        found.append((method, url.removeprefix(EXAMPLE_BASE_URL), body))
    return found


def test_the_curl_examples_call_real_routes_and_get_answers(client: TestClient, seeded: Seeded) -> None:  # noqa: F811
    acme = tenant(seeded, seeded.actor, ["ava@example.com"])
    requests = curl_requests(CURL_EXAMPLE)
    assert {(m, p.split("?")[0]) for m, p, _ in requests} == {
        ("GET", api.ENTITLEMENTS_CHECK), ("POST", api.ENTITLEMENTS_CHECK), ("GET", api.OPENAPI),
        ("GET", "/api/v1/products/phishing/holders")}
    for method, path, body in requests:
        response = client.request(method, path, content=body, headers={**acme.auth, "content-type": "application/json"})
        assert response.status_code == 200, (path, response.text)
    checked = client.get(requests[0][1], headers=acme.auth).json()
    assert checked["entitled"] is True


def test_the_httpx_example_runs_against_the_api(client: TestClient, seeded: Seeded,  # noqa: F811
                                                monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    acme = tenant(seeded, seeded.actor, ["ava@example.com", "noah@example.com"])
    called: list[str] = []

    def portal_client(*, base_url: str, headers: dict, timeout: float) -> httpx.Client:
        assert base_url == f"{EXAMPLE_BASE_URL}/api/v1" and timeout > 0
        test_client = TestClient(client.app, base_url=base_url, headers=headers)
        test_client.event_hooks["request"].append(lambda request: called.append(request.url.path))
        return test_client

    monkeypatch.setattr(httpx, "Client", portal_client)
    monkeypatch.setenv("CF_API_KEY", acme.key)
    exec(compile(HTTPX_EXAMPLE, "httpx_example.py", "exec"), {})  # noqa: S102
    assert set(called) == {api.ENTITLEMENTS_CHECK, "/api/v1/products/phishing/holders"}
    printed = capsys.readouterr().out.splitlines()
    assert printed[:3] == ["entitled", "ava@example.com True", "noah@example.com True"]
    assert sorted(printed[3:]) == ["ava@example.com Security team", "noah@example.com Security team"]


def test_the_examples_name_products_of_the_catalog(seeded: Seeded) -> None:
    with session_scope(seeded.engine, write=False) as session:
        codes = set(session.exec(select(Product.code)))
        listed = [p.code for p in product_codes(session)]
    assert set(listed) == codes and len(listed) == len(codes) >= 3
    named = set(re.findall(r"product=(\w+)|\"product\": \"(\w+)\"|/products/(\w+)/", CURL_EXAMPLE + HTTPX_EXAMPLE))
    assert {code for group in named for code in group if code} <= codes


def test_the_guide_puts_the_portals_address_in_the_examples(seeded: Seeded) -> None:
    with session_scope(seeded.engine, write=False) as session:
        shown = api_guide.guide(session, base_url="http://127.0.0.1:3000/")
        unknown = api_guide.guide(session, base_url="")
    assert shown.base_url == "http://127.0.0.1:3000"
    assert "http://127.0.0.1:3000/api/v1/entitlements/check" in shown.curl_example
    assert 'base_url="http://127.0.0.1:3000/api/v1"' in shown.httpx_example
    assert EXAMPLE_BASE_URL not in shown.curl_example + shown.httpx_example
    assert unknown.base_url == EXAMPLE_BASE_URL and unknown.curl_example == CURL_EXAMPLE
    assert shown.event_types == list(webhooks.EVENT_TYPES)
