"""Inventory: the site model (racks, trays, GPUs, NVLink domains) and its loaders."""

from dcops.inventory.loader import load_site, simulated_site, site_schema
from dcops.inventory.local import local_site
from dcops.inventory.model import CapacitySettings, NodeInfo, Rack, Site

__all__ = [
    "CapacitySettings",
    "NodeInfo",
    "Rack",
    "Site",
    "load_site",
    "local_site",
    "simulated_site",
    "site_schema",
]
