"""End to end through a real uvicorn on 127.0.0.1 (ephemeral port): raw HTTP, the tenant
client of ``dcops jobs``, the bridge service, and (marked slurm) a real Slurm job."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dcops.config import Config
from dcops.errors import BusyError, ConfigError, InputError
from dcops.store import AuditLog, Store
from scheduler.api.app import ApiSettings, TenantApi
from scheduler.api.server import running_server
from tests.scheduler.test_api_support import ApiRig, build_rig, job_doc


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ApiRig, str]]:
    rig = build_rig(tmp_path, ApiSettings(workers=2, max_body_bytes=64 * 1024))
    with running_server(rig.api.app) as url:
        yield rig, url


def raw(url: str, method: str, path: str, body: bytes = b"", /, **headers: str) -> tuple[int, Any]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        conn.close()


def test_real_server_auth_submit_isolation_and_limits(served: tuple[ApiRig, str]) -> None:
    rig, url = served
    assert raw(url, "GET", "/healthz")[0] == 200
    assert raw(url, "GET", "/v1/jobs")[1]["error"]["code"] == "unauthorized"
    auth = {"Authorization": f"Bearer {rig.tokens['acme']}", "Content-Type": "application/json"}
    status, body = raw(url, "POST", "/v1/jobs", json.dumps(job_doc()).encode(), **auth)
    assert status == 201, body
    other = {"Authorization": f"Bearer {rig.tokens['globex']}"}
    assert raw(url, "GET", "/v1/jobs", **other) == (200, {"jobs": []})
    assert raw(url, "DELETE", f"/v1/jobs/{body['job_id']}", **other)[0] == 404
    big = b"#" * (128 * 1024)
    status, body = raw(url, "POST", "/v1/jobs", big, **{**auth, "Content-Type": "text/yaml"})
    assert (status, body["error"]["code"]) == (413, "payload_too_large")
    status, body = raw(url, "GET", "/v1/openapi.json")
    assert status == 200 and body["openapi"] == "3.1.0"


def test_tenant_cli_client_against_real_server(
    served: tuple[ApiRig, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scheduler.api.client import client_from_options

    rig, url = served
    token_file = tmp_path / "token"
    token_file.write_text(rig.tokens["acme"] + "\n")
    token_file.chmod(0o600)
    client = client_from_options(url, token_file)
    assert client is not None and rig.tokens["acme"] not in repr(client)
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump(job_doc()))
    submitted = client.submit(spec)
    assert submitted["rendering"].startswith("#!")
    job_id = submitted["job_id"]
    assert [j["job_id"] for j in client.list_jobs()] == [job_id]
    assert client.status(job_id)["state"] == "pending"
    assert client.logs(job_id) == ""
    assert client.cancel(job_id)["cancelled"] is True
    assert client.list_jobs(active_only=True) == []
    with pytest.raises(InputError, match="not_found"):
        client.status("424242")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(job_doc(account="globex")))
    with pytest.raises(InputError, match=r"invalid_spec.*token"):
        client.submit(bad)
    # Environment instead of flags.
    monkeypatch.setenv("DCOPS_API_URL", url)
    monkeypatch.setenv("DCOPS_TOKEN", rig.tokens["globex"])
    env_client = client_from_options(None, None)
    assert env_client is not None and env_client.list_jobs() == []
    monkeypatch.setenv("DCOPS_TOKEN", "dct_0000000000000000.bad")
    with pytest.raises(InputError, match="unauthorized"):
        bad_env_client = client_from_options(None, None)
        assert bad_env_client is not None
        bad_env_client.list_jobs()


def test_client_refuses_clear_text_to_remote_hosts_and_needs_a_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scheduler.api.client import client_from_options

    with pytest.raises(ConfigError, match="https"):
        client_from_options("http://api.example.com", None)
    with pytest.raises(ConfigError, match="DCOPS_TOKEN"):
        client_from_options("https://api.example.com", None)
    assert client_from_options(None, None) is None


def test_client_maps_rate_limit_to_busy(tmp_path: Path) -> None:
    from scheduler.api.client import ApiClient

    rig = build_rig(tmp_path, ApiSettings(workers=1, requests_per_minute=1))
    with running_server(rig.api.app) as url:
        client = ApiClient(url, rig.tokens["acme"])
        client.list_jobs()
        with pytest.raises(BusyError, match="retry after"):
            client.list_jobs()


def _bridge_api(db: Path, backend_name: str, backend: Any, **settings: Any) -> TenantApi:
    from scheduler.api.assembly import context_factory

    cfg = Config(state_db=db, data_dir=db.parent)
    return TenantApi(
        context_factory(cfg, backend_name, backend, "bridge"), ApiSettings(workers=2, **settings)
    )


def test_bridge_service_through_real_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scheduler.bridge as service

    monkeypatch.setitem(service.FAMILIES, "recording", "slurm")
    rig = build_rig(tmp_path)
    api = _bridge_api(rig.db, "recording", rig.backend)
    from scheduler.api.client import ApiClient

    with running_server(api.app) as url:
        acme = ApiClient(url, rig.tokens["acme"])
        spec = tmp_path / "job.json"
        spec.write_text(json.dumps(job_doc()))
        submitted = acme.submit(spec)
        job_id = submitted["job_id"]
        assert job_id.startswith("j-") and submitted["backend_job_id"] == "1000"
        assert "#SBATCH --account=acme-acct" in submitted["rendering"]
        assert [j["job_id"] for j in acme.list_jobs()] == [job_id]
        globex = ApiClient(url, rig.tokens["globex"])
        assert globex.list_jobs() == []
        with pytest.raises(InputError, match="not_found"):
            globex.cancel(job_id)
        for _ in range(3):
            acme.submit(spec)
        with pytest.raises(InputError, match="quota_exceeded"):
            acme.submit(spec)  # 16 GPUs used of 16
        assert acme.cancel(job_id)["cancelled"] is True
    with Store(rig.db) as store:
        records = AuditLog(store).records()
        assert AuditLog(store).verify().ok
    submits = [r for r in records if r.action == "job.submit" and r.outcome == "ok"]
    assert len(submits) == 4 and {r.actor for r in submits} == {"tenant:acme"}
    assert any(r.action == "job.cancel" and r.actor == "tenant:acme" for r in records)
    api_refused = [r for r in records if r.action == "api.submit" and r.outcome != "ok"]
    assert [r.outcome for r in api_refused] == ["refused:quota_exceeded"]


def test_serve_refuses_public_clear_text() -> None:
    from click.testing import CliRunner

    from dcops.cli.serve import serve

    result = CliRunner().invoke(serve, ["--host", "0.0.0.0"], standalone_mode=False)
    assert isinstance(result.exception, ConfigError)
    assert "clear text" in str(result.exception)


# -- the real Slurm cluster ---------------------------------------------------------------------


@pytest.mark.slurm
def test_tenant_submits_two_node_gpu_job_to_real_slurm(
    slurm_cluster: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    pytest.importorskip("scheduler.backends.slurm_cli")
    from scheduler.api.client import ApiClient
    from scheduler.backends.slurm_cli import SlurmCliBackend
    from scheduler.tenants.store import create_tenant
    from scheduler.tenants.tokens import issue_token
    from tests.scheduler.conftest import make_tenant

    if os.geteuid() != 0:
        pytest.skip("submitting as the tenant's unix user needs root here")
    user = "tenant-a"
    # slurmd opens the job's output as the tenant: its root must be reachable by that user
    # (pytest's own tmp tree is root-only).
    base = Path(tempfile.mkdtemp(prefix="dcops-api-e2e-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    base.chmod(0o755)
    root = base / "out"
    root.mkdir()
    try:
        shutil.chown(root, user=user, group=user)
    except (LookupError, PermissionError) as exc:
        pytest.skip(f"rig user {user} unavailable: {exc}")
    db = tmp_path / "state.db"
    with Store(db) as store:
        audit = AuditLog(store, actor="operator")
        contract = make_tenant(
            root.resolve(),
            name="tenant-a",
            slurm_account="tenant-a",
            slurm_qos="normal",
            slurm_partitions=("batch",),
            unix_users=(user,),
            gpu_quota=8,
        )
        create_tenant(store, contract, audit)
        token = issue_token(store, "tenant-a", audit).token
    backend = SlurmCliBackend(slurm_conf=str(slurm_cluster.slurm_conf))
    api = _bridge_api(db, "slurm-cli", backend)
    spec = tmp_path / "job.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "api-e2e",
                "resources": {"nodes": 2, "gpus_per_node": 4, "time_limit": "5m"},
                "command": ["sleep", "20"],
            }
        )
    )
    backend_job_id = None
    try:
        with running_server(api.app) as url:
            client = ApiClient(url, token)
            submitted = client.submit(spec)
            backend_job_id = submitted["backend_job_id"]
            assert "#SBATCH --nodes=2" in submitted["rendering"]
            assert "#SBATCH --gres=gpu:4" in submitted["rendering"]
            assert "#SBATCH --account=tenant-a" in submitted["rendering"]
            deadline = time.monotonic() + 60
            state = "pending"
            while time.monotonic() < deadline:
                state = client.status(submitted["job_id"])["state"]
                if state != "pending":
                    break
                time.sleep(1)
            assert state in ("running", "completed"), state
            out = slurm_cluster.run(["squeue", "-h", "-j", backend_job_id, "-o", "%a %u %D %b"])
            if out.stdout.strip():
                account, owner, nodes, _gres = out.stdout.split()
                assert (account, owner, nodes) == ("tenant-a", user, "2")
            assert client.cancel(submitted["job_id"])["cancelled"] is True
    finally:
        if backend_job_id:
            slurm_cluster.run(["scancel", backend_job_id], check=False)
