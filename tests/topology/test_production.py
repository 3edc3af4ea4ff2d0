"""The portal as it runs in production (PostgreSQL, Redis, two Granian workers, nginx with HTTPS), driven
through nginx by a customer's headless Chromium, and the faults an operator meets: a worker killed, Redis
restarted, PostgreSQL restarted. The purchase counts come from the database: nothing bought twice or half."""

from __future__ import annotations

import os
import re
import signal
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import Page, expect

from cf_portal.cf_portal import STATE_STORE_DOWN
from tests.support.nginx import insecure_context
from tests.topology.conftest import Topology, wait_for, wait_until_connected

pytestmark = pytest.mark.only_on("postgres")  # several workers need a server database; one pass is enough

CARD = "4242 4242 4242 4242"


def open_add_license(topology: Topology, page: Page) -> None:
    page.goto(topology.url + "/licenses/new")
    wait_until_connected(page)
    expect(page.get_by_role("heading", name="Add License", level=1)).to_be_visible()
    expect(page.get_by_label("Plan")).not_to_have_value("")


def total(page: Page):  # noqa: ANN201
    return page.get_by_role("region", name="Price").locator("#total-due")


def add_card(page: Page) -> None:
    page.get_by_role("button", name="Add payment method").click()
    dialog = page.get_by_role("dialog", name="Add payment method")
    dialog.get_by_label("Card number").fill(CARD)
    dialog.get_by_label("Expiry (MM / YY)").fill("12 / 34")
    dialog.get_by_label("CVC").fill("123")
    dialog.get_by_role("button", name="Save card").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("radio", name=re.compile("Visa ending in 4242"))).to_be_checked()


def fill_license(page: Page, name: str, quantity: int, expected_total: str) -> None:
    """Fill the form and wait until the server has it (the total it computes is shown)."""
    page.get_by_label("License name").fill(name)
    page.get_by_label("Number of licenses").fill(str(quantity))
    expect(total(page)).to_have_text(expected_total)


def create(topology: Topology, page: Page, name: str) -> None:
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(re.escape(topology.url) + "/licenses/?$"))
    expect(page.get_by_role("status").filter(has_text="is ready")).to_contain_text(name)


def test_checkout_and_a_seat_through_nginx(topology: Topology, tab: Page) -> None:
    open_add_license(topology, tab)
    add_card(tab)
    fill_license(tab, "Proxy team", 2, "$18.00")
    create(topology, tab, "Proxy team")
    assert topology.purchases_named("Proxy team") == (1, 1, 1)

    tab.get_by_role("navigation", name="Main").get_by_role("link", name="Employees").click()
    expect(tab.get_by_role("heading", name="Employees", level=1)).to_be_visible()
    tab.get_by_label("Search").fill("ava thompson")
    row = tab.get_by_role("row").filter(has=tab.get_by_role("button", name="Details of Ava Thompson"))
    row.get_by_role("button", name="Assign a license to Ava Thompson").click()
    dialog = tab.get_by_role("dialog", name="Assign a license")
    expect(dialog.get_by_label("License")).to_contain_text("Proxy team")
    dialog.get_by_role("button", name="Assign").click()
    expect(dialog).to_be_hidden()
    expect(row).to_contain_text("Proxy team")
    assert topology.value("SELECT count(*) FROM seat_assignment WHERE unassigned_at IS NULL") == 1

    # Through the proxy the answers say HTTPS (HSTS), and plain HTTP only sends people to the public address.
    with urllib.request.urlopen(topology.url + "/licenses", context=insecure_context()) as response:
        assert "max-age=" in response.headers["Strict-Transport-Security"]

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            return None

    try:
        urllib.request.build_opener(NoRedirect).open(topology.http_url + "/licenses")
        raise AssertionError("plain HTTP answered instead of redirecting")
    except urllib.error.HTTPError as redirect:
        assert redirect.code == 301 and redirect.headers["Location"] == topology.url + "/licenses"
    assert topology.new_server_errors() == []


def test_a_worker_killed_mid_session_is_respawned_and_the_tab_goes_on(topology: Topology, tab: Page,
                                                                        allowed_console: list[str]) -> None:
    allowed_console.append(r"WebSocket|_event|socket")  # the connection the killed worker held breaks
    open_add_license(topology, tab)
    add_card(tab)
    fill_license(tab, "Respawn team", 3, "$27.00")
    workers_before = topology.worker_pids()
    victim = topology.websocket_worker()

    os.kill(victim, signal.SIGKILL)
    # Typed while the tab reconnects (to the other worker): queued by the tab, handled once it is back.
    tab.get_by_label("Coupon code").fill("WELCOME20")
    expect(tab.get_by_text("20% off, forever")).to_be_visible(timeout=30_000)
    # What was typed before the kill is still there: the tab kept its token (and so its state in Redis).
    expect(tab.get_by_label("License name")).to_have_value("Respawn team")
    expect(tab.get_by_label("Number of licenses")).to_have_value("3")
    expect(total(tab)).to_have_text("$21.60")
    create(topology, tab, "Respawn team")
    assert topology.purchases_named("Respawn team") == (1, 1, 1)  # one license, one charge

    # The dead worker is replaced and the app never stopped serving.
    wait_for(lambda: len(topology.worker_pids() - {victim}) == len(workers_before), "a new worker")
    assert victim not in topology.worker_pids()
    log = topology.new_log()
    assert "Unexpected exit from worker" in log and "Reflex app stopped" not in log
    for _ in range(6):  # whichever worker takes the connection
        assert topology.answers_through_nginx()
    errors = [line for line in log.splitlines() if "Unexpected exit from worker" not in line
              and any(m in line for m in ("Traceback", " ERROR ", "ERROR:", "[ERROR]", "CRITICAL"))]
    assert errors == []


def test_redis_restarted_a_clear_message_then_the_purchase_goes_through_once(topology: Topology, tab: Page) -> None:
    open_add_license(topology, tab)
    add_card(tab)
    fill_license(tab, "Redis team", 2, "$18.00")

    topology.redis.stop()
    try:
        tab.get_by_role("button", name="Create").click()
        expect(tab.get_by_text(STATE_STORE_DOWN)).to_be_visible()
        expect(tab.get_by_text("An error occurred")).to_have_count(0)  # not Reflex's generic message
        assert topology.purchases_named("Redis team") == (0, 0, 0)
    finally:
        topology.redis.start()
    assert "the state store (REFLEX_REDIS_URL) did not answer" in topology.new_log()

    # Back: the form is as it was, and Create buys once.
    expect(tab.get_by_label("License name")).to_have_value("Redis team")
    create(topology, tab, "Redis team")
    assert topology.purchases_named("Redis team") == (1, 1, 1)
    assert topology.new_server_errors() == []


def test_postgresql_restarted_the_next_click_works(topology: Topology, tab: Page) -> None:
    open_add_license(topology, tab)
    topology.postgres.restart()  # every pooled connection of both workers is now dead
    tab.get_by_label("Coupon code").fill("WELCOME20")  # a look-up in the database
    expect(tab.get_by_text("20% off, forever")).to_be_visible()
    tab.get_by_role("navigation", name="Main").get_by_role("link", name="Employees").click()
    expect(tab.get_by_role("button", name="Details of Ava Thompson")).to_be_visible()
    expect(tab.get_by_text("An error occurred")).to_have_count(0)
    assert topology.new_server_errors() == []
