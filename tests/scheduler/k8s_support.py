"""Helpers shared by the Kubernetes adapter tests: a started fake API server, tenants, jobs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dcops.errors import InputError
from dcops.kube import KubeApi
from scheduler.kubernetes.apply import sync_tenant
from scheduler.kubernetes.validate import validate_manifest
from scheduler.spec import spec_from_dict
from scheduler.tenants.contract import AdmittedJob, TenantContract, admit
from tests.scheduler.conftest import make_tenant, spec_doc
from tests.scheduler.k8s_fake_server import FakeKubeServer, Obj


def strict_check(obj: Obj) -> str | None:
    """What the fake server answers to fieldValidation=Strict: our offline validators."""
    try:
        validate_manifest(obj)
    except InputError as exc:
        return str(exc)
    return None


@contextmanager
def running_server(**options: Any) -> Iterator[FakeKubeServer]:
    server = FakeKubeServer(strict_validator=strict_check, **options)
    with server:
        yield server


def tenant_b(root: Path) -> TenantContract:
    other = root.parent / "bravo"
    other.mkdir(exist_ok=True)
    return make_tenant(
        other.resolve(),
        name="bravo",
        slurm_account="bravo-acct",
        k8s_namespace="tenant-bravo",
        k8s_local_queue="bravo-lq",
    )


def admitted(tenant: TenantContract, **over: Any) -> AdmittedJob:
    return admit(spec_from_dict(spec_doc(**over)), tenant, 0, backend="kubernetes")


def multi_node(tenant: TenantContract, name: str = "pretrain", nodes: int = 4) -> AdmittedJob:
    return admitted(
        tenant,
        name=name,
        resources={"nodes": nodes, "gpus_per_node": 4, "time_limit": "4h", "memory": "256Gi"},
        topology={"segment": 2},
    )


def synced(api: KubeApi, *tenants: TenantContract) -> None:
    for tenant in tenants:
        sync_tenant(api, tenant)
