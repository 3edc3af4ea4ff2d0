"""What the API documentation page (Settings → API documentation) says: the catalog's product codes, the webhook
event types, and examples to copy.

The examples are written for a portal at `EXAMPLE_BASE_URL`; `guide` puts the portal's own address in their place.
`WEBHOOK_RECEIVER` is self-contained Python (the standard library only): tests/unit/test_api_guide.py runs it
against signatures made by `services.webhooks.sign`, and checks that every URL of the examples is a real route.
"""

from __future__ import annotations

from pydantic import BaseModel
from sqlmodel import Session

from cf_portal.services import entitlements, webhooks
from cf_portal.services.entitlements import ProductCode

EXAMPLE_BASE_URL = "https://portal.example.com"

CURL_EXAMPLE = """\
# May this person use the Phishing Simulator?
curl -s "https://portal.example.com/api/v1/entitlements/check?product=phishing&email=ava%40example.com" \\
  -H "Authorization: Bearer $CF_API_KEY"

# The same for up to 1,000 people at once
curl -s -X POST "https://portal.example.com/api/v1/entitlements/check" \\
  -H "Authorization: Bearer $CF_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{"product": "phishing", "emails": ["ava@example.com", "noah@example.com"]}'

# Everyone entitled to the product, a page at a time
curl -s "https://portal.example.com/api/v1/products/phishing/holders?limit=100" \\
  -H "Authorization: Bearer $CF_API_KEY"

# The OpenAPI description (no key needed)
curl -s "https://portal.example.com/api/v1/openapi.json"
"""

HTTPX_EXAMPLE = """\
import os
import time

import httpx

client = httpx.Client(
    base_url="https://portal.example.com/api/v1",
    headers={"Authorization": f"Bearer {os.environ['CF_API_KEY']}"},
    timeout=10.0,
)


def call(method: str, path: str, **kwargs) -> dict:
    \"\"\"One request; past the key's rate (429), wait as Retry-After says and try again.\"\"\"
    while True:
        response = client.request(method, path, **kwargs)
        if response.status_code != 429:
            response.raise_for_status()
            return response.json()
        time.sleep(int(response.headers["Retry-After"]))


answer = call("GET", "/entitlements/check", params={"product": "phishing", "email": "ava@example.com"})
print("entitled" if answer["entitled"] else "not entitled")

batch = call("POST", "/entitlements/check",
             json={"product": "phishing", "emails": ["ava@example.com", "noah@example.com"]})
for result in batch["results"]:
    print(result["email"], result["entitled"])

cursor = None
while True:
    page = call("GET", "/products/phishing/holders", params={"cursor": cursor} if cursor else {})
    for holder in page["holders"]:
        print(holder["email"], holder["license"]["reference"])
    cursor = page["next_cursor"]
    if cursor is None:
        break
"""

WEBHOOK_RECEIVER = """\
import hashlib
import hmac
import time

TOLERANCE_SECONDS = 300  # refuse a delivery signed more than 5 minutes ago: a replay


def verify_cf_signature(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    \"\"\"True when the CF-Signature header signs exactly these raw bytes with your endpoint's secret.\"\"\"
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_SECONDS:
        return False
    signed = str(timestamp).encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)


# In your web app (Flask here), check the raw body before reading the JSON:
#
# @app.post("/chatfortress/webhooks")
# def chatfortress_webhook():
#     body = request.get_data()
#     if not verify_cf_signature(os.environ["CF_WEBHOOK_SECRET"], request.headers.get("CF-Signature", ""), body):
#         return "bad signature", 400
#     event = json.loads(body)
#     # A delivery may come more than once: skip an event["id"] you have already handled.
#     handle(event["type"], event["data"])
#     return "", 204
"""


class ApiGuide(BaseModel):
    base_url: str  # where this portal answers ("https://portal.example.com" when unknown)
    products: list[ProductCode]
    event_types: list[str]
    curl_example: str
    httpx_example: str


def with_base_url(example: str, base_url: str) -> str:
    return example.replace(EXAMPLE_BASE_URL, base_url.rstrip("/") or EXAMPLE_BASE_URL)


def guide(session: Session, *, base_url: str) -> ApiGuide:
    """The page's content for a portal at `base_url` ('' when unknown: the examples keep EXAMPLE_BASE_URL)."""
    shown = base_url.rstrip("/") or EXAMPLE_BASE_URL
    return ApiGuide(base_url=shown, products=entitlements.product_codes(session),
                    event_types=list(webhooks.EVENT_TYPES), curl_example=with_base_url(CURL_EXAMPLE, shown),
                    httpx_example=with_base_url(HTTPX_EXAMPLE, shown))
