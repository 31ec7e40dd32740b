"""Hypothesis-generated hostile submissions: each is a clear 4xx and nothing reaches the backend."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.scheduler.test_api_support import ApiRig, build_rig, job_doc

IDENTITY_KEYS = ["account", "tenant", "namespace", "qos", "partition", "user", "uid", "queue"]
META = [";", "&&", "|", "$(id)", "`id`", "\n", "'", '"', "\\", "$HOME", ">", "*", "#", "\x00"]
UNICODE = ["é", "\u202e", "ｓｒｕｎ", "\u0000", "\ud7ff", "🙂", "\u200b", "\ud800"]
NASTY = st.lists(st.sampled_from([*META, *UNICODE, "a", "-", "."]), min_size=1, max_size=6).map(
    "".join
)


def _inject_identity(doc: dict[str, Any], draw: st.DrawFn) -> None:
    key = draw(st.sampled_from(IDENTITY_KEYS))
    key = draw(st.sampled_from([key, key.upper(), key.replace("_", "-"), f"slurm_{key}"]))
    value = draw(st.sampled_from(["globex", "globex-acct", "root", 0, ["globex"]]))
    where = draw(st.sampled_from(["top", "resources", "topology", "metadata"]))
    if where == "top":
        doc[key] = value
    elif where == "metadata":
        doc["metadata"] = {key: value}
    else:
        doc.setdefault(where, {})[key] = value


def _traverse(doc: dict[str, Any], draw: st.DrawFn) -> None:
    path = draw(
        st.sampled_from(
            [
                "/etc",
                "../../etc",
                "/tmp/../etc/passwd",
                "/srv/tenants/globex",
                "/",
                "/..",
                "a/../../..",
            ]
        )
    )
    if draw(st.booleans()):
        doc["workdir"] = path if path.startswith("/") else "/" + path
    else:
        doc["outputs"] = [path]


def _meta_name(doc: dict[str, Any], draw: st.DrawFn) -> None:
    # "job" + "a" or "-a" is a valid name: only draw suffixes that make it invalid
    doc["name"] = "job" + draw(NASTY.filter(lambda s: not re.fullmatch(r"(-*[a])*", s)))


def _absurd_size(doc: dict[str, Any], draw: st.DrawFn) -> None:
    field, value = draw(
        st.sampled_from(
            [
                ("nodes", 10**9),
                ("nodes", -1),
                ("nodes", 4096),
                ("gpus_per_node", 64),
                ("cpus_per_task", 10**6),
                ("memory", "999999999Ti"),
                ("time_limit", "99999d"),
                ("nodes", 1.5),
                ("nodes", True),
            ]
        )
    )
    doc["resources"] = {**doc["resources"], field: value}


def _scheduler_env(doc: dict[str, Any], draw: st.DrawFn) -> None:
    key = draw(st.sampled_from(["SLURM_ACCOUNT", "SBATCH_QOS", "CUDA_VISIBLE_DEVICES", "DCOPS_X"]))
    doc["env"] = {key: draw(st.sampled_from(["globex", "0", "$(id)"]))}


def _script_identity(doc: dict[str, Any], draw: st.DrawFn) -> None:
    del doc["command"]
    doc["script"] = draw(
        st.sampled_from(
            [
                "#SBATCH --account=globex\npython train.py",
                "srun -A globex hostname",
                "sbatch --qos=high x.sh",
                "export SLURM_ACCOUNT=globex",
                "scontrol update jobid=1 account=globex",
            ]
        )
    )


def _bad_argv(doc: dict[str, Any], draw: st.DrawFn) -> None:
    doc["command"] = draw(st.sampled_from([["-rf", "/"], ["python", "a\x00b"], [], "rm -rf /"]))


MUTATIONS = [
    _inject_identity,
    _traverse,
    _meta_name,
    _absurd_size,
    _scheduler_env,
    _script_identity,
    _bad_argv,
]


@st.composite
def hostile(draw: st.DrawFn) -> dict[str, Any]:
    doc = job_doc()
    chosen = draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3, unique=True))
    for mutate in chosen:
        if mutate is _bad_argv and "command" not in doc:
            continue
        mutate(doc, draw)
    if "command" not in doc and "script" not in doc:
        doc["command"] = ["-x"]
    return doc


@pytest.fixture(scope="module")
def hostile_rig(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from starlette.testclient import TestClient

    rig = build_rig(Path(tmp_path_factory.mktemp("hostile")), max_submissions_per_minute=100_000)
    with TestClient(rig.api.app) as client:
        yield rig, client


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(doc=hostile(), as_yaml=st.booleans())
def test_hostile_specs_are_refused_before_the_backend(
    hostile_rig: tuple[ApiRig, Any], doc: dict[str, Any], as_yaml: bool
) -> None:
    rig, client = hostile_rig
    if as_yaml:
        body = yaml.safe_dump(doc, allow_unicode=True).encode("utf-8", "surrogatepass")
        kind = "application/yaml"
    else:
        body = json.dumps(doc).encode("utf-8", "surrogatepass")
        kind = "application/json"
    response = client.post("/v1/jobs", content=body, headers={**rig.auth(), "Content-Type": kind})
    assert 400 <= response.status_code < 500, (response.status_code, response.text, doc)
    error = response.json()["error"]
    assert error["code"] in ("invalid_spec", "invalid_request"), error
    assert error["message"] and "\n" not in error["message"]
    assert "Traceback" not in response.text
    assert [c for c in rig.backend.calls if c[0] == "submit"] == []


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(size=st.integers(min_value=1024 * 1024 + 1, max_value=8 * 1024 * 1024))
def test_absurdly_large_bodies_are_413(hostile_rig: tuple[ApiRig, Any], size: int) -> None:
    rig, client = hostile_rig
    response = client.post(
        "/v1/jobs",
        content=b"#" * size,
        headers={**rig.auth(), "Content-Type": "application/yaml"},
    )
    assert response.status_code == 413
    assert rig.backend.submissions == []
