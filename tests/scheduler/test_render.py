"""Renderings checked structurally: #SBATCH lines parsed back, manifests walked."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from dcops.errors import InputError
from scheduler.kubernetes.render import (
    COMPUTE_DOMAIN_API,
    QUEUE_LABEL,
    REQUIRED_TOPOLOGY,
    SLICE_REQUIRED_TOPOLOGY,
    SLICE_SIZE,
    find_pod_escapes,
    render_kubernetes,
)
from scheduler.slurm.render import SlurmSite, parse_sbatch_options, render_slurm
from scheduler.spec import spec_from_dict
from scheduler.tenants.contract import AdmittedJob, TenantContract, admit
from tests.scheduler.conftest import make_tenant, spec_doc

PYXIS = SlurmSite(pyxis=True)


def _job(tenant: TenantContract, **over: Any) -> AdmittedJob:
    doc = spec_doc(**over)
    if "script" in over:
        del doc["command"]
    return admit(spec_from_dict(doc), tenant, 0)


def _pods(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for m in manifests:
        if m["kind"] == "Job":
            out.append(m["spec"]["template"])
        elif m["kind"] == "JobSet":
            out += [r["template"]["spec"]["template"] for r in m["spec"]["replicatedJobs"]]
    return out


def test_slurm_script_options(tenant: TenantContract, root: Path) -> None:
    job = _job(tenant, env={"NCCL_DEBUG": "INFO", "NOTE": "a b'c$(id)"})
    sub = render_slurm(job, PYXIS)
    opts = dict(parse_sbatch_options(sub.script))
    assert opts["account"] == "acme-acct"
    assert opts["qos"] == "acme-qos"
    assert opts["partition"] == "gb200"
    assert opts["nodes"] == "1"
    assert opts["gres"] == "gpu:4"
    assert opts["time"] == "0-02:00:00"
    assert opts["mem"] == "65536M"
    assert opts["job-name"] == "train-llm"
    assert opts["chdir"] == str(root)
    assert opts["output"] == f"{root}/train-llm-%j.out"
    assert opts["error"] == f"{root}/train-llm-%j.err"
    assert "no-requeue" in opts
    assert list(parse_sbatch_options(sub.script)) == list(sub.options)
    assert sub.user == "acme01"
    assert sub.env == {"NCCL_DEBUG": "INFO", "NOTE": "a b'c$(id)"}
    # every value reaching the shell body is quoted: the shell reads back the same words
    body = [ln for ln in sub.script.splitlines() if ln.startswith(("export ", "exec "))]
    exports = {
        shlex.split(ln)[1].split("=", 1)[0]: shlex.split(ln)[1].split("=", 1)[1]
        for ln in body
        if ln.startswith("export ")
    }
    assert exports["NOTE"] == "a b'c$(id)"
    exec_line = shlex.split(body[-1])
    assert exec_line[:2] == ["exec", "srun"]
    assert "--container-image=nvcr.io/nvidia/pytorch:25.01-py3" in exec_line
    assert exec_line[-4:] == ["python", "train.py", "--lr", "3e-4"]


def test_slurm_segment_is_a_capability(tenant: TenantContract) -> None:
    job = _job(
        tenant,
        resources={"nodes": 8, "gpus_per_node": 4, "time_limit": "1h"},
        topology={"segment": 4},
        retries={"max_restarts": 2},
    )
    opts = dict(render_slurm(job, SlurmSite.for_version(24, 11, pyxis=True)).options)
    assert opts["segment"] == "4"
    assert "requeue" in opts
    with pytest.raises(InputError, match=r"no --segment .*24\.05"):
        render_slurm(job, SlurmSite.for_version(22, 5, pyxis=True))
    same = _job(
        tenant,
        resources={"nodes": 18, "gpus_per_node": 4, "time_limit": "1h"},
        topology={"same_nvlink_domain": True, "rack": "r07"},
    )
    opts = dict(render_slurm(same, PYXIS).options)
    assert opts["segment"] == "18" and opts["constraint"] == "r07"
    with pytest.raises(InputError, match="same_nvlink_domain"):
        render_slurm(same, SlurmSite.parse_version("22.05.8", pyxis=True))


def test_slurm_without_pyxis_refuses_images(tenant: TenantContract) -> None:
    with pytest.raises(InputError, match="pyxis"):
        render_slurm(_job(tenant), SlurmSite(pyxis=False))


def test_slurm_script_mode(tenant: TenantContract) -> None:
    job = _job(tenant, script="#!/bin/bash\nsrun python train.py\n")
    sub = render_slurm(job, PYXIS)
    opts = dict(sub.options)
    assert opts["container-image"] == "nvcr.io/nvidia/pytorch:25.01-py3"
    assert sub.script.endswith("srun python train.py\n")
    # Slurm stops reading #SBATCH at the first command: only ours count
    assert ("account", "acme-acct") in parse_sbatch_options(sub.script)


def test_kubernetes_single_node_job(tenant: TenantContract, root: Path) -> None:
    manifests = render_kubernetes(_job(tenant, retries={"max_restarts": 2, "on_exit_codes": [42]}))
    assert [m["kind"] for m in manifests] == ["Job"]
    job = manifests[0]
    assert job["apiVersion"] == "batch/v1"
    assert job["metadata"]["namespace"] == "tenant-acme"
    assert job["metadata"]["labels"][QUEUE_LABEL] == "acme-lq"
    assert job["spec"]["suspend"] is True
    assert job["spec"]["backoffLimit"] == 2
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert rules[1]["onExitCodes"] == {"containerName": "main", "operator": "NotIn", "values": [42]}
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert container["resources"]["limits"]["memory"] == "65536Mi"
    assert container["workingDir"] == str(root)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert pod["automountServiceAccountToken"] is False
    assert find_pod_escapes(manifests) == []


def test_kubernetes_multi_node_nvl72(tenant: TenantContract) -> None:
    manifests = render_kubernetes(
        _job(
            tenant,
            resources={"nodes": 16, "gpus_per_node": 4, "time_limit": "1h"},
            topology={"segment": 4},
            retries={"max_restarts": 3},
        )
    )
    cd, jobset = manifests
    assert cd["apiVersion"] == COMPUTE_DOMAIN_API and cd["kind"] == "ComputeDomain"
    assert cd["metadata"]["namespace"] == "tenant-acme"
    assert cd["spec"]["numNodes"] == 16
    template_name = cd["spec"]["channel"]["resourceClaimTemplate"]["name"]
    assert jobset["kind"] == "JobSet" and jobset["metadata"]["labels"][QUEUE_LABEL] == "acme-lq"
    assert jobset["spec"]["failurePolicy"]["maxRestarts"] == 3
    rjob = jobset["spec"]["replicatedJobs"][0]["template"]["spec"]
    assert rjob["parallelism"] == rjob["completions"] == 16
    assert rjob["completionMode"] == "Indexed"
    (pod,) = _pods(manifests)
    assert pod["metadata"]["annotations"] == {
        SLICE_REQUIRED_TOPOLOGY: "nvidia.com/gpu.clique",
        SLICE_SIZE: "4",
    }
    claim = pod["spec"]["resourceClaims"][0]
    assert claim["resourceClaimTemplateName"] == template_name
    container = pod["spec"]["containers"][0]
    assert container["resources"]["claims"] == [{"name": claim["name"]}]
    assert container["resources"]["requests"] == container["resources"]["limits"]


def test_kubernetes_same_domain_and_script(tenant: TenantContract) -> None:
    manifests = render_kubernetes(
        _job(
            tenant,
            resources={"nodes": 2, "gpus_per_node": 4, "time_limit": "1h"},
            topology={"same_nvlink_domain": True},
            script="echo $HOSTNAME; rm -rf /tmp/x",
        )
    )
    (pod,) = _pods(manifests)
    assert pod["metadata"]["annotations"] == {REQUIRED_TOPOLOGY: "nvidia.com/gpu.clique"}
    assert pod["spec"]["containers"][0]["command"][:3] == [
        "/bin/bash",
        "-c",
        "echo $HOSTNAME; rm -rf /tmp/x",
    ]


def test_kubernetes_needs_an_image(tenant: TenantContract) -> None:
    doc = spec_doc()
    del doc["image"]
    with pytest.raises(InputError, match="image"):
        render_kubernetes(admit(spec_from_dict(doc), tenant, 0))


def test_pvc_and_uid(root: Path) -> None:
    tenant = make_tenant(root, k8s_output_claim="acme-data", k8s_run_as_uid=12001)
    (job,) = render_kubernetes(_job(tenant))
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 12001
    assert pod["volumes"] == [
        {"name": "outputs", "persistentVolumeClaim": {"claimName": "acme-data"}}
    ]


@pytest.mark.parametrize(
    "smuggled",
    [
        {"hostNetwork": True},
        {"hostPID": True},
        {"serviceAccountName": "default"},
        {"securityContext": {"runAsUser": 0, "runAsNonRoot": True}},
        {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]},
        {"containers": [{"securityContext": {"privileged": True}}]},
        {"containers": [{"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]},
    ],
)
def test_find_pod_escapes_sees_every_escape(smuggled: dict[str, Any]) -> None:
    assert find_pod_escapes({"spec": {"template": {"spec": smuggled}}})


def test_batch_job_validates_against_kubernetes_schema(tenant: TenantContract) -> None:
    kv = pytest.importorskip("kubernetes_validate")
    (job,) = render_kubernetes(_job(tenant, retries={"max_restarts": 1, "on_exit_codes": [3]}))
    kv.validate(job, "1.33.0", strict=True)
