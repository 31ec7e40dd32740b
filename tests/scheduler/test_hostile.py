"""Hypothesis-generated hostile specs: each is refused, or renders inside the tenant."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcops.errors import InputError
from scheduler.guards import is_within, normalize_abs
from scheduler.kubernetes.render import QUEUE_LABEL, find_pod_escapes, render_kubernetes
from scheduler.slurm.render import SlurmSite, parse_sbatch_options, render_slurm
from scheduler.spec import spec_from_dict
from scheduler.tenants.contract import admit
from tests.scheduler.conftest import make_tenant, spec_doc

ROOT = Path("/srv/tenants/acme")
TENANT = make_tenant(ROOT)

IDENTITY = [
    "--account=evil",
    "-A evil",
    "--qos=high",
    "-p debug",
    "--partition=debug",
    "--uid=0",
    "--reservation=maint",
    "-q high",
    "--gid=0",
    "-M other",
]
META = [";", "&&", "|", "$(id)", "`id`", "\n", "'", '"', "\\", "$HOME", ">", "<", "*", "#"]
NASTY = st.sampled_from(
    META + IDENTITY + ["..", "../", "/etc", "\x00", "\x1b[2J", "é", "\u202e", "ｓｒｕｎ", " "]
)
TEXT = st.lists(st.one_of(NASTY, st.text(max_size=8)), max_size=6).map("".join)
PATHS = st.lists(
    st.sampled_from(["..", ".", "ckpt", "/etc", "", "x y", "%j", "a;b", "/srv/tenants/other"]),
    max_size=6,
).map("/".join)
IDENTITY_LINES = st.one_of(
    st.sampled_from(IDENTITY).map(lambda o: f"#SBATCH {o}"),
    st.tuples(
        st.sampled_from(["srun", "sbatch", "salloc", "/usr/bin/srun"]), st.sampled_from(IDENTITY)
    ).map(lambda t: f"{t[0]} {t[1]} hostname"),
    st.sampled_from(["SBATCH_ACCOUNT", "SLURM_ACCOUNT", "SLURM_QOS", "SBATCH_PARTITION"]).map(
        lambda v: f"export {v}=evil"
    ),
)
SCRIPT_LINES = st.one_of(IDENTITY_LINES, TEXT)
ENV_KEYS = st.one_of(
    st.sampled_from(
        [
            "SLURM_ACCOUNT",
            "SBATCH_QOS",
            "SALLOC_PARTITION",
            "NVIDIA_VISIBLE_DEVICES",
            "OK_VAR",
            "PATH",
        ]
    ),
    TEXT,
)


@st.composite
def hostile_docs(draw: st.DrawFn) -> dict[str, Any]:
    doc = spec_doc()
    if draw(st.booleans()):
        doc["name"] = draw(st.one_of(TEXT, st.just("ok-name")))
    if draw(st.booleans()):
        doc["command"] = draw(st.lists(TEXT, min_size=1, max_size=4))
    else:
        del doc["command"]
        doc["script"] = "\n".join(draw(st.lists(SCRIPT_LINES, min_size=1, max_size=5))) or "x"
    doc["env"] = draw(st.dictionaries(ENV_KEYS, TEXT, max_size=3))
    doc["outputs"] = draw(st.lists(PATHS, max_size=3))
    if draw(st.booleans()):
        doc["workdir"] = draw(PATHS)
    doc["resources"] = {
        "nodes": draw(st.one_of(st.integers(1, 4), st.integers(-5, 10**7))),
        "gpus_per_node": draw(st.one_of(st.integers(0, 4), st.integers(-1, 10**4))),
        "time_limit": draw(st.sampled_from(["1h", "10000d", "0s", "99:99:99", "2-00:00:00"])),
        "memory": draw(st.sampled_from(["64Gi", "999999Ti", "0", 1, "1e9"])),
    }
    if draw(st.booleans()):
        doc[
            draw(
                st.sampled_from(
                    [
                        "account",
                        "qos",
                        "partition",
                        "namespace",
                        "hostNetwork",
                        "privileged",
                        "serviceAccountName",
                        "user",
                        "uid",
                    ]
                )
            )
        ] = "evil"
    return doc


def _check_slurm(job: Any) -> None:
    sub = render_slurm(job, SlurmSite(pyxis=True))
    opts = parse_sbatch_options(sub.script)
    values = dict(opts)
    assert values["account"] == TENANT.slurm_account
    assert values["qos"] == TENANT.slurm_qos
    assert values["partition"] == ",".join(TENANT.slurm_partitions)
    assert [k for k, _ in opts].count("account") == 1
    for key in ("uid", "gid", "reservation", "clusters"):
        assert key not in values
    for key in ("chdir", "output", "error"):
        assert is_within(normalize_abs(str(values[key])), str(ROOT))
    # the shell body parses back into exactly the words we meant
    last = sub.script.rstrip("\n").splitlines()[-1]
    if job.spec.command is not None:
        assert shlex.split(last)[-len(job.spec.command) :] == list(job.spec.command)


def _check_kubernetes(job: Any) -> None:
    for manifest in render_kubernetes(job):
        assert manifest["metadata"]["namespace"] == TENANT.k8s_namespace
        if manifest["kind"] != "ComputeDomain":
            assert manifest["metadata"]["labels"][QUEUE_LABEL] == TENANT.k8s_local_queue
        assert find_pod_escapes(manifest) == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_docs())
def test_hostile_specs_never_escape(doc: dict[str, Any]) -> None:
    try:
        spec = spec_from_dict(doc)
        job = admit(spec, TENANT, 0, resolve=normalize_abs)
    except InputError as err:
        assert "\n" not in str(err) and str(err)
        return
    assert is_within(job.workdir, str(ROOT))
    assert all(is_within(o, str(ROOT)) for o in job.outputs)
    assert job.spec.name.isascii() and job.spec.name.isprintable()
    assert not any(k.startswith(("SLURM_", "SBATCH_", "SALLOC_")) for k in job.spec.env)
    try:
        _check_slurm(job)
        _check_kubernetes(job)
    except InputError as err:  # e.g. a topology the site cannot express
        assert "\n" not in str(err)


@settings(max_examples=200, deadline=None)
@given(st.lists(IDENTITY_LINES, min_size=1, max_size=3), st.lists(TEXT, max_size=3))
def test_identity_lines_always_refused(lines: list[str], noise: list[str]) -> None:
    body = [ln for pair in zip(noise, lines, strict=False) for ln in pair] + lines
    doc = spec_doc(script="echo start\n" + "\n".join(body))
    del doc["command"]
    try:
        admit(spec_from_dict(doc), TENANT, 0, resolve=normalize_abs)
    except InputError:
        return
    raise AssertionError(f"admitted: {lines!r}")
