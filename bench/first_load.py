"""First load of the portal beside a blank Reflex app, measured by Lighthouse (issue 14; prints a markdown table).

Builds a blank Reflex app (`reflex init --template blank`, the same Reflex as the portal, its packages from the
npm registry) and the portal's production build (from a copy of the checkout, as the end-to-end tests run it),
serves both with `reflex run --env prod`, and runs Lighthouse 12 (its default mobile profile: a mid-range phone
on a slow 4G link, simulated) with Debian's chromium on, in turn:

- the blank app's page (`/`);
- the portal's sign-in page (`/signin`);
- the portal's Add License page (`/licenses/new`), signed in as the demo owner (a session cookie).

Per page: the performance score and the LCP (median of `--runs`), the JavaScript transferred (bytes on the wire,
compressed) and its files, every request of the load, and the CSS transferred. Goals (issue 14): the portal's
pages at most the blank app's JavaScript bytes and requests; /signin scores ≥ 95 with LCP ≤ 2.5 s.
"load" is the 1-minute load average when the runs started: the machine may be shared, and Lighthouse's
simulated timings still move with the CPU.

Lighthouse comes from the npm registry (scripts/bootstrap.sh --test installs it in .cache/lighthouse).

    .venv/bin/python bench/first_load.py                 # 3 runs per page
    .venv/bin/python bench/first_load.py --quick         # one run per page (a test runs this)
    .venv/bin/python bench/first_load.py --portal-url http://127.0.0.1:3000 --portal-db sqlite:///data/x.db
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cf_portal import routes  # noqa: E402
from cf_portal.middleware import SESSION_COOKIE  # noqa: E402
from cf_portal.services.seed import DEMO_OWNER_EMAIL  # noqa: E402
from tests.support.app import PYTHON, ROOT, running_app, session_token, stop, wait_until_up  # noqa: E402
from tests.support.lighthouse import missing as lighthouse_missing  # noqa: E402
from tests.support.lighthouse import run_lighthouse  # noqa: E402
from tests.support.postgres import free_port  # noqa: E402


@dataclass
class Load:
    """One Lighthouse run of one page."""

    score: float
    lcp_s: float
    js_bytes: int
    js_files: int
    requests: int
    css_bytes: int


def figures(report: dict) -> Load:
    """What the table shows, from a Lighthouse JSON report."""
    items = [item for item in report["audits"]["network-requests"]["details"]["items"]
             if not item["url"].startswith("data:")]
    scripts = [item for item in items if item.get("resourceType") == "Script"]
    return Load(
        score=report["categories"]["performance"]["score"] * 100,
        lcp_s=report["audits"]["largest-contentful-paint"]["numericValue"] / 1000,
        js_bytes=sum(item.get("transferSize", 0) for item in scripts),
        js_files=len(scripts),
        requests=len(items),
        css_bytes=sum(item.get("transferSize", 0) for item in items if item.get("resourceType") == "Stylesheet"),
    )


def lighthouse(url: str, out: Path, headers: dict[str, str] | None = None) -> Load:
    return figures(run_lighthouse(url, out, categories=("performance",), headers=headers))


def app_env() -> dict[str, str]:
    return {**os.environ, "REFLEX_TELEMETRY_ENABLED": "false", "REFLEX_CHECK_LATEST_VERSION": "false",
            "NPM_CONFIG_REGISTRY": os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org/"),
            "PATH": f"{ROOT / '.tools' / 'bin'}:{Path(PYTHON).parent}:{os.environ.get('PATH', '')}"}


@contextmanager
def blank_app(tmp: Path) -> Iterator[str]:
    """A blank Reflex app (the `blank` template, as `reflex init` makes it), production build, on a free port."""
    app_dir = tmp / "blank"
    app_dir.mkdir()
    env = app_env()
    done = subprocess.run([PYTHON, "-m", "reflex", "init", "--template", "blank", "--no-agents"], cwd=app_dir,
                          env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"`reflex init` of the blank app failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    port = free_port()
    log_path = tmp / "blank.log"
    url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [PYTHON, "-m", "reflex", "run", "--env", "prod", "--frontend-port", str(port), "--backend-port", str(port)],
            cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until_up(proc, url, log_path)
            yield url
        finally:
            stop(proc)


@contextmanager
def portal_app(tmp: Path, url: str | None, database_url: str | None) -> Iterator[tuple[str, str]]:
    """The portal's production build (or one already running at `url` on `database_url`)."""
    if url:
        if not database_url:
            raise SystemExit("--portal-url needs --portal-db (the database to sign the demo owner in on)")
        yield url.rstrip("/"), database_url
        return
    with running_app(tmp) as (app_url, _app_dir, _log, env):
        yield app_url, env["REFLEX_DB_URL"]


def median(loads: list[Load]) -> Load:
    return Load(score=statistics.median(x.score for x in loads), lcp_s=statistics.median(x.lcp_s for x in loads),
                js_bytes=round(statistics.median(x.js_bytes for x in loads)),
                js_files=round(statistics.median(x.js_files for x in loads)),
                requests=round(statistics.median(x.requests for x in loads)),
                css_bytes=round(statistics.median(x.css_bytes for x in loads)))


def table(results: dict[str, list[Load]], load_average: float) -> str:
    blank = median(results["blank app /"])
    lines = ["| page | runs | performance | LCP s | JS KB (files) | requests | CSS KB | ≤ blank JS and requests | load |",
             "|---|---|---|---|---|---|---|---|---|"]
    for page, loads in results.items():
        m = median(loads)
        within = "—" if page.startswith("blank") else (
            "yes" if m.js_bytes <= blank.js_bytes and m.requests <= blank.requests else "no")
        lines.append(f"| {page} | {len(loads)} | {m.score:.0f} | {m.lcp_s:.2f} | {m.js_bytes / 1024:.0f} "
                     f"({m.js_files}) | {m.requests} | {m.css_bytes / 1024:.0f} | {within} | {load_average:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="Lighthouse runs per page (the table shows medians)")
    parser.add_argument("--quick", action="store_true", help="one run per page: that it all works")
    parser.add_argument("--portal-url", help="measure a portal already running there instead of building one")
    parser.add_argument("--portal-db", help="its database URL (with --portal-url)")
    args = parser.parse_args(argv)
    if reason := lighthouse_missing():
        raise SystemExit(reason)
    runs = 1 if args.quick else args.runs
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="first_load_")))
        blank_url = stack.enter_context(blank_app(tmp))
        portal_url, database_url = stack.enter_context(portal_app(tmp, args.portal_url, args.portal_db))
        cookie = {"Cookie": f"{SESSION_COOKIE}={session_token(database_url, DEMO_OWNER_EMAIL)}"}
        pages = {"blank app /": (blank_url + "/", None),
                 f"portal {routes.SIGN_IN}": (portal_url + routes.SIGN_IN, None),
                 f"portal {routes.ADD_LICENSE} (signed in)": (portal_url + routes.ADD_LICENSE, cookie)}
        results: dict[str, list[Load]] = {page: [] for page in pages}
        load_average = os.getloadavg()[0]
        for run in range(runs):  # the pages in turn, so each sees the machine in the same state
            for number, (page, (url, headers)) in enumerate(pages.items()):
                results[page].append(lighthouse(url, tmp / f"report-{run}-{number}.json", headers))
    print(table(results, load_average))
    return 0


if __name__ == "__main__":
    sys.exit(main())
