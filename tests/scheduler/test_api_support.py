"""Fixtures of the tenant-API tests: a real state store with two tenants and their tokens.

No tests here; the ``test_api_*`` modules import these. The API runs over the
real store (tenants, hashed tokens, audit chain) and a shared
:class:`RecordingBackend`, through :class:`BackendJobService`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dcops.store import AuditLog, Store
from scheduler.api.app import ApiSettings, TenantApi
from scheduler.api.direct import BackendJobService
from scheduler.api.ports import ApiContext
from scheduler.backends.recording import RecordingBackend
from scheduler.tenants.store import create_tenant
from scheduler.tenants.tokens import authenticate, issue_token
from tests.scheduler.conftest import make_tenant

pytest.importorskip("starlette")
pytest.importorskip("httpx")


@dataclass
class ApiRig:
    """What a test needs: the store path, the backend, the API object, tokens by tenant."""

    db: Path
    backend: RecordingBackend
    api: TenantApi
    tokens: dict[str, str]
    token_ids: dict[str, str]
    roots: dict[str, Path]
    extra: dict[str, Any] = field(default_factory=dict)

    def store(self) -> Store:
        return Store(self.db)

    def audit_records(self, action: str | None = None) -> list[Any]:
        with self.store() as store:
            return AuditLog(store).records(action=action)

    def auth(self, tenant: str = "acme") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[tenant]}"}


def context_factory(db: Path, backend: RecordingBackend) -> Any:
    def factory() -> ApiContext:
        store = Store(db)
        return ApiContext(
            authenticate=lambda token: authenticate(store, token),
            service=BackendJobService(backend),
            audit=AuditLog(store, actor="dcops-api"),
            close=store.close,
        )

    return factory


def build_rig(tmp_path: Path, settings: ApiSettings | None = None, **contract: Any) -> ApiRig:
    db = tmp_path / "state.db"
    roots: dict[str, Path] = {}
    tokens: dict[str, str] = {}
    token_ids: dict[str, str] = {}
    with Store(db) as store:
        audit = AuditLog(store, actor="operator")
        for name in ("acme", "globex"):
            root = (tmp_path / "tenants" / name).resolve()
            root.mkdir(parents=True)
            roots[name] = root
            over: dict[str, Any] = {
                "name": name,
                "slurm_account": f"{name}-acct",
                "slurm_qos": f"{name}-qos",
                "unix_users": (f"{name}01",),
                "k8s_namespace": f"tenant-{name}",
                "k8s_local_queue": f"{name}-lq",
                "gpu_quota": 16,
                **contract,
            }
            create_tenant(store, make_tenant(root, **over), audit)
            issued = issue_token(store, name, audit)
            tokens[name] = issued.token
            token_ids[name] = issued.token_id
    backend = RecordingBackend()
    api = TenantApi(
        context_factory(db, backend),
        settings or ApiSettings(workers=2, requests_per_minute=10_000),
    )
    return ApiRig(db, backend, api, tokens, token_ids, roots)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[ApiRig]:
    built = build_rig(tmp_path, max_submissions_per_minute=10_000)
    try:
        yield built
    finally:
        built.api.close()


@pytest.fixture
def client(rig: ApiRig) -> Iterator[Any]:
    from starlette.testclient import TestClient

    with TestClient(rig.api.app, raise_server_exceptions=True) as test_client:
        yield test_client


def job_doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "train-llm",
        "resources": {"nodes": 1, "gpus_per_node": 4, "time_limit": "2h", "memory": "64Gi"},
        "command": ["python", "train.py"],
    }
    doc.update(over)
    return doc
