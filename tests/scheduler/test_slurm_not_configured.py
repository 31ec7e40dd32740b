"""`jobs submit` on a host where Slurm is not configured names what to set, in one line."""

from __future__ import annotations

import pytest

from dcops.errors import SchedulerError
from scheduler.backends.slurm_cli import site_from_sbatch_version

UNCONFIGURED = (
    "sbatch: error: resolve_ctls_from_dns_srv: res_nsearch error: Unknown host\n"
    "sbatch: error: fetch_config: DNS SRV lookup failed\n"
    "sbatch: fatal: Could not establish a configuration source\n"
)  # sbatch 24.11 without a slurm.conf, as captured on a Debian host


def test_no_version_names_slurm_conf_and_the_config_key() -> None:
    with pytest.raises(SchedulerError) as caught:
        site_from_sbatch_version(UNCONFIGURED)
    message = str(caught.value)
    assert "\n" not in message
    assert "SLURM_CONF" in message and "[slurm] conf" in message
    assert "res_nsearch error: Unknown host" in message  # what sbatch said, first line


def test_a_version_is_read() -> None:
    site = site_from_sbatch_version("slurm 24.11.1\n")
    assert site == site_from_sbatch_version("slurm-wlm 24.11.1")
