"""Per-SKU burn-in threshold profiles (versioned YAML data) and their loader.

``load_thresholds("gb200-nvl72", override="site-thresholds.yaml")`` returns a
:class:`~burnin.profiles.model.Thresholds`; see :mod:`burnin.profiles.loader`
for the override format and precedence.
"""

from burnin.profiles.loader import PROFILE_VERSION, known_profiles, load_thresholds
from burnin.profiles.model import (
    SCOPES,
    BusbwFloor,
    CollectiveThresholds,
    GemmThresholds,
    HealthThresholds,
    LocalizeThresholds,
    PeerRule,
    Thresholds,
)

__all__ = [
    "PROFILE_VERSION",
    "SCOPES",
    "BusbwFloor",
    "CollectiveThresholds",
    "GemmThresholds",
    "HealthThresholds",
    "LocalizeThresholds",
    "PeerRule",
    "Thresholds",
    "known_profiles",
    "load_thresholds",
]
