"""Directive injection against the real Slurm rig: the bridge's options win, by construction.

Each script below carries an injection *past* the admission scan (the job is built
without it, as if the scan had been fooled). Slurm must still run the job with the
bridge's account, QOS, partition, GPUs, nodes and output path: ``scontrol show job``
says so. On the old renderer these directives sat in sbatch's directive zone and
overrode the header (or got the job refused for the foreign account).
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from scheduler.bridge import Bridge
from scheduler.guards import normalize_abs
from scheduler.spec import spec_from_dict
from scheduler.tenants.contract import AdmittedJob, TenantContract, admit
from tests.integration.test_bridge_slurm import bridge  # noqa: F401 - the fixture
from tests.rig.slurm import SlurmCluster

pytestmark = pytest.mark.slurm

EVIL = (
    "--account=tenant-b --qos=high --partition=nosuch --gres=gpu:3 --nodes=2 "
    "--output=/tmp/dcops-injected-%j.out --job-name=evil"
)
INJECTIONS = {
    "slurm-prefix": f"#SLURM {EVIL}\nsleep 30\n",
    "continued-comment": f"# a note \\\n#SBATCH {EVIL}\nsleep 30\n",
    "plain-sbatch": f"# nothing here\n#SBATCH {EVIL}\nsleep 30\n",
}


def _job(tenant: TenantContract, name: str, script: str) -> AdmittedJob:
    doc = {
        "name": name,
        "resources": {"nodes": 1, "gpus_per_node": 1, "time_limit": "5m", "memory": "1Gi"},
        "script": "true\n",
    }
    job = admit(spec_from_dict(doc), tenant, 0, resolve=normalize_abs)
    hostile = dataclasses.replace(job.spec, script=script)  # past the scan
    return dataclasses.replace(job, spec=hostile)


def _show(cluster: SlurmCluster, job_id: str) -> dict[str, str]:
    text = cluster.run(["scontrol", "show", "job", "-o", job_id]).stdout
    return dict(re.findall(r"(\w+(?::\w+)?)=(\S*)", text))


@pytest.mark.parametrize("backend_name", ["slurm-cli", "slurm-rest"])
@pytest.mark.parametrize("kind", sorted(INJECTIONS))
def test_injected_directives_do_not_change_the_job(
    bridge: tuple[Bridge, TenantContract, TenantContract],  # noqa: F811
    slurm_cluster: SlurmCluster,
    backend_name: str,
    kind: str,
) -> None:
    service, a, _ = bridge
    job = _job(a, f"inj-{kind}", INJECTIONS[kind])
    submitted = service.backend(backend_name).submit(job)
    try:
        shown = _show(slurm_cluster, submitted.backend_job_id)
        assert shown["Account"] == "tenant-a"
        assert shown["QOS"] == "normal"
        assert shown["Partition"] == "batch"
        assert shown["NumNodes"].split("-")[0] == "1"
        tres = " ".join(shown.get(k, "") for k in ("TRES", "ReqTRES", "TresPerNode"))
        assert "gres/gpu=1" in tres or "gres:gpu:1" in tres, tres
        assert "gpu=3" not in tres and "gpu:3" not in tres
        assert shown["JobName"] == f"inj-{kind}"
        assert shown["StdOut"].startswith(job.log_dir + "/")
        assert "dcops-injected" not in shown["StdOut"]
    finally:
        slurm_cluster.run(["scancel", submitted.backend_job_id], check=False)
