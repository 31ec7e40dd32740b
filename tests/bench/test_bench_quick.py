"""Every benchmark runs in its quick mode and ends with parseable RESULT lines.

Not a timed test: only that each script runs end to end (its baselines too, and
its own assertions, e.g. equal kWh in bench_energy) and reports machine-readably.
bench_bridge needs the shared Slurm rig and is left to a manual run; the
localization/detection benches are another owner's.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from _result import LINE  # noqa: E402

QUICK = [
    pytest.param("bench_energy.py", id="energy"),
    pytest.param("bench_sim.py", id="sim"),
    pytest.param("bench_cli.py", id="cli"),
    pytest.param("bench_runbooks.py", id="runbooks"),
    pytest.param("bench_capacity.py", id="capacity"),
    pytest.param("bench_api.py", id="api", marks=pytest.mark.slow),
    pytest.param("bench_api_isolation.py", id="api_isolation", marks=pytest.mark.slow),
    pytest.param("bench_sweep.py", id="sweep", marks=[pytest.mark.ssh, pytest.mark.slow]),
    pytest.param("bench_engines.py", id="engines", marks=[pytest.mark.torch, pytest.mark.slow]),
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("script", QUICK)
def test_bench_quick_mode_ends_with_result_lines(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    tail = []
    for line in reversed(lines):
        if not line.startswith("RESULT "):
            break
        tail.append(line)
    assert tail, f"{script} does not end with RESULT lines:\n{done.stdout[-1500:]}"
    for line in tail:
        m = LINE.match(line)
        assert m, line
        value, baseline, ratio = (float(m[k]) for k in ("value", "baseline", "ratio"))
        assert value > 0 and baseline > 0, line
        assert math.isclose(ratio, value / baseline, rel_tol=2e-3, abs_tol=2e-3), line
