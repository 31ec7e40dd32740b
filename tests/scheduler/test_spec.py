"""Job spec loading: the published schema, typed values, and every kind of bad spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dcops.errors import InputError
from scheduler.spec import (
    PriorityClass,
    jobspec_schema,
    load_spec,
    parse_memory_mib,
    parse_time_limit_s,
    spec_from_dict,
)
from tests.scheduler.conftest import spec_doc

GOOD_YAML = """\
apiVersion: dcops/v1
name: pretrain-7b
resources:
  nodes: 8
  gpus_per_node: 4
  tasks_per_node: 4
  cpus_per_task: 16
  memory: 512Gi
  time_limit: "1-12:00:00"
topology:
  segment: 4
image: nvcr.io/nvidia/pytorch:25.01-py3
command: [torchrun, --nproc-per-node=4, train.py]
env:
  NCCL_DEBUG: WARN
outputs: [checkpoints]
retries:
  max_restarts: 3
  on_exit_codes: [42]
priority_class: tenant
"""


def test_yaml_spec_loads_typed(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(GOOD_YAML)
    spec = load_spec(path)
    assert spec.name == "pretrain-7b"
    assert spec.resources.nodes == 8 and spec.resources.gpus_total == 32
    assert spec.resources.memory_mib == 512 * 1024
    assert spec.resources.time_limit_s == 36 * 3600
    assert spec.topology.segment == 4 and not spec.topology.same_nvlink_domain
    assert spec.command == ("torchrun", "--nproc-per-node=4", "train.py")
    assert spec.env == {"NCCL_DEBUG": "WARN"}
    assert spec.outputs == ("checkpoints",)
    assert spec.retries.max_restarts == 3 and spec.retries.on_exit_codes == (42,)
    assert spec.priority_class is PriorityClass.TENANT


def test_json_spec_loads(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(spec_doc(script="#!/bin/bash\necho hi\n", command=None)))
    data = json.loads(path.read_text())
    del data["command"]
    path.write_text(json.dumps(data))
    spec = load_spec(path)
    assert spec.script is not None and spec.command is None
    assert spec.resources.gpus_per_node == 4


def test_schema_is_strict_everywhere() -> None:
    schema = jobspec_schema()
    assert schema["additionalProperties"] is False
    for sub in ("resources", "topology", "retries"):
        assert schema["properties"][sub]["additionalProperties"] is False


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"account": "other"}, "'account' was unexpected"),
        ({"partition": "debug"}, "'partition' was unexpected"),
        ({"namespace": "kube-system"}, "'namespace' was unexpected"),
        ({"hostNetwork": True}, "'hostNetwork' was unexpected"),
        ({"securityContext": {"privileged": True}}, "'securityContext' was unexpected"),
        ({"serviceAccountName": "admin"}, "'serviceAccountName' was unexpected"),
        ({"volumes": [{"hostPath": {"path": "/"}}]}, "'volumes' was unexpected"),
        ({"resources": {"time_limit": "1h", "qos": "high"}}, "resources"),
        ({"topology": {"rack": "r1", "hostPID": True}}, "topology"),
        ({"name": "Bad_Name"}, "name"),
        ({"name": "x" * 64}, "name"),
        ({"name": "jöb"}, "name"),
        ({"resources": {"time_limit": "forever"}}, "resources.time_limit"),
        ({"resources": {"time_limit": "1h", "nodes": 0}}, "resources.nodes"),
        ({"resources": {"time_limit": "1h", "nodes": 10**9}}, "resources.nodes"),
        ({"resources": {"time_limit": "1h", "gpus_per_node": 64}}, "resources.gpus_per_node"),
        ({"resources": {"time_limit": "1h", "memory": "lots"}}, "resources.memory"),
        ({"resources": {"time_limit": "1h", "nodes": "2"}}, "resources.nodes"),
        ({"command": []}, "command"),
        ({"command": "python train.py"}, "command"),
        ({"env": {"1BAD": "x"}}, "env"),
        ({"image": "img; rm -rf /"}, "image"),
        ({"priority_class": "urgent"}, "priority_class"),
        ({"retries": {"max_restarts": -1}}, "retries.max_restarts"),
    ],
)
def test_bad_specs_name_the_field(change: dict[str, Any], needle: str) -> None:
    with pytest.raises(InputError) as err:
        spec_from_dict(spec_doc(**change), source="job.yaml")
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_command_and_script_are_exclusive() -> None:
    with pytest.raises(InputError, match="exactly one of 'command'"):
        spec_from_dict(spec_doc(script="echo hi"))
    doc = spec_doc()
    del doc["command"]
    with pytest.raises(InputError, match="exactly one of 'command'"):
        spec_from_dict(doc)


def test_missing_required() -> None:
    doc = spec_doc()
    del doc["name"]
    with pytest.raises(InputError, match="'name' is a required property"):
        spec_from_dict(doc)


def test_trailing_newline_in_name_is_rejected() -> None:
    # jsonschema's pattern uses Python's '$', which accepts "x\n"; the loader must not.
    with pytest.raises(InputError, match="name"):
        spec_from_dict(spec_doc(name="train\n"))


def test_segment_must_divide_nodes() -> None:
    doc = spec_doc(resources={"nodes": 6, "time_limit": "1h"}, topology={"segment": 4})
    with pytest.raises(InputError, match=r"topology.segment: 4 does not divide"):
        spec_from_dict(doc)


def test_unquoted_yaml_clock_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(GOOD_YAML.replace('"1-12:00:00"', "1:30:00"))
    with pytest.raises(InputError, match="quote it"):
        load_spec(path)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("name: [unclosed", "not valid YAML"),
        ("- a\n- b\n", "expected an object|is not of type 'object'"),
        ("a: 1\n---\nb: 2\n", "exactly one YAML/JSON document"),
        ("", "exactly one YAML/JSON document"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=needle):
        load_spec(path)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read job spec"):
        load_spec(tmp_path / "nope.yaml")
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="not UTF-8"):
        load_spec(path)


@pytest.mark.parametrize(
    ("text", "mib"), [(1, 1), ("512Mi", 512), ("64Gi", 65536), ("1G", 954), ("1Ti", 1048576)]
)
def test_memory_units(text: int | str, mib: int) -> None:
    assert parse_memory_mib(text) == mib


@pytest.mark.parametrize("text", ["0Mi", "99999999Ti", "64Gi\n", True])
def test_memory_rejects(text: Any) -> None:
    with pytest.raises(InputError):
        parse_memory_mib(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90m", 5400), ("4h", 14400), ("2d", 172800), ("01:30:00", 5400), ("1-00:00:01", 86401)],
)
def test_time_limits(text: str, seconds: int) -> None:
    assert parse_time_limit_s(text) == seconds


@pytest.mark.parametrize("text", ["0s", "400d", "٣h", "1:30:00\n", "1:60:00"])
def test_time_limit_rejects(text: str) -> None:
    with pytest.raises(InputError):
        parse_time_limit_s(text)
