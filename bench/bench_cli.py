"""Benchmark: CLI start-up time, side by side with a bare interpreter start in the same run.

    python bench/bench_cli.py [--runs N]

Prints the median wall time of each command over N runs and its ratio to
``python -c pass`` (the floor any Python CLI pays) and to ``python -c "import pandas"``
(what importing one heavy dependency at start-up would cost). Target: ``dcops --help``
and ``dcops --version`` under 0.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _result import result


def timed(argv: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="3 runs")
    args = parser.parse_args()
    if args.quick:
        args.runs = 3
    py = sys.executable
    cases = {
        "python -c pass (baseline)": [py, "-c", "pass"],
        "python -c 'import pandas'": [py, "-c", "import pandas"],
        "dcops --version": [py, "-m", "dcops", "--version"],
        "dcops --help": [py, "-m", "dcops", "--help"],
        "dcops inventory show --json": [py, "-m", "dcops", "inventory", "show", "--json"],
    }
    results = {name: timed(argv, args.runs) for name, argv in cases.items()}
    base = results["python -c pass (baseline)"]
    print(f"CLI start-up, median of {args.runs} runs")
    print(f"{'command':34} {'seconds':>9} {'x baseline':>11}")
    for name, secs in results.items():
        print(f"{name:34} {secs:9.3f} {secs / base:11.2f}")
    worst = max(results["dcops --version"], results["dcops --help"])
    verdict = "met" if worst < 0.5 else "MISSED"
    print(f"target --help/--version < 0.500 s: {verdict} ({worst:.3f} s)")
    for name in ("dcops --version", "dcops --help", "dcops inventory show --json"):
        key = "cli_" + "_".join(w.strip("-") for w in name.split()[1:])
        result(key, results[name], base, "s", "lower")


if __name__ == "__main__":
    main()
