"""The entitlements API over HTTP (cf_portal/api.py), through PortalMiddleware as the app serves it: keys,
errors in one JSON shape, the rate limit, isolation between accounts, last use, the OpenAPI document."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from cf_portal import api, db, settings
from cf_portal.db import session_scope
from cf_portal.middleware import MAX_BODY, PortalMiddleware
from cf_portal.models import Account, ApiKey, Employee, SeatAssignment
from cf_portal.services import api_keys, seats
from cf_portal.services.actors import Actor
from cf_portal.services.rate_limit import TokenBuckets
from cf_portal.services.seats import Holder
from tests.factories import make_license
from tests.support.events import run_on_a_loop
from tests.unit.conftest import Seeded

CHECK = api.ENTITLEMENTS_CHECK


@dataclass
class Tenant:
    actor: Actor
    key: str
    seat_ids: list[int]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def tenant(seeded: Seeded, actor: Actor, people: list[str], *, plan: str = "phishing-standard") -> Tenant:
    """An account with a phishing license held by `people` (emails), and an API key."""
    with session_scope(seeded.engine) as session:
        account = session.get(Account, actor.account_id)
        employees = [Employee(account_id=account.id, name=email.split("@")[0].title(), email=email) for email in people]
        session.add_all(employees)
        lic = make_license(session, account, seeded.plans[plan], quantity=max(len(people), 1),
                           reference_name="Security team")
        seat_ids = seats.assign(session, actor=actor, license_id=lic.id,
                                holders=[Holder(kind="employee", id=e.id) for e in employees]) if people else []
        key = api_keys.create(session, actor=actor, name="Phishing Simulator", demo_mode=False).secret
    return Tenant(actor=actor, key=key, seat_ids=seat_ids)


@pytest.fixture
def client(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("REFLEX_DB_URL", str(seeded.engine.url.render_as_string(hide_password=False)))
    settings.get_settings.cache_clear()
    db.get_engine.cache_clear()
    monkeypatch.setattr(api, "API_RATE", TokenBuckets(rate=50, burst=100))  # a fresh bucket per test
    yield TestClient(PortalMiddleware(api.api))
    db.get_engine().dispose()
    settings.get_settings.cache_clear()
    db.get_engine.cache_clear()


@pytest.fixture
def acme(seeded: Seeded) -> Tenant:
    return tenant(seeded, seeded.actor, ["ada@acme.example", "bob@acme.example", "cy@acme.example"])


def error_of(response) -> str:  # noqa: ANN001
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str), body
    assert response.headers["content-type"] == "application/json"
    return body["error"]["message"]


def test_a_check_answers_json_with_a_key_and_no_session(client: TestClient, acme: Tenant) -> None:
    response = client.get(CHECK, params={"product": "phishing", "email": "Ada@Acme.example"}, headers=acme.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["entitled"] is True and body["product"] == "phishing"
    assert body["holder"] == {"kind": "employee", "name": "Ada"}
    assert body["license"] == {"reference": "Security team", "plan": "Standard", "status": "active"}
    assert body["since"].endswith("Z")
    assert response.headers["cache-control"] == "no-store"
    assert "content-security-policy" in response.headers and "set-cookie" not in response.headers
    unknown = client.get(CHECK, params={"product": "phishing", "email": "nobody@acme.example"}, headers=acme.auth)
    assert unknown.status_code == 200 and unknown.json() == {"entitled": False, "product": "phishing",
                                                             "holder": None, "license": None, "since": None}


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic YWRhOnB3", "Bearer cfk_live_wrong",
                                    "Bearer not-even-ours", "Token {key}", "Bearer {key}x"])
def test_a_missing_or_wrong_key_is_401(client: TestClient, acme: Tenant, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header.format(key=acme.key)}
    response = client.get(CHECK, params={"product": "phishing", "email": "ada@acme.example"}, headers=headers)
    assert response.status_code == 401 and error_of(response)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_revoked_key_is_refused_on_its_next_request(client: TestClient, seeded: Seeded, acme: Tenant) -> None:
    params = {"product": "phishing", "email": "ada@acme.example"}
    assert client.get(CHECK, params=params, headers=acme.auth).status_code == 200
    with session_scope(seeded.engine) as session:
        key_id = session.exec(select(ApiKey.id)).one()
        api_keys.revoke(session, actor=seeded.actor, key_id=key_id)
    response = client.get(CHECK, params=params, headers=acme.auth)
    assert response.status_code == 401 and "revoked" in error_of(response)


def test_a_batch_answers_each_email_in_order(client: TestClient, acme: Tenant) -> None:
    emails = ["bob@acme.example", "nobody@acme.example", "ADA@acme.example", "not an email", "bob@acme.example"]
    response = client.post(CHECK, json={"product": "phishing", "emails": emails}, headers=acme.auth)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["email"], r["entitled"]) for r in results] == list(zip(emails, [True, False, True, False, True],
                                                                      strict=True))
    assert response.json()["product"] == "phishing"


@pytest.mark.parametrize(("body", "message"), [
    ({"product": "phishing", "emails": ["a@b.example"] * 1001}, "emails: List should have at most 1000 items"),
    ({"product": "phishing"}, "emails: Field required"),
    ({"emails": []}, "product: Field required"),
    ({"product": "phishing", "emails": "a@b.example"}, "emails: Input should be a valid array"),
    ("not json", "Invalid JSON"),
])
def test_a_malformed_batch_is_400_with_a_message(client: TestClient, acme: Tenant, body: object,
                                                  message: str) -> None:
    kwargs = {"content": body} if isinstance(body, str) else {"json": body}
    response = client.post(CHECK, headers=acme.auth, **kwargs)
    assert response.status_code == 400 and message in error_of(response)


def test_a_body_over_the_limit_is_413_in_the_api_shape(client: TestClient, acme: Tenant) -> None:
    response = client.post(CHECK, content=b"x" * (MAX_BODY + 1), headers=acme.auth)
    assert response.status_code == 413 and "too large" in error_of(response)


@pytest.mark.parametrize(("params", "status"), [({"product": "phishing"}, 400), ({"email": "ada@acme.example"}, 400),
                                                ({"product": "nope", "email": "ada@acme.example"}, 404)])
def test_missing_parameters_are_400_and_an_unknown_product_404(client: TestClient, acme: Tenant, params: dict,
                                                              status: int) -> None:
    response = client.get(CHECK, params=params, headers=acme.auth)
    assert response.status_code == status and error_of(response)
    if status == 404:
        assert "awareness, phishing, darkweb" in error_of(response)


def test_unknown_routes_and_methods_answer_json(client: TestClient, acme: Tenant) -> None:
    missing = client.get("/api/v1/nothing/here", headers=acme.auth)
    assert missing.status_code == 404 and error_of(missing) == "There is no such API route."
    wrong = client.delete(CHECK, headers=acme.auth)
    assert wrong.status_code == 405 and error_of(wrong) and "GET" in wrong.headers["allow"]


def test_nothing_of_another_account_is_answered_whatever_is_asked(client: TestClient, seeded: Seeded,
                                                                  acme: Tenant) -> None:
    rival = tenant(seeded, seeded.other_actor("Rival Ltd"), ["eve@rival.example"])
    for email in ("ada@acme.example", "bob@acme.example"):
        answer = client.get(CHECK, params={"product": "phishing", "email": email}, headers=rival.auth).json()
        assert answer == {"entitled": False, "product": "phishing", "holder": None, "license": None, "since": None}
    batch = client.post(CHECK, json={"product": "phishing", "emails": ["ada@acme.example", "eve@rival.example"]},
                        headers=rival.auth).json()
    assert [r["entitled"] for r in batch["results"]] == [False, True]
    for who, expected in ((rival, ["eve@rival.example"]),
                          (acme, ["ada@acme.example", "bob@acme.example", "cy@acme.example"])):
        page = client.get("/api/v1/products/phishing/holders", headers=who.auth).json()
        assert [h["email"] for h in page["holders"]] == expected
        assert page["next_cursor"] is None


def test_holders_are_paged_with_the_cursor_given(client: TestClient, seeded: Seeded) -> None:
    people = [f"p{i:02}@acme.example" for i in range(9)]
    acme = tenant(seeded, seeded.actor, people)
    seen, cursor = [], None
    while True:
        response = client.get("/api/v1/products/phishing/holders", params={"limit": 4, **(
            {"cursor": cursor} if cursor else {})}, headers=acme.auth)
        assert response.status_code == 200, response.text
        seen += [h["email"] for h in response.json()["holders"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == people
    for params in ({"cursor": "not-ours"}, {"limit": "0"}, {"limit": "1001"}, {"limit": "ten"}):
        bad = client.get("/api/v1/products/phishing/holders", params=params, headers=acme.auth)
        assert bad.status_code == 400 and error_of(bad)
    assert client.get("/api/v1/products/nope/holders", headers=acme.auth).status_code == 404


def test_past_the_rate_a_key_gets_429_with_retry_after(client: TestClient, seeded: Seeded, acme: Tenant,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(api, "API_RATE", TokenBuckets(rate=2, burst=3, clock=lambda: now[0]))
    rival = tenant(seeded, seeded.other_actor("Rival Ltd"), [])
    params = {"product": "phishing", "email": "ada@acme.example"}
    assert [client.get(CHECK, params=params, headers=acme.auth).status_code for _ in range(3)] == [200] * 3
    limited = client.get(CHECK, params=params, headers=acme.auth)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    assert "at most 2 a second" in error_of(limited)
    assert client.get(CHECK, params=params, headers=rival.auth).status_code == 200  # per key
    now[0] += 0.5  # one more request's worth
    assert client.get(CHECK, params=params, headers=acme.auth).status_code == 200
    assert client.get(CHECK, params=params, headers=acme.auth).status_code == 429


def test_checks_record_the_seats_and_the_keys_last_use(client: TestClient, seeded: Seeded, acme: Tenant) -> None:
    def stamps() -> tuple[object, object, object]:
        with session_scope(seeded.engine, write=False) as session:
            ada, bob = (session.get(SeatAssignment, seat_id).last_used_at for seat_id in acme.seat_ids[:2])
            return ada, bob, session.exec(select(ApiKey.last_used_at)).one()

    assert stamps() == (None, None, None)
    client.get(CHECK, params={"product": "phishing", "email": "ada@acme.example"}, headers=acme.auth)
    ada, bob, key = stamps()
    assert ada is not None and bob is None and key is not None
    client.post(CHECK, json={"product": "phishing", "emails": ["ada@acme.example", "bob@acme.example"]},
                headers=acme.auth)
    again = stamps()
    assert again[0] == ada and again[1] is not None and again[2] == key  # within the hour: unchanged


def test_the_openapi_document_describes_the_routes(client: TestClient) -> None:
    response = client.get(api.OPENAPI)
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1") and document["servers"] == [{"url": "/api/v1"}]
    served = {route.path: set(route.methods) - {"HEAD"} for route in api.entitlements_routes}
    described = {path: {method.upper() for method in methods} for path, methods in document["paths"].items()}
    assert described == served
    schemas = document["components"]["schemas"]
    refs = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.add(node["$ref"].removeprefix("#/components/schemas/"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert refs <= set(schemas) and {"Entitlement", "BatchAnswer", "HoldersPage", "ApiError"} <= refs
    assert set(schemas["Entitlement"]["required"]) >= {"entitled", "product"}


def test_the_key_reaches_no_log_even_when_a_request_fails(client: TestClient, seeded: Seeded, acme: Tenant,
                                                          caplog: pytest.LogCaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    params = {"product": "phishing", "email": "ada@acme.example"}
    client.get(CHECK, params=params, headers=acme.auth)
    client.get(CHECK, params=params, headers={"Authorization": f"Bearer {acme.key}x"})

    def broken(*args, **kwargs) -> None:  # noqa: ANN002, ANN003
        raise RuntimeError("the database went away")

    monkeypatch.setattr(api.entitlements, "check", broken)
    failed = client.get(CHECK, params=params, headers=acme.auth)
    assert failed.status_code == 500 and error_of(failed) == "Something went wrong on our side; try again."
    formatter = logging.Formatter("%(message)s")
    logged = "\n".join(formatter.format(record) for record in caplog.records if record.name.startswith("cf_portal"))
    assert "an API request failed" in logged and "the database went away" in logged and "refused" in logged
    assert acme.key not in logged and acme.key[9:] not in logged and "ada@acme.example" not in logged


def test_the_token_bucket_allows_the_burst_then_the_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=50, burst=100, clock=lambda: now[0])
    assert [buckets.take("k") for _ in range(100)] == [0.0] * 100
    assert buckets.take("k") == pytest.approx(0.02)  # one token comes back every 1/50 s
    now[0] += 0.02
    assert buckets.take("k") == 0.0 and buckets.take("k") > 0
    now[0] += 10  # idle: full again, never more than the burst
    assert [buckets.take("k") for _ in range(101)].count(0.0) == 100


def test_idle_buckets_are_forgotten_but_a_busy_one_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from cf_portal.services import rate_limit

    monkeypatch.setattr(rate_limit, "MAX_BUCKETS", 10)
    now = [0.0]
    buckets = TokenBuckets(rate=1, burst=2, clock=lambda: now[0])
    buckets.take("busy")
    buckets.take("busy")
    for i in range(10):
        now[0] += 0.01
        buckets.take(f"idle-{i}")
    now[0] += 5  # the idle ones are full again; "busy" too
    buckets.take("busy")
    buckets.take("busy")
    buckets.take("busy-again")  # past MAX_BUCKETS: full buckets go
    assert len(buckets._buckets) <= 3 and buckets.take("busy") > 0


def test_the_answer_stands_when_its_use_cannot_be_recorded(client: TestClient, acme: Tenant,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    import sqlalchemy as sa

    def locked(*args, **kwargs) -> None:  # noqa: ANN002, ANN003
        raise sa.exc.OperationalError("UPDATE seat_assignment ...", None, Exception("database is locked"))

    monkeypatch.setattr(api.entitlements, "record_use", locked)
    response = client.get(CHECK, params={"product": "phishing", "email": "ada@acme.example"}, headers=acme.auth)
    assert response.status_code == 200 and response.json()["entitled"] is True
    assert any("was not recorded: OperationalError" in record.getMessage() for record in caplog.records)


def test_the_key_is_judged_before_the_parameters(client: TestClient, acme: Tenant) -> None:
    for headers in ({}, {"Authorization": "Bearer cfk_live_wrong"}):
        assert client.post(CHECK, content="not json", headers=headers).status_code == 401
        assert client.get(CHECK, headers=headers).status_code == 401
        assert client.get("/api/v1/products/nope/holders", params={"limit": "x"}, headers=headers).status_code == 401


def test_health_answers_without_a_key_or_the_database(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "session_scope", lambda *a, **k: pytest.fail("the health route must not touch the database"))
    response = client.get(f"{api.routes.API_V1}/health")
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"


def test_api_answers_say_how_long_the_server_took(client: TestClient, acme: Tenant) -> None:
    answers = [client.get(CHECK, params={"product": "phishing", "email": "ada@acme.example"}, headers=acme.auth),
               client.get(CHECK, params={"product": "phishing", "email": "ada@acme.example"}),  # 401
               client.get("/api/v1/nothing/here"),  # 404
               client.get(f"{api.routes.API_V1}/health")]
    for response in answers:
        name, _, duration = response.headers["server-timing"].partition(";dur=")
        assert name == "app" and float(duration) >= 0, response.headers["server-timing"]
    outside = client.post(api.STRIPE_WEBHOOK_PATH, content=b"{}")
    assert "server-timing" not in outside.headers


def test_the_last_use_is_written_after_the_answer_is_sent(client: TestClient, acme: Tenant,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    record_use = api.entitlements.record_use
    monkeypatch.setattr(api.entitlements, "record_use", lambda *a, **k: events.append("recorded") or record_use(*a, **k))
    query = b"product=phishing&email=ada%40acme.example"
    scope = {"type": "http", "method": "GET", "path": CHECK, "raw_path": CHECK.encode(), "query_string": query,
             "headers": [(b"authorization", f"Bearer {acme.key}".encode()), (b"host", b"testserver")],
             "http_version": "1.1", "scheme": "http", "server": ("testserver", 80), "client": ("127.0.0.1", 1),
             "root_path": "", "app": api.api}

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            events.append("sent")

    run_on_a_loop(api.api(scope, receive, send))
    assert events == ["sent", "recorded"]
