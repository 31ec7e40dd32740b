"""The one machine-readable line every benchmark ends with.

``RESULT name=NAME value=V baseline=B ratio=V/B unit=U better=higher|lower``:
``value`` is ours, ``baseline`` the alternative measured in the same run,
``ratio`` always ``value / baseline``, ``better`` says which way is good.
"""

from __future__ import annotations

import re

LINE = re.compile(
    r"^RESULT name=(?P<name>[A-Za-z0-9_.-]+) value=(?P<value>\S+) baseline=(?P<baseline>\S+) "
    r"ratio=(?P<ratio>\S+) unit=(?P<unit>\S+) better=(?P<better>higher|lower)$"
)


def result(name: str, value: float, baseline: float, unit: str, better: str) -> str:
    """Print and return the RESULT line (``better``: ``higher`` or ``lower``)."""
    assert better in ("higher", "lower")
    ratio = value / baseline if baseline else float("nan")
    line = (
        f"RESULT name={name} value={value:.6g} baseline={baseline:.6g} ratio={ratio:.3f} "
        f"unit={unit} better={better}"
    )
    print(line, flush=True)
    return line
