"""``scripts/setup`` says what step it is in and how long each took (a fresh one is ~100 s).

The script runs as written in a copy of the repository layout whose ``.venv`` holds
stand-ins for python and dcops that record their arguments (no network, no pip).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_setup_prints_each_step_and_its_time(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy2(REPO / "scripts" / "setup", tmp_path / "scripts" / "setup")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    calls = tmp_path / "calls"
    (bin_dir / "python").write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    (bin_dir / "dcops").write_text("#!/bin/sh\necho 'dcops 9.9'\n")
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    done = subprocess.run(
        [str(tmp_path / "scripts" / "setup")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "setup [1/3] .venv exists: kept"
    assert lines[1] == "setup [2/3] upgrading pip in .venv ..."
    assert re.fullmatch(r"setup +done in \d+ s", lines[2])
    assert lines[3].startswith("setup [3/3] installing dcops with its dev and CPU-torch extras")
    assert re.fullmatch(r"setup +done in \d+ s", lines[4])
    assert re.fullmatch(r"dcops installed in \.venv \(dcops 9\.9\) in \d+ s", lines[5])
    assert "-e .[dev,torch] -c scripts/constraints.txt" in calls.read_text()
