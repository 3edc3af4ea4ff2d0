"""Lighthouse 12 (from the npm registry, in .cache/lighthouse: scripts/bootstrap.sh --test) run with the project's
Node against Debian's chromium, headless and off the network: for the first-load benchmark (bench/first_load.py)
and the accessibility tests (tests/e2e/test_accessibility.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.support.app import ROOT

LIGHTHOUSE = ROOT / ".cache" / "lighthouse" / "node_modules" / "lighthouse" / "cli" / "index.js"
NODE = ROOT / ".tools" / "bin" / "node"
CHROME_FLAGS = ("--headless=new --no-sandbox --disable-gpu --disable-background-networking "
                "--disable-component-update --disable-sync --no-first-run --disable-quic")
ATTEMPTS = 3


def missing() -> str | None:
    """Why Lighthouse cannot run here, or None."""
    if not LIGHTHOUSE.is_file():
        return f"Lighthouse is missing ({LIGHTHOUSE.relative_to(ROOT)}): run scripts/bootstrap.sh --test"
    return None


def run_lighthouse(url: str, out: Path, *, categories: Sequence[str], headers: dict[str, str] | None = None,
                   extra_args: Sequence[str] = ()) -> dict:
    """Lighthouse's JSON report of `url` (only `categories`), written to `out`; `headers` go with every request
    (a session cookie). Raises RuntimeError when Lighthouse fails or cannot load the page."""
    command = [str(NODE), str(LIGHTHOUSE), url, "--quiet", "--output=json", f"--output-path={out}",
               f"--only-categories={','.join(categories)}", f"--chrome-flags={CHROME_FLAGS}", *extra_args]
    if headers:
        command.append(f"--extra-headers={json.dumps(headers)}")
    env = {**os.environ, "CHROME_PATH": shutil.which("chromium") or "chromium"}
    for attempt in range(1, ATTEMPTS + 1):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode == 0 and out.is_file():
            break
        # Lighthouse's own advice for a trace it failed to record on a busy machine (NO_NAVSTART, ...): run it
        # again. Anything else fails every attempt the same way.
        if "Please run Lighthouse again" not in done.stderr or attempt == ATTEMPTS:
            raise RuntimeError(f"lighthouse failed on {url}:\n{done.stderr[-3000:]}")
    report = json.loads(out.read_text())
    if report.get("runtimeError"):
        raise RuntimeError(f"lighthouse could not load {url}: {report['runtimeError']}")
    return report
