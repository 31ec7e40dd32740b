"""The multi-host rig's fixtures for the tests of this directory (``tests/rig/hosts.py``)."""

from tests.rig.hosts import (  # noqa: F401  (fixtures)
    healed_hosts,
    hosts_rig,
    hosts_slurm,
    hosts_slurm_session,
)
