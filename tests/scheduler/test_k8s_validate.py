"""Offline validation: built-in kinds via kubernetes-validate, CRDs via upstream schemas."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dcops.errors import InputError
from scheduler.kubernetes.apply import render_tenant_objects
from scheduler.kubernetes.render import render_kubernetes
from scheduler.kubernetes.validate import (
    merge_patch,
    validate_manifest,
    validate_manifests,
    validate_merge_patch,
)
from scheduler.tenants.contract import TenantContract
from scheduler.tenants.kubernetes import render_tenant_kubernetes
from tests.scheduler.k8s_support import admitted, multi_node

pytestmark = pytest.mark.timeout(60)


def test_every_rendering_validates(tenant: TenantContract) -> None:
    for job in (
        admitted(tenant),
        multi_node(tenant),
        admitted(tenant, resources={"nodes": 3, "gpus_per_node": 0, "time_limit": "1h"}),
        admitted(tenant, retries={"max_restarts": 2, "on_exit_codes": [42]}),
    ):
        validate_manifests(render_kubernetes(job))


def test_tenant_objects_validate(tenant: TenantContract) -> None:
    objects = render_tenant_objects(tenant)
    assert [o["kind"] for o in objects] == [
        "Namespace",
        "ClusterQueue",
        "LocalQueue",
        "ResourceQuota",
    ]
    validate_manifests(objects)


def test_tenant_report_objects_validate(tenant: TenantContract) -> None:
    objects = render_tenant_kubernetes(tenant)
    assert [o["kind"] for o in objects] == ["Namespace", "ClusterQueue", "LocalQueue"]
    validate_manifests(objects)


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "l": [3], "n": {"x": None}}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "l": [3], "n": {}}
    assert target["c"] == {"d": "e", "f": "g"}  # the target is not changed


def test_merge_patches_are_judged_by_their_result(tenant: TenantContract) -> None:
    cq = render_tenant_objects(tenant)[1]
    quota = {"resourceGroups": copy.deepcopy(cq["spec"]["resourceGroups"])}
    quota["resourceGroups"][0]["flavors"][0]["resources"][2]["nominalQuota"] = 72
    after = validate_merge_patch(cq, {"spec": quota})
    assert after["spec"]["resourceGroups"][0]["flavors"][0]["resources"][2]["nominalQuota"] == 72
    with pytest.raises(InputError, match="queueingStrategy"):
        validate_merge_patch(cq, {"spec": {"queueingStrategy": "Random"}})


def _job_manifest(tenant: TenantContract) -> dict[str, Any]:
    return copy.deepcopy(render_kubernetes(admitted(tenant))[0])


def test_broken_job_fails(tenant: TenantContract) -> None:
    job = _job_manifest(tenant)
    job["spec"]["template"]["spec"]["hostNetwrk"] = True
    with pytest.raises(
        InputError, match=r"Job tenant-acme/train-llm: \$\.spec\.template\.spec: .*hostNetwrk"
    ):
        validate_manifest(job)
    job = _job_manifest(tenant)
    job["spec"]["backoffLimit"] = "three"
    with pytest.raises(InputError, match="backoffLimit"):
        validate_manifest(job)
    job["spec"]["backoffLimit"] = 2**31
    with pytest.raises(InputError, match="backoffLimit: 2147483648 is not a 'int32'"):
        validate_manifest(job)


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        (("spec", "replicatedJobs", 0, "replicas"), "one", "is not of type 'integer'"),
        (("spec", "replicatedJobs", 0, "replicas"), 2**31, "int32"),
        (("spec", "failurePolicy", "maxRestart"), 3, "maxRestart"),
        (("spec", "replicatedJobs", 0, "template", "spec", "parallelism"), "x", "parallelism"),
        (
            ("spec", "replicatedJobs", 0, "template", "spec", "template", "spec", "hostPID"),
            1,
            "hostPID",
        ),
    ],
)
def test_broken_jobset_fails(
    tenant: TenantContract, where: tuple[Any, ...], value: Any, message: str
) -> None:
    manifests = render_kubernetes(multi_node(tenant))
    jobset = copy.deepcopy(manifests[1])
    node: Any = jobset
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    with pytest.raises(InputError, match=message):
        validate_manifest(jobset)


def test_broken_crds_fail(tenant: TenantContract) -> None:
    cd = copy.deepcopy(render_kubernetes(multi_node(tenant))[0])
    del cd["spec"]["channel"]
    with pytest.raises(InputError, match=r"ComputeDomain tenant-acme/pretrain-cd: .*channel"):
        validate_manifest(cd)
    cq = copy.deepcopy(render_tenant_objects(tenant)[1])
    cq["spec"]["resourceGroups"][0]["flavors"][0]["resources"][2]["nominalQuota"] = "lots"
    with pytest.raises(InputError, match="nominalQuota"):
        validate_manifest(cq)
    lq = copy.deepcopy(render_tenant_objects(tenant)[2])
    lq["spec"] = {"clusterQueue": "Not_A_Name"}
    with pytest.raises(InputError, match=r"\$\.spec\.clusterQueue: 'Not_A_Name' does not match"):
        validate_manifest(lq)
    cd = copy.deepcopy(render_kubernetes(multi_node(tenant))[0])
    cd["spec"]["channel"]["allocationMode"] = "Some"
    with pytest.raises(InputError, match="allocationMode"):
        validate_manifest(cd)


def test_unknown_kinds_refused() -> None:
    with pytest.raises(InputError, match="no schema"):
        validate_manifest(
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
        )
    with pytest.raises(InputError, match="apiVersion and kind"):
        validate_manifest({"metadata": {"name": "w"}})
