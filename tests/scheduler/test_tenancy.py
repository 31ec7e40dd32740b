"""Isolation rules of admit(): each one attacked, each attack refused."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from dcops.errors import InputError
from scheduler.guards import check_script, lexical_resolver
from scheduler.spec import JobSpec, Resources, spec_from_dict
from scheduler.tenants.contract import TenantContract, admit, load_tenant_file, tenant_from_dict
from tests.scheduler.conftest import make_tenant, spec_doc


def _admit(tenant: TenantContract, gpus_in_use: int = 0, **over: Any) -> Any:
    return admit(spec_from_dict(spec_doc(**over)), tenant, gpus_in_use)


def test_good_spec_is_admitted_with_tenant_identity(tenant: TenantContract, root: Path) -> None:
    job = _admit(tenant, outputs=["ckpt", str(root / "logs")])
    assert job.tenant is tenant
    assert job.workdir == str(root)
    assert job.outputs == (str(root / "ckpt"), str(root / "logs"))
    assert job.gpus_requested == 4


@pytest.mark.parametrize(
    "path", ["../other", "/etc/passwd", "ckpt/../../other", "/", "//etc", "ckpt/../../../../etc"]
)
def test_outputs_cannot_leave_the_roots(tenant: TenantContract, path: str) -> None:
    with pytest.raises(InputError, match=r"outputs\[0\]: .* outside the tenant's output roots"):
        _admit(tenant, outputs=[path])


def test_sibling_prefix_is_not_inside(tenant: TenantContract, root: Path) -> None:
    with pytest.raises(InputError, match="outside"):
        _admit(tenant, outputs=[str(root) + "-evil/x"])


def test_dotdot_that_stays_inside_is_normalized(tenant: TenantContract, root: Path) -> None:
    job = _admit(tenant, outputs=["a/../b/./c"])
    assert job.outputs == (str(root / "b" / "c"),)


def test_workdir_confined(tenant: TenantContract) -> None:
    with pytest.raises(InputError, match="workdir"):
        _admit(tenant, workdir="/home/other")


def test_symlink_out_of_the_root_is_refused(
    tenant: TenantContract, root: Path, tmp_path: Path
) -> None:
    other = tmp_path / "tenants" / "victim"
    other.mkdir(parents=True)
    os.symlink(other, root / "escape")
    with pytest.raises(InputError, match=r"resolves .*symlink"):
        _admit(tenant, outputs=["escape/stolen"])
    with pytest.raises(InputError, match="workdir"):
        _admit(tenant, workdir=str(root / "escape"))
    # the same path checked lexically only (remote filesystem) passes: the resolver decides
    job = admit(spec_from_dict(spec_doc(outputs=["escape/x"])), tenant, 0, resolve=lexical_resolver)
    assert job.outputs == (str(root / "escape" / "x"),)


def test_symlink_inside_the_root_is_fine(tenant: TenantContract, root: Path) -> None:
    (root / "real").mkdir()
    os.symlink(root / "real", root / "alias")
    job = _admit(tenant, outputs=["alias/out"])
    assert job.outputs == (str(root / "real" / "out"),)


def test_root_reached_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "link")
    tenant = make_tenant(tmp_path / "link")
    job = admit(spec_from_dict(spec_doc(outputs=["o"])), tenant, 0)
    assert job.outputs == (str(real / "o"),)


@pytest.mark.parametrize("path", ["out dir", "out;rm", "$(id)", "a`b`", "x%j", "é", "a\nb", "a,b"])
def test_path_characters(tenant: TenantContract, path: str) -> None:
    with pytest.raises(InputError, match=r"outputs\[0\]"):
        _admit(tenant, outputs=[path])


def test_quota(tenant: TenantContract) -> None:
    _admit(tenant, gpus_in_use=140)  # 140 + 4 == 144
    with pytest.raises(InputError, match="exceeds tenant 'acme' quota of 144 GPUs"):
        _admit(tenant, gpus_in_use=141)
    with pytest.raises(InputError, match="gpus_in_use"):
        _admit(tenant, gpus_in_use=-1)


def test_absurd_sizes(tenant: TenantContract) -> None:
    with pytest.raises(InputError, match=r"resources\.nodes: 100 is outside 1\.\.72"):
        _admit(tenant, resources={"nodes": 100, "time_limit": "1h"})
    with pytest.raises(InputError, match="time_limit"):
        _admit(tenant, resources={"time_limit": "30d"})
    with pytest.raises(InputError, match="CPUs per node"):
        _admit(tenant, resources={"time_limit": "1h", "tasks_per_node": 64, "cpus_per_task": 64})
    with pytest.raises(InputError, match="NVLink domain of 18"):
        _admit(
            tenant,
            resources={"nodes": 36, "gpus_per_node": 4, "time_limit": "1h"},
            topology={"same_nvlink_domain": True},
        )
    with pytest.raises(InputError, match=r"topology\.segment: 36 is outside"):
        _admit(
            tenant,
            resources={"nodes": 72, "gpus_per_node": 1, "time_limit": "1h"},
            topology={"segment": 36},
        )


def test_directly_built_spec_is_checked_too(tenant: TenantContract) -> None:
    bad = JobSpec(name="Évil\x1b[31m", resources=Resources(time_limit_s=60), command=("true",))
    with pytest.raises(InputError, match="control or non-ASCII"):
        admit(bad, tenant, 0)
    both = JobSpec(name="ok", resources=Resources(time_limit_s=60))
    with pytest.raises(InputError, match="exactly one"):
        admit(both, tenant, 0)


@pytest.mark.parametrize(
    "key",
    [
        "SLURM_ACCOUNT",
        "SBATCH_ACCOUNT",
        "SBATCH_PARTITION",
        "SALLOC_QOS",
        "SLURM_RESERVATION",
        "SRUN_EXPORT_ENV",
        "NVIDIA_VISIBLE_DEVICES",
        "CUDA_VISIBLE_DEVICES",
        "DCOPS_TENANT",
    ],
)
def test_reserved_env(tenant: TenantContract, key: str) -> None:
    with pytest.raises(InputError, match=f"env.{key}: reserved"):
        _admit(tenant, env={key: "other"})


def test_priority_class_and_backend(tenant: TenantContract, root: Path) -> None:
    with pytest.raises(InputError, match="in-house"):
        _admit(tenant, priority_class="in-house")
    inhouse = make_tenant(root, in_house=True)
    assert admit(spec_from_dict(spec_doc(priority_class="in-house")), inhouse, 0)
    slurm_only = make_tenant(root, allowed_backends=frozenset({"slurm"}))
    with pytest.raises(InputError, match="'kubernetes' is not allowed"):
        admit(spec_from_dict(spec_doc()), slurm_only, 0, backend="kubernetes")


@pytest.mark.parametrize(
    "argv0",
    ["--account=other", "-Aother", "", "   "],
)
def test_argv0_cannot_be_a_launcher_option(tenant: TenantContract, argv0: str) -> None:
    with pytest.raises(InputError, match=r"command\[0\]"):
        _admit(tenant, command=[argv0, "x"])


BAD_SCRIPTS = [
    "#SBATCH --account=other\necho hi",
    "  #  sbatch -p debug\n",
    "#!/bin/bash\n#SBATCH --qos=high\n",
    "srun -A other python x.py",
    "srun --account other python x.py",
    "srun -N 2 --partition=debug hostname",
    "srun --nodes 2 -q high hostname",
    "srun --uid=0 id",
    "/usr/bin/srun --reservation=maint hostname",
    'cmd=1; s""run -A other x',
    "srun \\\n  --account=other \\\n  python x.py",
    "sbatch -A other next.sh",
    "salloc --qos=high",
    "srun -M othercluster hostname",
    "export SBATCH_ACCOUNT=other",
    "SLURM_ACCOUNT=other srun hostname",
    "declare -x SALLOC_PARTITION=debug",
    "export SLURM_QOS+=x",
    "scontrol update jobid=$SLURM_JOB_ID account=other",
    "sacctmgr add user me account=other",
]


@pytest.mark.parametrize("script", BAD_SCRIPTS)
def test_hostile_scripts_refused(tenant: TenantContract, script: str) -> None:
    doc = spec_doc(script=script)
    del doc["command"]
    with pytest.raises(InputError, match=r"script:\d+"):
        admit(spec_from_dict(doc), tenant, 0)


GOOD_SCRIPTS = [
    "srun python train.py -p 3 -q",
    'nodes=$(scontrol show hostnames "$SLURM_JOB_NODELIST")',
    'if [ "$SLURM_PROCID" == 0 ]; then echo leader; fi',
    "mkdir -p out && grep -q ok log",
    "srun -l --exclusive python -A x.py",
    "echo ${SLURM_NTASKS}",
]


@pytest.mark.parametrize("script", GOOD_SCRIPTS)
def test_ordinary_scripts_pass(script: str) -> None:
    check_script(script)


def test_tenant_contract_validation(root: Path) -> None:
    with pytest.raises(InputError, match="never runs as root"):
        make_tenant(root, unix_users=("root",))
    with pytest.raises(InputError, match="must be absolute and not '/'"):
        make_tenant(root, output_roots=("/",))
    with pytest.raises(InputError, match="slurm_account"):
        make_tenant(root, slurm_account="acme,other")
    with pytest.raises(InputError, match="k8s_namespace"):
        make_tenant(root, k8s_namespace="Kube System")
    with pytest.raises(InputError, match="allowed_backends"):
        make_tenant(root, allowed_backends=frozenset({"lsf"}))
    with pytest.raises(InputError, match="k8s_run_as_uid"):
        make_tenant(root, k8s_run_as_uid=0)


def test_tenant_file(tmp_path: Path, root: Path) -> None:
    path = tmp_path / "tenant.yaml"
    path.write_text(
        "name: acme\nslurm_account: acme-acct\nslurm_qos: acme-qos\nslurm_partitions: gb200\n"
        "unix_users: [acme01]\nk8s_namespace: tenant-acme\nk8s_local_queue: acme-lq\n"
        f"gpu_quota: 72\noutput_roots: [{root}]\nallowed_backends: [slurm]\n"
    )
    tenant = load_tenant_file(path)
    assert tenant.slurm_partitions == ("gb200",)
    assert tenant.allowed_backends == frozenset({"slurm"})
    assert tenant.gpu_quota == 72
    with pytest.raises(InputError, match="unknown tenant key"):
        tenant_from_dict({"name": "acme", "admin": True})
    with pytest.raises(InputError, match="missing tenant key"):
        tenant_from_dict({"name": "acme"})
    with pytest.raises(InputError, match="gpu_quota: expected an integer"):
        tenant_from_dict({"gpu_quota": "lots"})
