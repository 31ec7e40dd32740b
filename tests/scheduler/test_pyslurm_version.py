"""``installed_slurm_version``: read through the one Slurm command runner, None without Slurm."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.backends.pyslurm_backend import check_available, installed_slurm_version


def _path_with(tmp_path: Path, script: str | None) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if script is not None:
        sbatch = bin_dir / "sbatch"
        sbatch.write_text("#!/bin/sh\n" + script)
        sbatch.chmod(0o755)
    return str(bin_dir)


def test_reads_major_minor_from_sbatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _path_with(tmp_path, "echo 'slurm 24.11.5'\n") + ":/usr/bin:/bin")
    assert installed_slurm_version() == "24.11"


def test_no_sbatch_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _path_with(tmp_path, None))
    assert installed_slurm_version() is None


def test_failing_sbatch_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _path_with(tmp_path, "echo broken >&2; exit 1\n") + ":/usr/bin:/bin")
    assert installed_slurm_version() is None


def test_check_available_says_why_without_pyslurm() -> None:
    why = check_available()
    assert why is not None and "pyslurm" in why
