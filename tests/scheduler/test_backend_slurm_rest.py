"""slurm-rest: version detection, request shapes per API version, real responses of 23.11..25.11."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from dcops.errors import InputError, SchedulerError, UnknownNameError
from dcops.jobstate import JobState
from scheduler.backends.slurm_rest import (
    SEGMENT_SIZE_SINCE,
    SlurmRestBackend,
    _vtuple,
    job_description,
    pick_version,
    submitted_job_id,
    versions_in_openapi,
)
from scheduler.slurm.render import SlurmSite, render_slurm
from scheduler.spec import spec_from_dict
from scheduler.tenants.contract import TenantContract, admit
from tests.conftest import data_file
from tests.scheduler.conftest import make_tenant, spec_doc

RELEASES = [("23.11", "0.0.40"), ("24.05", "0.0.41"), ("24.11", "0.0.42"), ("25.11", "0.0.44")]
SECRET = "eyJhbGciOi.secret-token-value"


def restd(release: str, version: str, name: str) -> Any:
    path = data_file(f"slurm/slurmrestd/{release}/{version}/{name}")
    return json.loads(path.read_text())


class FakeTokens:
    def __init__(self) -> None:
        self.users: list[str] = []

    def token(self, user: str) -> str:
        self.users.append(user)
        return SECRET


class FakeServer:
    """Answers GET/POST/DELETE from a route table; records every request."""

    def __init__(self, routes: Mapping[tuple[str, str], tuple[int, object]]) -> None:
        self.routes = dict(routes)
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []

    def __call__(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> tuple[int, bytes]:
        path = url.split("://", 1)[1].split("/", 1)[1]
        self.requests.append((method, "/" + path, dict(headers), body and json.loads(body)))
        status, doc = self.routes.get((method, "/" + path), (404, {"errors": []}))
        return status, json.dumps(doc).encode() if not isinstance(doc, bytes) else doc


def tenant_owning(root: Path, doc: Any) -> TenantContract:
    job = doc["jobs"][0]
    return make_tenant(root, slurm_account=job["account"], unix_users=(job["user_name"],))


@pytest.mark.parametrize(
    ("release", "expected"), [("24.05", "0.0.41"), ("24.11", "0.0.42"), ("25.11", "0.0.44")]
)
def test_version_detected_from_real_openapi(release: str, expected: str) -> None:
    doc = json.loads(data_file(f"slurm/slurmrestd/{release}/openapi-v3.json").read_text())
    assert pick_version(versions_in_openapi(doc)) == expected


def test_version_of_the_22_05_plugin_and_refusal_of_unknown() -> None:
    doc: dict[str, Any] = {
        "paths": {
            "/slurm/v0.0.36/job/submit": {},
            "/slurm/v0.0.38/job/submit": {},
            "/slurm/v0.0.37/job/submit": {},
        }
    }
    assert pick_version(versions_in_openapi(doc)) == "0.0.38"
    with pytest.raises(SchedulerError, match=r"0\.0\.38\.\.0\.0\.45"):
        pick_version(["0.0.36"])


def _submission(root: Path, **over: Any) -> Any:
    doc = spec_doc(**over)
    doc.pop("image", None)
    tenant = make_tenant(root)
    job = admit(spec_from_dict(doc), tenant, 0, backend="slurm")
    return render_slurm(job, SlurmSite(supports_segment=False, pyxis=False))


def test_request_shape_v0_0_38(root: Path) -> None:
    body = job_description(_submission(root), "0.0.38", {"PATH": "/bin"})
    job = body["job"]
    assert body["script"].startswith("#!/bin/bash")
    assert job["environment"] == {"PATH": "/bin"}
    assert job["nodes"] == [1, 1] and job["gres"] == "gpu:4"
    assert job["time_limit"] == 120 and job["memory_per_node"] == 65536
    assert job["account"] == "acme-acct" and job["qos"] == "acme-qos"
    assert job["standard_output"].endswith("/train-llm-%j.out")


@pytest.mark.parametrize("version", ["0.0.40", "0.0.41", "0.0.44"])
def test_request_shape_data_parser(root: Path, version: str) -> None:
    body = job_description(_submission(root), version, {"PATH": "/bin"})
    job = body["job"]
    assert job["environment"] == ["PATH=/bin"]
    assert job["minimum_nodes"] == job["maximum_nodes"] == 1
    assert job["tres_per_node"] == "gres/gpu:4"
    assert job["time_limit"] == {"set": True, "infinite": False, "number": 120}
    if version >= "0.0.41":
        assert "script" not in body and job["script"].startswith("#!/bin/bash")
    else:
        assert body["script"].startswith("#!/bin/bash")


def test_option_restd_cannot_express_is_refused(root: Path) -> None:
    sub = _submission(root)
    sub = type(sub)(sub.script, sub.env, sub.user, (*sub.options, ("segment", "4")), sub.notes)
    with pytest.raises(InputError, match="slurm-cli"):
        job_description(sub, "0.0.40", {})
    for version in ("0.0.41", "0.0.42", "0.0.43"):
        assert job_description(sub, version, {})["job"]["segment_size"] == 4


@pytest.mark.parametrize("release", ["24.05", "24.11", "25.05", "25.11"])
def test_segment_size_where_the_real_schemas_have_it(release: str) -> None:
    """The version rule for segment_size matches every captured slurmrestd schema."""
    doc = json.loads(data_file(f"slurm/slurmrestd/{release}/openapi-v3.json").read_text())
    schemas = doc["components"]["schemas"]
    versions = [n.split("_")[0].lstrip("v") for n in schemas if n.endswith("_job_desc_msg")]
    assert versions
    for version in versions:
        has = "segment_size" in schemas[f"v{version}_job_desc_msg"]["properties"]
        assert has == (_vtuple(version) >= SEGMENT_SIZE_SINCE), (release, version)


def test_submit_answers_of_every_shape() -> None:
    assert submitted_job_id({"job_id": 42, "step_id": "batch", "errors": []}) == "42"
    assert submitted_job_id({"result": {"job_id": 43}, "errors": []}) == "43"
    with pytest.raises(SchedulerError, match="Invalid account"):
        submitted_job_id(
            {
                "errors": [
                    {
                        "error": "Invalid account or account/partition combination specified",
                        "error_number": 2045,
                    }
                ]
            }
        )
    with pytest.raises(SchedulerError, match="without a job id"):
        submitted_job_id({"errors": []})


@pytest.mark.parametrize(("release", "version"), RELEASES)
def test_list_and_status_from_real_responses_only_own_jobs(
    root: Path, release: str, version: str
) -> None:
    jobs = restd(release, version, "slurm-jobs.json")
    owner = tenant_owning(root, jobs)
    mine = [
        j
        for j in jobs["jobs"]
        if j["account"] == owner.slurm_account and j["user_name"] == owner.unix_user
    ]
    running = restd(release, version, "slurm-job-gpus-running.json")
    rjob = running["jobs"][0]
    gpu_owner = make_tenant(root, slurm_account=rjob["account"], unix_users=(rjob["user_name"],))
    routes = {
        ("GET", f"/slurm/v{version}/jobs"): (200, jobs),
        ("GET", f"/slurm/v{version}/job/{rjob['job_id']}"): (200, running),
        ("GET", f"/slurm/v{version}/job/1578"): (
            500,
            restd(release, version, "slurm-job-unfound.json"),
        ),
    }
    server = FakeServer(routes)
    tokens = FakeTokens()
    backend = SlurmRestBackend(
        url="http://127.0.0.1:1", tokens=tokens, version=version, transport=server
    )
    listed = backend.list(owner)
    assert len(listed) == len(mine) and all(j.tenant == "acme" for j in listed)
    other = make_tenant(root, slurm_account="someone-else", unix_users=(owner.unix_user,))
    assert backend.list(other) == []
    status = backend.status(gpu_owner, str(rjob["job_id"]))
    assert status.state is JobState.RUNNING and status.gpus > 0
    with pytest.raises(UnknownNameError):
        backend.status(other, str(rjob["job_id"]))
    with pytest.raises(UnknownNameError):
        backend.status(gpu_owner, "1578")
    assert {h["X-SLURM-USER-NAME"] for _, _, h, _ in server.requests} <= {
        owner.unix_user,
        gpu_owner.unix_user,
        other.unix_user,
    }


def test_expired_or_invalid_token_is_an_error_without_the_token(root: Path) -> None:
    expired = restd("24.11", "0.0.42", "slurm-jwt-expired-token.json")
    server = FakeServer({("GET", "/slurm/v0.0.42/jobs"): (401, expired)})
    backend = SlurmRestBackend(
        url="http://127.0.0.1:1", tokens=FakeTokens(), version="0.0.42", transport=server
    )
    with pytest.raises(SchedulerError) as err:
        backend.list(make_tenant(root))
    assert SECRET not in str(err.value) and "acme01" in str(err.value)


def test_detects_version_then_submits_as_the_tenant(root: Path) -> None:
    openapi = json.loads(data_file("slurm/slurmrestd/24.11/openapi-v3.json").read_text())
    server = FakeServer(
        {
            ("GET", "/openapi/v3"): (200, openapi),
            ("POST", "/slurm/v0.0.42/job/submit"): (
                200,
                {"result": {"job_id": 7}, "job_id": 7, "errors": []},
            ),
        }
    )
    backend = SlurmRestBackend(url="http://127.0.0.1:1/", tokens=FakeTokens(), transport=server)
    doc = spec_doc()
    doc.pop("image")
    tenant = make_tenant(root)
    job = admit(spec_from_dict(doc), tenant, 0, backend="slurm")
    sub = backend.submit(job)
    assert sub.backend_job_id == "7" and "v0.0.42" in sub.notes[-1]
    method, path, headers, body = server.requests[-1]
    assert (method, path) == ("POST", "/slurm/v0.0.42/job/submit")
    assert headers["X-SLURM-USER-NAME"] == "acme01" and headers["X-SLURM-USER-TOKEN"] == SECRET
    assert body["job"]["account"] == "acme-acct"


def test_url_is_required_and_checked() -> None:
    with pytest.raises(InputError, match="URL"):
        SlurmRestBackend(tokens=FakeTokens())
    with pytest.raises(InputError, match="http"):
        SlurmRestBackend(url="file:///etc/passwd", tokens=FakeTokens())
