"""What dcops writes under its data directory is readable by its owner only (issue 11 §4).

Real processes under a permissive umask (022, Debian's default): a burn-in,
two sweeps and a telemetry collection on the simulator, then every directory
and file under the data directory is checked. A lock file or a Parquet folder
created 0755/0644 by any code path fails this test.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "scenarios" / "demo.yaml"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dcops", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        preexec_fn=lambda: os.umask(0o022),
    )


def test_data_dir_and_everything_in_it_is_private(tmp_path: Path) -> None:
    data = Path(os.environ["XDG_DATA_HOME"]) / "dcops"
    assert not data.exists()
    runs = [
        ("burnin", "run", "--sim", str(DEMO), "--apply"),
        # the demo has a hung and an unreachable tray: short timeouts keep this test quick
        ("sweep", "--sim", str(DEMO), "--apply", "--timeout", "2", "--deadline", "5"),
        ("sweep", "--sim", str(DEMO), "--apply", "--timeout", "2", "--deadline", "5"),
        ("telemetry", "collect", "--sim", str(DEMO), "--nodes", "sim-r01-t[01-04]", "--once"),
    ]
    for args in runs:
        proc = _run(*args)
        # burn-in and sweep exit 1 on the demo's faulty trays; never a crash or usage error
        assert proc.returncode in (0, 1), (args, proc.stderr)
    seen = [data, *data.rglob("*")]
    assert any(p.name.endswith(".lock") for p in seen), "the runs took no lock?"
    assert any(p.name == "state.db" for p in seen)
    assert any(p.suffix == ".parquet" for p in seen), "telemetry wrote no samples?"
    loose = [f"{stat.S_IMODE(p.lstat().st_mode):o} {p}" for p in seen if p.lstat().st_mode & 0o077]
    assert loose == []
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
