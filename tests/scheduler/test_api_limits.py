"""API limits and error contracts found by the attack of issue 11 (each failed on the old code)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from scheduler.api.app import ApiSettings
from tests.scheduler.test_api_support import ApiRig, build_rig, client, job_doc, rig  # noqa: F401


def _submit(client: Any, rig: ApiRig, tenant: str = "acme", /, **over: Any) -> Any:  # noqa: F811
    return client.post("/v1/jobs", headers=rig.auth(tenant), json=job_doc(**over))


def test_max_pending_jobs_is_enforced(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    built = build_rig(tmp_path, max_submissions_per_minute=1000, max_pending_jobs=2)
    with TestClient(built.api.app) as c:
        codes = [_submit(c, built, name=f"j{i}").status_code for i in range(5)]
    built.api.close()
    assert codes == [201, 201, 409, 409, 409]


def test_jobs_without_gpus_count_against_the_cpu_node_quota(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    built = build_rig(tmp_path, max_submissions_per_minute=1000, cpu_node_quota=3)
    cpu = {"nodes": 2, "gpus_per_node": 0, "time_limit": "1h"}
    with TestClient(built.api.app) as c:
        first = _submit(c, built, resources=cpu)
        second = _submit(c, built, resources=cpu)
    built.api.close()
    assert first.status_code == 201
    assert second.status_code == 409 and "CPU node quota" in second.text


def test_bearer_scheme_is_case_insensitive(client: Any, rig: ApiRig) -> None:  # noqa: F811
    token = rig.tokens["acme"]
    for scheme in ("bearer", "BEARER", "Bearer"):
        response = client.get("/v1/jobs", headers={"Authorization": f"{scheme} {token}"})
        assert response.status_code == 200, scheme


def test_405_says_allow(client: Any, rig: ApiRig) -> None:  # noqa: F811
    response = client.put("/v1/jobs", headers=rig.auth())
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


BAD_BODIES = [
    ("resources", {"nodes": 1.0, "gpus_per_node": 4, "time_limit": "2h"}),
    ("resources", {"nodes": 1, "memory": 1.0, "time_limit": "2h"}),
]


def test_float_sizes_are_400_not_500(client: Any, rig: ApiRig) -> None:  # noqa: F811
    for key, value in BAD_BODIES:
        response = _submit(client, rig, **{key: value})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_spec"


def test_yaml_non_string_keys_and_huge_ints_are_400(client: Any, rig: ApiRig) -> None:  # noqa: F811
    bodies = [
        "name: x\nresources: {time_limit: 1h}\ncommand: [a]\nenv: {1: x}\n",
        "name: x\nresources: {time_limit: 1h, nodes: " + "9" * 5000 + "}\ncommand: [a]\n",
        "name: x\nresources: {time_limit: 1h}\ncommand: [a]\nx: " + "[" * 3000 + "]" * 3000,
    ]
    before = len(rig.audit_records("api.submit"))
    for body in bodies:
        response = client.post(
            "/v1/jobs",
            headers={**rig.auth(), "Content-Type": "application/yaml"},
            content=body.encode(),
        )
        assert response.status_code == 400, response.text
    assert len(rig.audit_records("api.submit")) == before + len(bodies)  # every one audited


def test_env_values_never_reach_the_audit_log(client: Any, rig: ApiRig) -> None:  # noqa: F811
    secret = "hf_SECRETVALUE123"
    for env in ({"HF_TOKEN": 12345}, {"HF_TOKEN": secret + "\n"}, {"SLURM_X": secret}):
        response = _submit(client, rig, env=env)
        assert response.status_code == 400
        assert secret not in response.text and "12345" not in response.text
    dump = json.dumps([r.to_dict() for r in rig.audit_records()])
    assert secret not in dump and "12345" not in dump


def test_one_tenant_cannot_hold_every_worker(tmp_path: Path) -> None:
    """A tenant's slow calls hold at most max_concurrent_per_tenant workers."""
    from starlette.testclient import TestClient

    built = build_rig(
        tmp_path,
        ApiSettings(workers=3, requests_per_minute=10_000, max_concurrent_per_tenant=1),
        max_submissions_per_minute=1000,
    )
    release = threading.Event()
    original = built.backend.list

    def slow_list(tenant: Any, **kw: Any) -> Any:
        if tenant.name == "acme":
            release.wait(10)
        return original(tenant, **kw)

    built.backend.list = slow_list  # type: ignore[method-assign]
    with TestClient(built.api.app) as c:
        threads = [
            threading.Thread(target=lambda: c.get("/v1/jobs", headers=built.auth("acme")))
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        time.sleep(0.3)
        start = time.perf_counter()
        other = c.get("/v1/jobs", headers=built.auth("globex"))
        elapsed = time.perf_counter() - start
        release.set()
        for t in threads:
            t.join(15)
    built.api.close()
    assert other.status_code == 200 and elapsed < 2.0


def test_bridge_service_enforces_pending_and_cpu_node_limits(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """The same limits through the bridge (jobs table), as `dcops serve` runs by default."""
    from starlette.testclient import TestClient

    import scheduler.bridge as service
    from tests.scheduler.test_api_uvicorn import _bridge_api

    monkeypatch.setitem(service.FAMILIES, "recording", "slurm")
    built = build_rig(
        tmp_path, max_submissions_per_minute=1000, max_pending_jobs=2, cpu_node_quota=1
    )
    api = _bridge_api(built.db, "recording", built.backend)
    cpu = {"nodes": 1, "gpus_per_node": 0, "time_limit": "1h"}
    with TestClient(api.app) as c:
        first = c.post("/v1/jobs", headers=built.auth(), json=job_doc(resources=cpu))
        second = c.post("/v1/jobs", headers=built.auth(), json=job_doc(resources=cpu))
        gpu = c.post("/v1/jobs", headers=built.auth(), json=job_doc(name="g1"))
        third = c.post("/v1/jobs", headers=built.auth(), json=job_doc(name="g2"))
        listed = c.get("/v1/jobs", headers=built.auth()).json()["jobs"]
    api.close()
    built.api.close()
    assert first.status_code == 201
    assert second.status_code == 409 and "CPU node quota" in second.text
    assert gpu.status_code == 201
    assert third.status_code == 409 and "max_pending_jobs" in third.text
    assert all("backend_job_id" in j for j in listed)


def test_bad_query_parameters_of_a_tenant_are_audited(client: Any, rig: ApiRig) -> None:  # noqa: F811
    before = len(rig.audit_records())
    assert client.get("/v1/jobs?tenant=globex", headers=rig.auth()).status_code == 400
    assert client.get("/v1/jobs/x/logs?tail_bytes=0", headers=rig.auth()).status_code == 400
    assert client.get("/v1/jobs?active=maybe", headers=rig.auth()).status_code == 400
    new = rig.audit_records()[before:]
    assert [(r.actor, r.outcome) for r in new] == [("tenant:acme", "refused:invalid_request")] * 3


def test_bridge_service_lists_every_job_with_its_name(tmp_path: Path, monkeypatch: Any) -> None:
    """`jobs list --api` had an always-empty NAME column: the bridge's list never has a live
    status, and the record named a job only from one."""
    from starlette.testclient import TestClient

    import scheduler.bridge as service
    from tests.scheduler.test_api_uvicorn import _bridge_api

    monkeypatch.setitem(service.FAMILIES, "recording", "slurm")
    built = build_rig(tmp_path, max_submissions_per_minute=1000)
    api = _bridge_api(built.db, "recording", built.backend)
    with TestClient(api.app) as c:
        job_id = c.post("/v1/jobs", headers=built.auth(), json=job_doc(name="nightly-eval"))
        listed = c.get("/v1/jobs", headers=built.auth()).json()["jobs"]
    api.close()
    built.api.close()
    assert [(j["job_id"], j["name"]) for j in listed] == [(job_id.json()["job_id"], "nightly-eval")]
