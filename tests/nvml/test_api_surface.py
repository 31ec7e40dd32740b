"""Every pynvml name the adapters use exists in the installed nvidia-ml-py.

Caught here without any mock: a typo, or a name a newer nvidia-ml-py dropped.
"""

from __future__ import annotations

import re
from pathlib import Path

import pynvml
import pytest

import dcops.nvml
from tests.nvml.fake_nvml import FakeNvml

SOURCES = sorted(Path(dcops.nvml.__file__).parent.glob("*.py"))
#: Older spellings tried only when the newer one is absent; a future pynvml may drop them.
FALLBACKS = {"nvmlDeviceGetCurrentClocksThrottleReasons", "nvmlSystemGetCudaDriverVersion"}


def _used_names() -> set[str]:
    names: set[str] = set()
    for path in SOURCES:
        text = path.read_text()
        names |= set(re.findall(r"\bpynvml\.([A-Za-z_]\w*)", text))
        names |= set(re.findall(r"""["'](nvml\w+)["']""", text))  # getattr(pynvml, "nvml...")
        # NVML error names the adapters sort errors by: is_missing/is_lost/has_code(..., "TIMEOUT")
        names |= set(re.findall(r'getattr\(pynvml, "(\w+)"', text))
        names |= {
            f"NVML_ERROR_{n}"
            for n in re.findall(r'"([A-Z][A-Z_]+)"', text)
            if not n.startswith("NVML_")
        }
    return names


def test_sources_were_found() -> None:
    assert {p.name for p in SOURCES} >= {"probe.py", "events.py", "_lib.py"}
    used = _used_names()
    assert {"nvmlDeviceGetPowerUsage", "NVML_ERROR_NOT_SUPPORTED", "NVML_ERROR_TIMEOUT"} <= used


@pytest.mark.parametrize("name", sorted(_used_names() - FALLBACKS))
def test_name_exists_in_installed_pynvml(name: str) -> None:
    assert hasattr(pynvml, name), f"pynvml has no {name}"


def test_every_nvml_function_used_is_autospecced_in_the_tests() -> None:
    functions = {
        n for n in _used_names() if n.startswith("nvml") and callable(getattr(pynvml, n, None))
    }
    functions -= {
        n for n in functions if n.startswith("nvmlEventType") or n.startswith("nvmlClocks")
    }
    assert functions <= set(FakeNvml().impls())
