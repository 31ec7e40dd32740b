"""Shared fixtures of the scheduler tests: a tenant with real output roots in tmp."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scheduler.spec import spec_from_dict
from scheduler.tenants.contract import TenantContract


def make_tenant(root: Path, **over: Any) -> TenantContract:
    values: dict[str, Any] = {
        "name": "acme",
        "slurm_account": "acme-acct",
        "slurm_qos": "acme-qos",
        "slurm_partitions": ("gb200",),
        "unix_users": ("acme01",),
        "k8s_namespace": "tenant-acme",
        "k8s_local_queue": "acme-lq",
        "gpu_quota": 144,
        "output_roots": (str(root),),
    }
    values.update(over)
    return TenantContract(**values)


def spec_doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "train-llm",
        "resources": {"nodes": 1, "gpus_per_node": 4, "time_limit": "2h", "memory": "64Gi"},
        "image": "nvcr.io/nvidia/pytorch:25.01-py3",
        "command": ["python", "train.py", "--lr", "3e-4"],
    }
    doc.update(over)
    return doc


@pytest.fixture
def root(tmp_path: Path) -> Path:
    out = tmp_path / "tenants" / "acme"
    out.mkdir(parents=True)
    return out.resolve()


@pytest.fixture
def tenant(root: Path) -> TenantContract:
    return make_tenant(root)


@pytest.fixture
def spec() -> Any:
    return spec_from_dict(spec_doc())
