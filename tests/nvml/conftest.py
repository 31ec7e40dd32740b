"""Fixtures for the NVML adapter tests: a scripted NVML patched over the real pynvml."""

from __future__ import annotations

import pytest

from tests.nvml.fake_nvml import FakeNvml


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    """A healthy 4-GPU GB200 compute tray behind autospecs of the real pynvml functions."""
    return FakeNvml(gpu_count=4).install(monkeypatch)
