"""Run localstripe (a fake Stripe server, test-only) on 127.0.0.1 with its disk persistence off.

localstripe's own command listens on every interface and pickles its whole store to one fixed file in
the system temp folder after every write: slower as data grows, and shared by every instance on the
machine. This launcher keeps the store in memory only and binds loopback:

    python -m tests.support.localstripe_server --port 8420 [--newer-api]

localstripe predates Prices, promotion codes and invoice previews, and refuses the newer subscription
parameters. With `--newer-api` (for the browser tests, which run the app's real Stripe provider) it also
answers those the simplest way that keeps Stripe's shapes: each Plan is also the Price of the same id and
lookup key; each valid coupon has a promotion code `promo_<coupon>` of the same code; a preview prices one
item with its coupon; a subscription on a Price is made on the Plan, with the chosen card as the customer's
default (localstripe charges that) and without `description`. Discounts on subscriptions stay unsupported
(400), as in localstripe. The Stripe provider's requests themselves are checked in
tests/contract/test_stripe_requests.py.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
KEY = "sk_test_localstripe"


def _answers(url: str) -> bool:
    request = urllib.request.Request(f"{url}/v1/customers", headers={"Authorization": f"Bearer {KEY}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def running_localstripe(*, newer_api: bool = False) -> Iterator[str]:
    """localstripe on 127.0.0.1 and a free port, in memory only; yields its URL and stops it afterwards.
    `newer_api`: also answer what localstripe lacks (see the module's docstring)."""
    from tests.support.postgres import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        command = [sys.executable, "-m", "tests.support.localstripe_server", "--port", str(port)]
        proc = subprocess.Popen(command + (["--newer-api"] if newer_api else []),
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while not _answers(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"localstripe did not start:\n{log.read().decode()[-3000:]}")
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _newer_api():  # noqa: ANN202
    """The aiohttp middleware that answers what localstripe lacks (see the module's docstring)."""
    from aiohttp import web
    from localstripe.errors import UserError
    from localstripe.resources import Coupon, Customer, Plan, Subscription
    from localstripe.server import get_post_data, json_response, unflatten_data

    def price(plan) -> dict:  # noqa: ANN001
        return {"id": plan.id, "object": "price", "active": True, "currency": plan.currency, "lookup_key": plan.id,
                "unit_amount": plan.amount, "product": plan.product, "type": "recurring",
                "recurring": {"interval": plan.interval, "interval_count": plan.interval_count}}

    def coupon_of(code: str):  # noqa: ANN202
        try:
            coupon = Coupon._api_retrieve(code.upper())
        except UserError:
            return None
        return coupon if coupon.valid else None

    def listing(url: str, data: list[dict]) -> web.Response:
        return json_response({"object": "list", "url": url, "has_more": False, "data": data})

    @web.middleware
    async def middleware(request: web.Request, handler):  # noqa: ANN001, ANN202
        path, method = request.path, request.method
        if method == "GET" and path == "/v1/prices":
            keys = unflatten_data(request.query).get("lookup_keys") or []
            found = []
            for key in keys:
                try:
                    found.append(price(Plan._api_retrieve(key)))
                except UserError:
                    pass
            return listing(path, found)
        if method == "GET" and path == "/v1/promotion_codes":
            code = str(unflatten_data(request.query).get("code") or "")
            coupon = coupon_of(code)
            return listing(path, [{"id": f"promo_{coupon.id}", "object": "promotion_code", "active": True,
                                   "code": coupon.id, "promotion": {"type": "coupon", "coupon": coupon.id}}]
                           if coupon else [])
        if method == "POST" and path == "/v1/invoices/create_preview":
            data = await get_post_data(request) or {}
            item = data["subscription_details"]["items"][0]
            plan = Plan._api_retrieve(item["price"])
            subtotal = plan.amount * int(item.get("quantity") or 1)
            off = 0
            for discount in data.get("discounts") or []:
                coupon = coupon_of(str(discount.get("promotion_code", "")).removeprefix("promo_"))
                if coupon is None:
                    raise UserError(400, "No such promotion code")
                off = (subtotal * int(coupon.percent_off) + 50) // 100 if coupon.percent_off else coupon.amount_off
            total = subtotal - min(off, subtotal)
            return json_response({"object": "invoice", "status": "draft", "currency": plan.currency,
                                  "subtotal": subtotal, "total": total})
        if method == "POST" and path == "/v1/subscriptions":
            data = await get_post_data(request) or {}
            if data.pop("discounts", None):
                raise UserError(400, "localstripe cannot apply discounts to subscriptions")
            expand = data.pop("expand", None)
            data.pop("description", None)
            card = data.pop("default_payment_method", None)
            if card:
                Customer._api_update(data["customer"], invoice_settings={"default_payment_method": card})
            data["items"] = [{"plan": item.pop("price", item.get("plan")), **item} for item in data["items"]]
            return json_response(Subscription._api_create(**data)._export(expand=expand))
        return await handler(request)

    return middleware


def serve(port: int, *, newer_api: bool = False) -> None:
    from aiohttp import web
    from localstripe.resources import store
    from localstripe.server import app

    # `Store` calls `self.dump_to_disk()` on every change and the server's middleware calls it after each
    # write: an instance attribute shadows the method for both.
    store.dump_to_disk = lambda: None
    if newer_api:
        app.middlewares.append(_newer_api())
    logging.basicConfig(level=logging.WARNING)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--newer-api", action="store_true", help="also answer what localstripe lacks")
    arguments = parser.parse_args()
    serve(arguments.port, newer_api=arguments.newer_api)


if __name__ == "__main__":
    main()
