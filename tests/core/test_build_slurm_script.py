"""scripts/build-slurm's command line (the build itself is run by hand: minutes of CPU)."""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build-slurm"


def test_help_and_bad_arguments() -> None:
    shown = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, check=False)
    assert shown.returncode == 0
    assert "trixie" in shown.stdout and "--install-deps" in shown.stdout
    bad = subprocess.run([str(SCRIPT), "--bogus"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "build-slurm: error: unknown argument --bogus"
