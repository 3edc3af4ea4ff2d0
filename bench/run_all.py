"""Runs every benchmark in bench/ in turn (what `make bench` does) and prints their tables.

By default each runs at a small size, to see that they all work and what the figures look like in a few minutes;
`--full` runs them at the sizes docs/benchmarks.md reports. A benchmark that fails does not stop the others; the
run then exits 1 and names it. `DB=postgres` is passed on to those that support it.

    .venv/bin/python bench/run_all.py                     # small sizes, every benchmark
    .venv/bin/python bench/run_all.py --full              # the sizes of docs/benchmarks.md (takes long)
    .venv/bin/python bench/run_all.py --only employees_service checkout_latency
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

# Each benchmark with its arguments: (small, full). Full is the benchmark's own default.
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "employees_service": (["--sizes", "1000", "--samples", "10"], []),
    "import_event_loop": (["--rows", "2000", "--no-before"], []),
    "checkout_latency": (["--samples", "5"], []),
    "employees_browser": (["--sizes", "1000", "--samples", "5"], []),
    "bill_due": (["--licenses", "1000", "--accounts", "10"], []),
    "entitlements_api": (["--sizes", "10000"], []),
    "first_load": (["--quick"], []),
    "ws_load": (["--tabs", "25", "--seconds", "20"], []),
}

# Modules in bench/ that are not benchmarks.
HELPERS = {"__init__", "harness", "run_all"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the sizes docs/benchmarks.md reports")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these")
    args = parser.parse_args(argv)
    failed = []
    for name in args.only or BENCHMARKS:
        small, full = BENCHMARKS[name]
        command = [sys.executable, str(BENCH / f"{name}.py"), *(full if args.full else small)]
        print(f"\n==> bench/{name}.py {' '.join(command[2:])}".rstrip(), flush=True)
        started = time.monotonic()
        code = subprocess.run(command, cwd=BENCH.parent).returncode
        print(f"(bench/{name}.py: exit {code} after {time.monotonic() - started:.0f} s)", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"benchmarks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
