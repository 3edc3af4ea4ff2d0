"""`make bench` runs bench/run_all.py, which must know every benchmark in bench/."""

from __future__ import annotations

import subprocess
import sys

from bench import run_all


def test_run_all_runs_every_benchmark_in_the_folder() -> None:
    found = {path.stem for path in run_all.BENCH.glob("*.py")} - run_all.HELPERS
    assert set(run_all.BENCHMARKS) == found
    assert all((run_all.BENCH / f"{name}.py").is_file() for name in run_all.BENCHMARKS)


def test_the_entitlements_api_benchmark_runs_in_its_quick_mode() -> None:
    """Its server, dataset and load generator still work together (seconds; the figures are not judged here)."""
    done = subprocess.run([sys.executable, str(run_all.BENCH / "entitlements_api.py"), "--quick"],
                          cwd=run_all.BENCH.parent, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 1,000 |")]
    assert len(rows) == 1, done.stdout
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert len(cells) == 13 and cells[-1] in {"yes", "no"}, cells


def test_the_many_tabs_benchmark_runs_in_its_quick_mode() -> None:
    """A few tabs sign in over HTTP, then price, assign and free seats over the app's websocket, and the seats
    counted in the database afterwards agree with what the tabs were told: the SQLite pass runs the one-worker
    SQLite setup, the PostgreSQL pass the two-worker PostgreSQL + Redis one (the figures are not judged here)."""
    from tests.conftest import DB_KIND

    done = subprocess.run([sys.executable, str(run_all.BENCH / "ws_load.py"), "--quick", "--setup", DB_KIND],
                          cwd=run_all.BENCH.parent, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 4 |")]
    assert len(rows) == 1, done.stdout
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert len(cells) == 15, cells
    assert cells[6] == "0" and cells[9] == "ok", cells  # no errors; the counts agree
    assigns, _ = (int(n) for n in cells[8].split(" / "))
    assert assigns >= 1, cells  # the seats were really exercised
