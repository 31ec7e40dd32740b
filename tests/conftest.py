"""Shared pytest setup: paths to the repository and its captured test data, isolation of state."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Test rigs (real local services), each a plugin giving session fixtures.
pytest_plugins = ["tests.rig.slurm", "tests.rig.ssh"]

REPO = Path(__file__).resolve().parents[1]
#: Captured real outputs and public data the tests read (origins in tests/data/SOURCES.md).
FIXTURES = REPO / "tests" / "data"


def data_file(relpath: str) -> Path:
    """A captured real output under tests/data; a missing file is a failure, never a skip."""
    path = FIXTURES / relpath
    if not path.exists():
        raise FileNotFoundError(
            f"tests/data/{relpath} is missing: the test data ships with the repo"
        )
    return path


@pytest.fixture(autouse=True)
def _isolated_dcops_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own data/config dirs; no DCOPS_* leaks in from the caller."""
    for key in list(os.environ):
        if key.startswith("DCOPS_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    yield
