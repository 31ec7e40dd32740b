"""The tenant API through an ASGI test client: auth, isolation, errors, limits, audit, OpenAPI."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from dcops.jobstate import JobState
from dcops.store import AuditLog
from scheduler.api.app import ApiSettings
from scheduler.tenants.tokens import issue_token, revoke_token
from tests.scheduler.test_api_support import ApiRig, build_rig, client, job_doc, rig

__all__ = ["client", "rig"]  # fixtures


def error_code(response: Any) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    return str(body["error"]["code"])


def submit(client: Any, rig: ApiRig, tenant: str = "acme", **over: Any) -> Any:
    return client.post("/v1/jobs", json=job_doc(**over), headers=rig.auth(tenant))


# -- open routes ---------------------------------------------------------------------------


def test_healthz_needs_no_token(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.headers["cache-control"] == "no-store"


def test_unknown_route_and_method_are_json_errors(client: Any, rig: ApiRig) -> None:
    assert error_code(client.get("/v2/nothing")) == "not_found"
    response = client.put("/v1/jobs", headers=rig.auth())
    assert response.status_code == 405
    assert error_code(response) == "invalid_request"


def test_openapi_document_is_valid(client: Any) -> None:
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.1")
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/logs", "/healthz"} <= set(
        doc["paths"]
    )
    assert doc["components"]["schemas"]["JobSpec"]["additionalProperties"] is False
    try:
        from openapi_spec_validator import validate
    except ImportError:  # structural checks above are what remains
        return
    validate(doc)


# -- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer dct_0000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "Bearer not-a-dcops-token",
        "Bearer a b",
    ],
)
def test_missing_or_invalid_token_is_401(client: Any, rig: ApiRig, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    for method, path in (("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("DELETE", "/v1/jobs/1")):
        response = client.request(method, path, headers=headers, json=job_doc())
        assert response.status_code == 401, (method, path)
        assert error_code(response) == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert rig.backend.calls == []


def test_revoked_and_expired_tokens_are_401(client: Any, rig: ApiRig) -> None:
    assert client.get("/v1/jobs", headers=rig.auth()).status_code == 200
    with rig.store() as store:
        audit = AuditLog(store, actor="operator")
        revoke_token(store, rig.token_ids["acme"], audit)
        short = issue_token(store, "acme", audit, expires_days=1e-7)  # ~9 ms
    time.sleep(0.05)
    for token in (rig.tokens["acme"], short.token):
        response = client.get("/v1/jobs", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert error_code(response) == "unauthorized"
        assert token not in response.text
    assert "revoked" in client.get("/v1/jobs", headers=rig.auth()).json()["error"]["message"]


def test_failed_auth_is_audited_without_the_token(client: Any, rig: ApiRig) -> None:
    bad = "dct_0123456789abcdef.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
    client.get("/v1/jobs", headers={"Authorization": f"Bearer {bad}"})
    records = rig.audit_records("api.auth")
    assert len(records) == 1
    assert records[0].actor == "anonymous"
    assert records[0].outcome == "refused:unauthorized"
    assert "BBBB" not in json.dumps(records[0].to_dict())


def test_auth_failures_lock_out_the_credential_not_the_address(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    rig = build_rig(tmp_path, ApiSettings(workers=1, auth_failures_per_minute=3))
    with TestClient(rig.api.app) as client:
        bad = {"Authorization": "Bearer nope"}
        codes = [client.get("/v1/jobs", headers=bad).status_code for _ in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        # Guessing the secret of a known token id locks out that id ...
        guessed = f"dct_{rig.token_ids['acme']}." + "B" * 43
        codes = [
            client.get("/v1/jobs", headers={"Authorization": f"Bearer {guessed}"}).status_code
            for _ in range(4)
        ]
        assert codes == [401, 401, 401, 429]
        blocked = client.get("/v1/jobs", headers=rig.auth("acme"))
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
        # ... while every other valid token from the same address still works.
        assert client.get("/v1/jobs", headers=rig.auth("globex")).status_code == 200


# -- submit ------------------------------------------------------------------------------------


def test_submit_returns_job_id_and_exact_rendering(client: Any, rig: ApiRig) -> None:
    response = submit(client, rig)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["job_id"] == body["backend_job_id"] == "1000"
    assert response.headers["location"] == "/v1/jobs/1000"
    recorded = rig.backend.submissions
    assert len(recorded) == 1
    assert body["rendering"] == recorded[0].submission.rendering
    assert "#SBATCH --account=acme-acct" in body["rendering"]
    assert len(body["spec_hash"]) == 64


def test_yaml_and_json_bodies_hash_the_same(client: Any, rig: ApiRig) -> None:
    doc = job_doc()
    as_json = client.post("/v1/jobs", json=doc, headers=rig.auth()).json()
    as_yaml = client.post(
        "/v1/jobs",
        content=yaml.safe_dump(doc).encode(),
        headers={**rig.auth(), "Content-Type": "application/yaml"},
    )
    assert as_yaml.status_code == 201, as_yaml.text
    assert as_yaml.json()["spec_hash"] == as_json["spec_hash"]


def test_submit_is_audited_with_tenant_hash_and_backend_id(client: Any, rig: ApiRig) -> None:
    body = submit(client, rig).json()
    [record] = rig.audit_records("api.submit")
    assert record.actor == "tenant:acme"
    assert record.outcome == "ok"
    assert record.target == f"job:{body['job_id']}"
    assert record.evidence["spec_hash"] == body["spec_hash"]
    assert record.evidence["backend_job_id"] == body["backend_job_id"]
    with rig.store() as store:
        assert AuditLog(store).verify().ok


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("account", "globex-acct", "account"),
        ("tenant", "globex", "tenant"),
        ("namespace", "tenant-globex", "namespace"),
        ("metadata", {"namespace": "tenant-globex"}, "metadata.namespace"),
        ("slurm_account", "globex-acct", "slurm_account"),
        ("resources", {"time_limit": "1h", "partition": "debug"}, "resources.partition"),
        ("Queue", "globex-lq", "Queue"),
    ],
)
def test_body_naming_an_identity_is_400_and_reaches_nothing(
    client: Any, rig: ApiRig, field: str, value: Any, named: str
) -> None:
    response = client.post("/v1/jobs", json=job_doc(**{field: value}), headers=rig.auth())
    assert response.status_code == 400
    assert error_code(response) == "invalid_spec"
    message = response.json()["error"]["message"]
    assert named in message and "token" in message
    assert rig.backend.calls == []
    [record] = rig.audit_records("api.submit")
    assert record.outcome == "refused:invalid_spec"


def test_env_may_hold_ordinary_names_like_user(client: Any, rig: ApiRig) -> None:
    response = submit(client, rig, env={"USER_NOTE": "x", "QUEUE_DEPTH": "4"})
    assert response.status_code == 201, response.text


def test_query_naming_a_tenant_is_refused(client: Any, rig: ApiRig) -> None:
    response = client.get("/v1/jobs?tenant=globex", headers=rig.auth())
    assert response.status_code == 400
    assert "token" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("content", "content_type", "code", "status"),
    [
        (b"name: [unclosed", "application/yaml", "invalid_spec", 400),
        (b"{", "application/json", "invalid_spec", 400),
        (b"", "application/json", "invalid_spec", 400),
        (b"\xff\xfe", "application/json", "invalid_request", 400),
        (b"a: &x 1\nb: *x\n", "application/yaml", "invalid_request", 400),
        (b'{"name": "a", "name": "b"}', "application/json", "invalid_spec", 400),
        (b"[1, 2]", "application/json", "invalid_spec", 400),
        (b"<xml/>", "application/xml", "invalid_request", 415),
        (b'{"x": NaN}', "application/json", "invalid_spec", 400),
    ],
)
def test_malformed_bodies_are_clear_4xx(
    client: Any, rig: ApiRig, content: bytes, content_type: str, code: str, status: int
) -> None:
    response = client.post(
        "/v1/jobs", content=content, headers={**rig.auth(), "Content-Type": content_type}
    )
    assert response.status_code == status, response.text
    assert error_code(response) == code
    assert rig.backend.submissions == []


def test_oversized_body_is_413_before_it_is_read(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    rig = build_rig(tmp_path, ApiSettings(workers=1, max_body_bytes=4096))
    with TestClient(rig.api.app) as client:
        big = job_doc(env={f"V{i}": "x" * 100 for i in range(100)})
        response = client.post("/v1/jobs", json=big, headers=rig.auth())
        assert response.status_code == 413
        assert error_code(response) == "payload_too_large"

        def chunks() -> Any:  # no Content-Length: the streamed size is what counts
            for _ in range(10):
                yield b" " * 1024

        streamed = client.post(
            "/v1/jobs", content=chunks(), headers={**rig.auth(), "Content-Type": "application/json"}
        )
        assert streamed.status_code == 413
    assert rig.backend.calls == []


def test_contract_rule_violation_is_invalid_spec(client: Any, rig: ApiRig) -> None:
    response = submit(client, rig, workdir="/etc")
    assert response.status_code == 400
    assert error_code(response) == "invalid_spec"
    assert "workdir" in response.json()["error"]["message"]
    assert rig.backend.submissions == []


def test_quota_exceeded_is_409(client: Any, rig: ApiRig) -> None:
    # quota 16 GPUs: 4 x 4 fit, the fifth does not.
    for _ in range(4):
        assert submit(client, rig).status_code == 201
    response = submit(client, rig)
    assert response.status_code == 409
    assert error_code(response) == "quota_exceeded"
    assert len(rig.backend.submissions) == 4
    # Finishing a job frees its GPUs.
    rig.backend.set_state("1000", JobState.COMPLETED)
    assert submit(client, rig).status_code == 201
    # The other tenant's quota is its own.
    assert submit(client, rig, tenant="globex").status_code == 201


def test_submission_rate_limit_is_429_with_retry_after(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    rig = build_rig(tmp_path, ApiSettings(workers=1), max_submissions_per_minute=2, gpu_quota=64)
    with TestClient(rig.api.app) as client:
        codes = [submit(client, rig).status_code for _ in range(3)]
        assert codes == [201, 201, 429]
        limited = submit(client, rig)
        assert error_code(limited) == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 30
        # Reads are not submissions; the other tenant has its own bucket.
        assert client.get("/v1/jobs", headers=rig.auth()).status_code == 200
        assert submit(client, rig, tenant="globex").status_code == 201
    assert len(rig.backend.submissions) == 3
    refused = [r for r in rig.audit_records("api.submit") if r.outcome == "refused:rate_limited"]
    assert len(refused) == 2


def test_request_rate_limit_applies_to_reads(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    rig = build_rig(tmp_path, ApiSettings(workers=1, requests_per_minute=3))
    with TestClient(rig.api.app) as client:
        codes = [client.get("/v1/jobs", headers=rig.auth()).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_backend_failure_is_502_backend_error(client: Any, rig: ApiRig) -> None:
    from dcops.errors import SchedulerError

    rig.backend.fail_with = SchedulerError("sbatch: error: slurmctld not responding")
    response = submit(client, rig)
    assert response.status_code == 502
    assert error_code(response) == "backend_error"
    [record] = rig.audit_records("api.submit")
    assert record.outcome == "failed:backend_error"


# -- reads, cancel, isolation ------------------------------------------------------------------


def test_list_status_logs_cancel_own_job(client: Any, rig: ApiRig) -> None:
    job_id = submit(client, rig).json()["job_id"]
    rig.backend.set_state(job_id, JobState.RUNNING, logs="step 1 loss 2.3\n")
    listed = client.get("/v1/jobs", headers=rig.auth()).json()["jobs"]
    assert [j["job_id"] for j in listed] == [job_id]
    status = client.get(f"/v1/jobs/{job_id}", headers=rig.auth()).json()
    assert status["state"] == "running" and status["tenant"] == "acme"
    logs = client.get(f"/v1/jobs/{job_id}/logs?tail_bytes=7", headers=rig.auth()).json()
    assert logs == {"job_id": job_id, "logs": "ss 2.3\n"}
    cancelled = client.delete(f"/v1/jobs/{job_id}", headers=rig.auth())
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"] is True
    active = client.get("/v1/jobs?active=true", headers=rig.auth()).json()["jobs"]
    assert active == []
    actions = [r.action for r in rig.audit_records() if r.actor == "tenant:acme"]
    assert actions == ["api.submit", "api.list", "api.status", "api.logs", "api.cancel", "api.list"]


def test_other_tenants_job_is_404_everywhere(client: Any, rig: ApiRig) -> None:
    job_id = submit(client, rig, tenant="acme").json()["job_id"]
    assert client.get("/v1/jobs", headers=rig.auth("globex")).json() == {"jobs": []}
    for method, path in (
        ("GET", f"/v1/jobs/{job_id}"),
        ("GET", f"/v1/jobs/{job_id}/logs"),
        ("DELETE", f"/v1/jobs/{job_id}"),
    ):
        response = client.request(method, path, headers=rig.auth("globex"))
        assert response.status_code == 404, (method, path)
        assert error_code(response) == "not_found"
    # Same answer as for an id that does not exist at all.
    missing = client.get("/v1/jobs/999999", headers=rig.auth("globex"))
    assert missing.json()["error"]["message"] == "job '999999' not found"
    assert rig.backend.jobs[job_id].state is JobState.PENDING  # not cancelled


@pytest.mark.parametrize("job_id", ["..%2F..%2Fetc", "a%20b", "x" * 200, "%00"])
def test_odd_job_ids_are_404(client: Any, rig: ApiRig, job_id: str) -> None:
    response = client.get(f"/v1/jobs/{job_id}", headers=rig.auth())
    assert response.status_code == 404
    assert error_code(response) == "not_found"


@pytest.mark.parametrize("query", ["tail_bytes=0", "tail_bytes=-1", "tail_bytes=1e9", "x=1"])
def test_bad_log_parameters_are_400(client: Any, rig: ApiRig, query: str) -> None:
    job_id = submit(client, rig).json()["job_id"]
    response = client.get(f"/v1/jobs/{job_id}/logs?{query}", headers=rig.auth())
    assert response.status_code == 400
    assert error_code(response) == "invalid_request"
