"""Benchmark of the Add License checkout in headless Chromium against the production build (prints markdown).

Starts the app on a free port with its own seeded SQLite database, opens /licenses/new and measures, with
timestamps taken inside the page (performance.now() in `input` listeners, a wrapped WebSocket and a
MutationObserver on #total-due), so neither Playwright's round trips nor Python's clock are in the figures:

- coupon:   from the last keystroke of a code typed into "Coupon code" to the new total in #total-due.
            The field is debounced (react-debounce-input, 300 ms), so the target is 300 + 100 ms at p95.
- quantity: from a keystroke in "Number of licenses" to the new total; target 100 ms at p95.
- no-op:    a bare event round trip for scale: the License name's on_blur (`check_reference_name` on a valid
            name changes nothing), from its websocket frame leaving the page to the server's reply arriving.

Each sample also records when the event's frame left the page and when the reply arrived, so the table
splits every figure into client delay (the debounce), server round trip and rendering.

    .venv/bin/python bench/checkout_latency.py                 # 30 samples of each
    .venv/bin/python bench/checkout_latency.py --samples 100

The app is built and run from a copy of the checkout in a temporary folder: `reflex run --env prod` compiles
into .web/ and bakes its port into the frontend, so building in the checkout itself would break any other
app, test run or benchmark being served from that .web/ at the same time.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Page, sync_playwright  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import CHROMIUM_ARGS, SERVER_ERROR_MARKERS, percentile, running_app, try_the_demo  # noqa: E402

COUPON_DEBOUNCE_MS = 300  # Reflex's DebounceInput default, used by the coupon field
TARGETS_MS = {"coupon": COUPON_DEBOUNCE_MS + 100, "quantity": 100}
WARMUP = 3  # unmeasured samples per measure (first renders, connection pools, caches)
SAMPLE_TIMEOUT_MS = 10_000
PAUSE_MS = 150  # quiet time between samples, so that one sample's frames never overlap the next

# Each step changes the total, whatever the step before it was: codes cycle through two discounts and none,
# the quantity through single digits (one keystroke each, replacing the selection).
COUPON_STEPS = ["WELCOME20", "SPRING15", ""]
QUANTITY_STEPS = ["2", "5", "7", "3"]

# Installed before the app's scripts (engine.io picks up window.WebSocket when its module loads).
# Everything is timed with performance.now(), one clock for keystrokes, frames and the DOM.
INSTRUMENTATION = r"""
(() => {
  const bench = window.__bench = {inputs: [], sent: [], received: [], totals: []};
  const now = () => performance.now();

  // Keystrokes: every `input` event of a form field (capture phase, before React sees it).
  document.addEventListener('input', (e) => {
    bench.inputs.push({t: now(), id: e.target.id || '', value: e.target.value});
  }, true);

  // Websocket frames. Socket.io text frames on Reflex's namespace: `42/_event,["event",{...}]`, sent ones
  // carrying {"name": "<state path>.<handler>", ...}, received ones {"delta": ..., "events": ...}.
  const isEvent = (data) => /^42(\/[^,]*,)?\d*\["event"/.test(data);
  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      // Registered before engine.io sets onmessage, so this runs first for every frame.
      this.addEventListener('message', (e) => {
        bench.received.push({t: now(), event: typeof e.data === 'string' && isEvent(e.data)});
      });
    }
    send(data) {
      const text = typeof data === 'string' ? data : '';
      const name = isEvent(text) ? (text.match(/"name":"([^"]+)"/) || [, ''])[1] : '';
      bench.sent.push({t: now(), name});
      return super.send(data);
    }
  };

  // The total as shown: a record each time #total-due's text changes (the DOM commit, before paint).
  let shown = null;
  new MutationObserver(() => {
    const el = document.getElementById('total-due');
    const text = el ? el.textContent : null;
    if (text !== shown) {
      shown = text;
      bench.totals.push({t: now(), text});
    }
  }).observe(document, {subtree: true, childList: true, characterData: true});

  // Where the records stand now; a sample looks only at what comes after its mark.
  bench.mark = () => ({inputs: bench.inputs.length, sent: bench.sent.length, received: bench.received.length,
                       totals: bench.totals.length});

  // One sample's timeline from the records after `mark`: the last keystroke in the field, the first frame of
  // `handler` sent after it, the first event frame received after that, and when `expected` was shown.
  bench.timeline = (mark, fieldId, handler, expected) => {
    const keys = bench.inputs.slice(mark.inputs).filter((i) => i.id === fieldId);
    const key = keys.length ? keys[keys.length - 1].t : null;
    const frames = bench.sent.slice(mark.sent).filter((s) => s.name.endsWith('.' + handler));
    const sent = frames.find((s) => key === null || s.t >= key);
    const received = sent && bench.received.slice(mark.received).find((r) => r.event && r.t >= sent.t);
    const shown = expected === null ? null : bench.totals.slice(mark.totals).find((x) => x.text === expected);
    return {key, sent: sent ? sent.t : null, received: received ? received.t : null, shown: shown ? shown.t : null,
            sentFrames: frames.length};
  };

  // Done: the reply has arrived and, if a total is expected, it is on screen.
  bench.done = (mark, fieldId, handler, expected) => {
    const t = bench.timeline(mark, fieldId, handler, expected);
    return t.received !== null && (expected === null || t.shown !== null);
  };
})();
"""


@dataclass
class Measure:
    """The samples of one measure, in milliseconds: total and its phases."""

    name: str
    total: list[float] = field(default_factory=list)
    client: list[float] = field(default_factory=list)  # keystroke -> frame sent (the debounce)
    server: list[float] = field(default_factory=list)  # frame sent -> reply received
    render: list[float] = field(default_factory=list)  # reply received -> total in the DOM


def compiled_debounce_timeouts(app_dir: Path) -> dict[str, int]:
    """debounceTimeout of each DebounceInput on the compiled Add License page, by input id."""
    found: dict[str, int] = {}
    compiled = app_dir / ".web" / "app_components" / "cf_portal" / "pages" / "add_license.jsx"
    if not compiled.exists():
        return found
    # One `jsx(DebounceInput,{...})` call per line, its props sorted by name (debounceTimeout before id).
    for chunk in compiled.read_text().split("jsx(DebounceInput,")[1:]:
        call = chunk.split("\n", 1)[0]
        timeout, input_id = re.search(r"debounceTimeout:(-?\d+)", call), re.search(r'\bid:"([^"]+)"', call)
        if timeout and input_id:
            found[input_id.group(1)] = int(timeout.group(1))
    return found


# --- the browser ---------------------------------------------------------------------------------------


def open_form(page: Page, url: str) -> None:
    page.goto(url + "/licenses/new")
    # Live once the websocket has delivered the first state (the account name), and a plan is preselected.
    page.get_by_text("Acme Security Ltd").first.wait_for(state="attached", timeout=60_000)
    page.wait_for_function("document.getElementById('plan')?.value && "
                           "/\\d/.test(document.getElementById('total-due')?.textContent || '')", timeout=30_000)


def round_trip(page: Page, action: Callable[[], None], field_id: str, handler: str, expected: str | None) -> dict:
    """Run `action` and return its timeline once the reply to `handler` is in (and `expected` shown, if given)."""
    mark = page.evaluate("__bench.mark()")
    action()
    args = [mark, field_id, handler, expected]
    page.wait_for_function("(a) => __bench.done(...a)", arg=args, timeout=SAMPLE_TIMEOUT_MS)
    return page.evaluate("(a) => __bench.timeline(...a)", args)


def learn_totals(page: Page, steps: list[str], do_step: Callable[[str], None], field_id: str, handler: str) -> dict:
    """Go through the steps once (unmeasured) and return the total each one shows."""
    totals = {}
    for step in steps:
        before = page.locator("#total-due").text_content()
        round_trip(page, functools.partial(do_step, step), field_id, handler, None)
        page.wait_for_timeout(PAUSE_MS)  # the reply is in; let React render it
        totals[step] = page.locator("#total-due").text_content()
        if totals[step] == before:
            raise SystemExit(f"{field_id}={step!r} does not change the total ({before}); the samples need it to")
    return totals


def measure_field(page: Page, name: str, field_id: str, handler: str, steps: list[str],
                  do_step: Callable[[str], None], samples: int) -> Measure:
    """Samples of "last keystroke in the field -> new total shown", cycling through `steps`.

    The total each step shows is learnt first, so a sample ends exactly when its own total is on screen.
    """
    expected = learn_totals(page, steps, do_step, field_id, handler)
    result = Measure(name)
    for i in range(WARMUP + samples):
        step = steps[i % len(steps)]
        t = round_trip(page, functools.partial(do_step, step), field_id, handler, expected[step])
        if i >= WARMUP:
            result.total.append(t["shown"] - t["key"])
            result.client.append(t["sent"] - t["key"])
            result.server.append(t["received"] - t["sent"])
            result.render.append(t["shown"] - t["received"])
            if t["sentFrames"] != 1:
                print(f"note: {name} sample {i} sent {t['sentFrames']} events (typing outran the debounce?)",
                      file=sys.stderr)
        page.wait_for_timeout(PAUSE_MS)
    return result


def measure_noop(page: Page, samples: int) -> Measure:
    """A bare event round trip: blurring a valid License name re-checks it and changes nothing."""
    name = page.get_by_label("License name")
    # A valid name first; the debounced set_reference_name goes out and comes back before timing anything.
    round_trip(page, lambda: name.fill("Bench team"), "reference_name", "set_reference_name", None)

    def focus_and_blur() -> None:
        name.focus()
        name.blur()

    result = Measure("no-op")
    for i in range(WARMUP + samples):
        t = round_trip(page, focus_and_blur, "reference_name", "check_reference_name", None)
        if i >= WARMUP:
            result.total.append(t["received"] - t["sent"])
            result.server.append(t["received"] - t["sent"])
        page.wait_for_timeout(PAUSE_MS)
    if page.locator("#reference_name-error").count():
        raise SystemExit("the no-op event showed a name error; it is not a no-op")
    return result


def run_measures(url: str, samples: int) -> tuple[list[Measure], list[str]]:
    chromium = shutil.which("chromium")
    if not chromium:
        raise SystemExit("Debian's chromium is not installed (`make test` installs it)")
    console_errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: console_errors.append(str(exc)))
            page.add_init_script(INSTRUMENTATION)
            try_the_demo(page, url)
            open_form(page, url)

            noop = measure_noop(page, samples)

            coupon_field = page.get_by_label("Coupon code")

            def type_code(code: str) -> None:
                # Replace the whole code: select it, then type the new one (or delete it).
                coupon_field.focus()
                page.keyboard.press("Control+A")
                if code:
                    page.keyboard.type(code)
                else:
                    page.keyboard.press("Backspace")

            coupon = measure_field(page, "coupon", "coupon_code", "set_coupon_code", COUPON_STEPS, type_code,
                                   samples)

            quantity_field = page.get_by_label("Number of licenses")

            def type_quantity(digit: str) -> None:
                quantity_field.focus()
                page.keyboard.press("Control+A")
                page.keyboard.type(digit)  # one keystroke replaces the selected number

            quantity = measure_field(page, "quantity", "quantity", "set_quantity", QUANTITY_STEPS, type_quantity,
                                     samples)
        finally:
            browser.close()
    return [coupon, quantity, noop], console_errors


# --- report --------------------------------------------------------------------------------------------


def report(measures: list[Measure], debounces: dict[str, int]) -> str:
    what = {
        "coupon": "Coupon: last keystroke → discounted total",
        "quantity": "Quantity: keystroke (one digit) → new total",
        "no-op": "No-op event: frame sent → reply received",
    }
    lines = [
        "| measure | n | p50 ms | p95 ms | target (p95) | met |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for m in measures:
        target = TARGETS_MS.get(m.name)
        p95 = percentile(m.total, 0.95)
        met = "—" if target is None else ("yes" if p95 <= target else "**no**")
        target_text = {"coupon": f"≤ {COUPON_DEBOUNCE_MS} + 100 = {target} ms", "quantity": f"≤ {target} ms"}.get(
            m.name, "— (for scale)")
        lines.append(f"| {what[m.name]} | {len(m.total)} | {percentile(m.total, 0.5):.0f} | {p95:.0f} | "
                     f"{target_text} | {met} |")
    lines += [
        "",
        "Where the time goes (p50 / p95 ms of each phase):",
        "",
        "| measure | keystroke → frame sent (debounce) | frame sent → reply | reply → total in DOM |",
        "| --- | ---: | ---: | ---: |",
    ]

    def phase(values: list[float]) -> str:
        return f"{percentile(values, 0.5):.0f} / {percentile(values, 0.95):.0f}" if values else "—"

    for m in measures:
        lines.append(f"| {m.name} | {phase(m.client)} | {phase(m.server)} | {phase(m.render)} |")
    if debounces:
        lines += ["", "Compiled debounceTimeout (.web/app_components/cf_portal/pages/add_license.jsx): "
                  + ", ".join(f"`#{k}` {v} ms" for k, v in sorted(debounces.items()))]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=30, help="measured samples per measure (default 30)")
    args = parser.parse_args()
    if args.samples < 1:
        parser.error("--samples must be at least 1")

    with tempfile.TemporaryDirectory(prefix="bench-checkout-") as tmp:
        started = time.monotonic()
        with running_app(Path(tmp)) as (url, app_dir, log_path, _):
            print(f"app up at {url} after {time.monotonic() - started:.0f} s; measuring…", file=sys.stderr)
            measures, console_errors = run_measures(url, args.samples)
            server_errors = [line for line in log_path.read_text(errors="replace").splitlines()
                             if any(marker in line for marker in SERVER_ERROR_MARKERS)]
            debounces = compiled_debounce_timeouts(app_dir)

    print(f"## Add License checkout latency (Chromium headless, SQLite, {os.cpu_count()} cores, "
          f"{args.samples} samples each after {WARMUP} warm-up)\n")
    print(report(measures, debounces))
    # Figures from a run with errors are not to be trusted: say so, and fail.
    if console_errors or server_errors:
        print("\nerrors during the run:", *console_errors[:5], *server_errors[:5], sep="\n  ", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
