"""Prometheus alerting rules and a Grafana dashboard for dcops' metrics, as package data.

``rules.yaml`` (load with ``rule_files``) and ``dashboard.json`` (import into
Grafana); see ``docs/alerts.md``. :func:`asset` gives an installed copy's path.
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable

RULES = "rules.yaml"
DASHBOARD = "dashboard.json"


def asset(name: str) -> Traversable:
    """``rules.yaml`` or ``dashboard.json`` as installed with dcops."""
    if name not in (RULES, DASHBOARD):
        raise KeyError(name)
    return resources.files(__name__).joinpath(name)
