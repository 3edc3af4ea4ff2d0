"""`make bench` runs bench/run_all.py, which must know every benchmark in bench/."""

from __future__ import annotations

from bench import run_all


def test_run_all_runs_every_benchmark_in_the_folder() -> None:
    found = {path.stem for path in run_all.BENCH.glob("*.py")} - run_all.HELPERS
    assert set(run_all.BENCHMARKS) == found
    assert all((run_all.BENCH / f"{name}.py").is_file() for name in run_all.BENCHMARKS)
