"""The multi-host rig's fixtures for the tests of this directory (``tests/rig/hosts.py``)."""

from tests.rig.hosts import healed_hosts, hosts_rig  # noqa: F401  (fixtures)
