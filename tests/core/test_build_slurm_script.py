"""scripts/build-slurm's command line (the build itself runs in scripts/check's 24.11 tier, and
the slurm24 tier checks that a second call reuses it: tests/slurm24/test_rig24.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build-slurm"


def run(*args: str, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/nonexistent"}
    if cache is not None:
        env["DCOPS_SLURM_CACHE"] = str(cache)
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, check=False, env=env, timeout=60
    )


def test_help_and_bad_arguments() -> None:
    shown = run("--help")
    assert shown.returncode == 0
    assert "trixie" in shown.stdout and "--install-deps" in shown.stdout
    assert "VERSION" in shown.stdout and "--cached" in shown.stdout
    bad = run("--bogus")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "build-slurm: error: unknown option --bogus (see --help)"
    version = run("24.x")
    assert version.returncode == 2
    assert version.stderr.strip() == (
        "build-slurm: error: VERSION must look like 24.11 or 24.11.5, got '24.x'"
    )
    two = run("24.11", "25.05")
    assert two.returncode == 2 and "give one VERSION" in two.stderr


def test_cached_only_never_builds(tmp_path: Path) -> None:
    """--cached with nothing cached: one line, exit 3, and nothing downloaded or created."""
    missing = run("24.11", "--cached", "--print-prefix", cache=tmp_path / "cache")
    assert missing.returncode == 3
    assert missing.stdout == ""
    assert missing.stderr.strip().splitlines() == [
        f"build-slurm: error: no cached build of Slurm 24.11 in {tmp_path / 'cache'} "
        "(run scripts/build-slurm 24.11)"
    ]
    assert not (tmp_path / "cache").exists()
