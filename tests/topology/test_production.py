"""The portal as it runs in production (PostgreSQL, Redis, two app processes with their Granian workers, nginx
with HTTPS in front of both), driven through nginx by a customer's headless Chromium, and the faults an operator
meets: a worker killed, a whole app process stopped, Redis restarted, PostgreSQL restarted. The purchase counts
come from the database: nothing bought twice or half."""

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


def goes_on_and_buys_once(topology: Topology, tab: Page, name: str, quantity: int, discounted_total: str) -> None:
    """After the tab's connection was broken by a fault: a coupon typed while the tab reconnects (queued by the
    tab, handled once it is back), the form as it was typed before (the tab kept its token, so its state in
    Redis), and Create buys exactly once."""
    tab.get_by_label("Coupon code").fill("WELCOME20")
    expect(tab.get_by_text("20% off, forever")).to_be_visible(timeout=30_000)
    expect(tab.get_by_label("License name")).to_have_value(name)
    expect(tab.get_by_label("Number of licenses")).to_have_value(str(quantity))
    expect(total(tab)).to_have_text(discounted_total)
    create(topology, tab, name)
    assert topology.purchases_named(name) == (1, 1, 1)  # one license, one invoice line, one charge


def test_checkout_and_a_seat_through_nginx(topology: Topology, tab: Page) -> None:
    offset = topology.access_log_size()
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
    # nginx spread the session's requests over both app processes.
    wait_for(lambda: {port for _, port in topology.answered_by(offset)} == {app.port for app in topology.apps},
             "requests answered by each app process")
    assert topology.new_server_errors() == []


def test_a_worker_killed_mid_session_is_respawned_and_the_tab_goes_on(topology: Topology, tab: Page,
                                                                        allowed_console: list[str]) -> None:
    allowed_console.append(r"WebSocket|_event|socket")  # the connection the killed worker held breaks
    open_add_license(topology, tab)
    add_card(tab)
    fill_license(tab, "Respawn team", 3, "$27.00")
    app, victim = topology.websocket_worker()
    workers_before = topology.worker_pids(app)

    os.kill(victim, signal.SIGKILL)
    goes_on_and_buys_once(topology, tab, "Respawn team", 3, "$21.60")

    # The dead worker is replaced and the app never stopped serving.
    wait_for(lambda: len(topology.worker_pids(app) - {victim}) == len(workers_before), "a new worker")
    assert victim not in topology.worker_pids(app)
    log = topology.new_log()
    assert "Unexpected exit from worker" in log and "Reflex app stopped" not in log
    for _ in range(6):  # whichever worker takes the connection
        assert topology.answers_through_nginx()
    errors = [line for line in log.splitlines() if "Unexpected exit from worker" not in line
              and any(m in line for m in ("Traceback", " ERROR ", "ERROR:", "[ERROR]", "CRITICAL"))]
    assert errors == []


# SIGTERM: the whole process group, as systemd stops a unit (the workers close their connections). SIGKILL: the
# process group gone at once (the out-of-memory killer on its cgroup): nothing is closed in good order and the
# tab's socket record in Redis names a dead worker of the other process (cf_portal/worker_presence.py).
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_an_app_process_stopped_mid_session_the_tab_goes_on_through_the_other_which_it_started_again(
        topology: Topology, tab: Page, allowed_console: list[str], sig: signal.Signals) -> None:
    allowed_console.append(r"WebSocket|_event|socket")  # the connection the stopped process held breaks
    name = f"Failover team {sig.name}"
    open_add_license(topology, tab)
    add_card(tab)
    fill_license(tab, name, 4, "$36.00")
    victim, _ = topology.websocket_worker()
    survivor = next(app for app in topology.apps if app is not victim)
    survivor_workers = topology.worker_pids(survivor)

    topology.stop_app(victim, sig)
    goes_on_and_buys_once(topology, tab, name, 4, "$28.80")
    assert topology.websocket_holders(survivor), "the tab is not connected to the other process"
    assert topology.worker_pids(survivor) == survivor_workers  # which went on undisturbed

    # Started again (serving the build that is there), nginx sends it requests once more (after the 10 s it passes
    # over a server that refused), and a new tab, given to the process with the fewest connections, works on it.
    topology.start_app(victim)
    offset = topology.access_log_size()
    wait_for(lambda: topology.answers_through_nginx() and victim.port in {p for _, p in topology.answered_by(offset)},
             "nginx sending requests to the process started again")

    def a_new_tab_works_on_it() -> bool:
        """(A request of the page's own still open there could tie the count: then the tab is opened again.)"""
        second = tab.context.new_page()
        try:
            second.goto(topology.url + "/licenses")
            expect(second.get_by_text(name).first).to_be_visible()  # hydrated: its websocket is open
            return bool(topology.websocket_holders(victim))
        finally:
            second.close()

    wait_for(a_new_tab_works_on_it, "a new tab with its websocket on the process started again")
    assert topology.new_server_errors() == []


def test_the_websocket_is_the_only_transport_so_no_sticky_routing_is_needed(topology: Topology) -> None:
    """nginx spreads connections over the app processes with no stickiness (deploy/nginx/): right only while a
    socket.io session is one websocket. A long-polling handshake (whose later requests would have to reach the same
    process) is refused, through nginx, by every process."""
    offset = topology.access_log_size()

    def one_more_refused_and_each_process_refused_one() -> bool:
        request = urllib.request.Request(f"{topology.url}/_event/?EIO=4&transport=polling",
                                         headers={"Origin": topology.url})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10, context=insecure_context())
        assert refused.value.code == 400
        refused_by = {port for request, port in topology.answered_by(offset) if "transport=polling" in request}
        return refused_by == {app.port for app in topology.apps}

    wait_for(one_more_refused_and_each_process_refused_one, "a polling handshake refused by each app process")


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
