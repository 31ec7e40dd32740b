"""The one job spec a tenant submits, whatever the backend (Slurm or Kubernetes).

A spec says *what* to run and *how big*; it never says *as whom*: account, QOS,
partition, user, namespace and queue come only from the tenant contract
(:mod:`scheduler.tenants.contract`). The published JSON Schema
(``scheduler/jobspec.schema.json``) is strict: unknown keys are rejected, so an
``account:`` or ``hostNetwork:`` smuggled into a spec fails here, before any
tenant rule runs. Every rejection is an :class:`dcops.errors.InputError` naming
the field.

Loading reads one file (YAML or JSON); everything else is pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from dcops.errors import InputError

SCHEMA_RESOURCE = "jobspec.schema.json"

_MEMORY_UNITS_MIB: dict[str, float] = {
    "K": 1000 / 1024 / 1024,
    "M": 1000 * 1000 / 1024 / 1024,
    "G": 1000**3 / 1024**2,
    "T": 1000**4 / 1024**2,
    "Ki": 1 / 1024,
    "Mi": 1,
    "Gi": 1024,
    "Ti": 1024**2,
}
_MEMORY_RE = re.compile(r"^([1-9][0-9]{0,9})(K|M|G|T|Ki|Mi|Gi|Ti)$")
_SUFFIX_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CLOCK_RE = re.compile(r"^(?:([0-9]{1,3})-)?([0-9]{1,3}):([0-5][0-9]):([0-5][0-9])$")
MAX_TIME_LIMIT_S = 365 * 86400
MAX_MEMORY_MIB = 16 * 1024 * 1024


class PriorityClass(StrEnum):
    """Who the work is for: the operator's own training, or a paying tenant."""

    IN_HOUSE = "in-house"
    TENANT = "tenant"


@dataclass(frozen=True)
class Resources:
    """Size of the job. Memory is per node; CPUs are per task."""

    time_limit_s: int
    nodes: int = 1
    gpus_per_node: int = 0
    tasks_per_node: int = 1
    cpus_per_task: int = 1
    memory_mib: int | None = None

    @property
    def gpus_total(self) -> int:
        return self.nodes * self.gpus_per_node


@dataclass(frozen=True)
class Topology:
    """Placement wishes. ``segment`` = nodes that must share one NVLink domain."""

    same_nvlink_domain: bool = False
    segment: int | None = None
    rack: str | None = None


@dataclass(frozen=True)
class Retries:
    """Automatic restarts: after node failures and/or on the listed exit codes."""

    max_restarts: int = 0
    on_node_failure: bool = True
    on_exit_codes: tuple[int, ...] = ()


@dataclass(frozen=True)
class JobSpec:
    """One job, exactly one of ``command`` (argv) or ``script`` (bash body)."""

    name: str
    resources: Resources
    topology: Topology = field(default_factory=Topology)
    image: str | None = None
    command: tuple[str, ...] | None = None
    script: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    workdir: str | None = None
    retries: Retries = field(default_factory=Retries)
    priority_class: PriorityClass = PriorityClass.TENANT


@cache
def jobspec_schema() -> dict[str, Any]:
    """The published JSON Schema of a job spec."""
    text = resources.files("scheduler").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def parse_memory_mib(value: int | str, *, field_name: str = "resources.memory") -> int:
    """``64Gi`` / ``64G`` / ``512Mi`` / an int of MiB -> MiB (rounded up)."""
    if isinstance(value, bool):
        raise InputError(f"{field_name}: expected MiB or a size like '64Gi', got {value!r}")
    if isinstance(value, int):
        mib = value
    else:
        match = _MEMORY_RE.fullmatch(value)
        if match is None:
            raise InputError(f"{field_name}: expected MiB or a size like '64Gi', got {value!r}")
        raw = int(match.group(1)) * _MEMORY_UNITS_MIB[match.group(2)]
        mib = int(raw) if raw == int(raw) else int(raw) + 1
    if mib < 1 or mib > MAX_MEMORY_MIB:
        raise InputError(f"{field_name}: {value!r} is outside 1 MiB..16 TiB")
    return mib


def parse_time_limit_s(value: str, *, field_name: str = "resources.time_limit") -> int:
    """``90m`` / ``4h`` / ``2d`` / ``HH:MM:SS`` / ``D-HH:MM:SS`` -> seconds."""
    seconds: int
    if value[-1:] in _SUFFIX_S and value[:-1].isdigit() and value[:-1].isascii():
        seconds = int(value[:-1]) * _SUFFIX_S[value[-1]]
    else:
        match = _CLOCK_RE.fullmatch(value)
        if match is None:
            raise InputError(
                f"{field_name}: expected '90m', '4h', '2d', 'HH:MM:SS' or 'D-HH:MM:SS', "
                f"got {value!r}"
            )
        days, hours, minutes, secs = (int(g) if g else 0 for g in match.groups())
        seconds = ((days * 24 + hours) * 60 + minutes) * 60 + secs
    if seconds < 1 or seconds > MAX_TIME_LIMIT_S:
        raise InputError(f"{field_name}: {value!r} is outside 1 s..365 days")
    return seconds


def _field_path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(spec)"


def validate_document(data: object, *, source: str = "<spec>") -> None:
    """Check ``data`` against the published schema; InputError names the field."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    validator = Draft202012Validator(jsonschema_schema_checked())
    errors = list(validator.iter_errors(data))
    if not errors:
        return
    # The root oneOf only encodes "command xor script": say that in words.
    rest = [e for e in errors if e.path or e.validator != "oneOf"]
    if not rest:
        raise InputError(
            f"{source}: command/script: give exactly one of 'command' (argv list) or 'script'"
        )
    err = best_match(rest)
    where = _field_path(err.absolute_path)
    hint = ""
    if err.validator == "additionalProperties":
        hint = " (the schema is strict)"
    elif err.validator == "type" and "string" in str(err.validator_value):
        hint = " (quote it in YAML: bare 1:30:00, yes or 2024-01-01 are not strings)"
    message = err.message if len(err.message) <= 240 else err.message[:240] + "..."
    path = list(err.absolute_path)
    if path[:1] == ["env"] and len(path) > 1:
        # never repeat an environment value (tokens live there): name the variable only
        message = f"the value does not meet the schema ({err.validator}: a string is required)"
        hint = ""
    raise InputError(f"{source}: {where}: {message}{hint}")


@cache
def jsonschema_schema_checked() -> dict[str, Any]:
    """The schema, itself checked once against the JSON Schema meta-schema."""
    from jsonschema import Draft202012Validator

    schema = jobspec_schema()
    Draft202012Validator.check_schema(schema)
    return schema


def spec_from_dict(data: object, *, source: str = "<spec>") -> JobSpec:
    """Validate a decoded document and build the typed spec."""
    from scheduler.guards import DNS_LABEL, ENV_NAME, IMAGE_REF, RACK_NAME, check_name

    validate_document(data, source=source)
    assert isinstance(data, dict)  # the schema guarantees an object
    # JSON Schema patterns run through Python's re.search, whose '$' accepts a
    # trailing newline: re-check every pattern-guarded string with fullmatch.
    check_name(data["name"], DNS_LABEL, f"{source}: name", "job name (DNS label)")
    if "image" in data:
        check_name(data["image"], IMAGE_REF, f"{source}: image", "container image reference")
    if "rack" in data.get("topology", {}):
        check_name(data["topology"]["rack"], RACK_NAME, f"{source}: topology.rack", "rack name")
    for key in data.get("env", {}):
        check_name(key, ENV_NAME, f"{source}: env", "environment variable name")
    res = data["resources"]
    _require_integers(data, source)
    memory = res.get("memory")
    resources_ = Resources(
        time_limit_s=parse_time_limit_s(res["time_limit"], field_name=f"{source}: time_limit"),
        nodes=res.get("nodes", 1),
        gpus_per_node=res.get("gpus_per_node", 0),
        tasks_per_node=res.get("tasks_per_node", 1),
        cpus_per_task=res.get("cpus_per_task", 1),
        memory_mib=None
        if memory is None
        else parse_memory_mib(memory, field_name=f"{source}: resources.memory"),
    )
    topo = data.get("topology", {})
    topology = Topology(
        same_nvlink_domain=topo.get("same_nvlink_domain", False),
        segment=topo.get("segment"),
        rack=topo.get("rack"),
    )
    if topology.segment is not None and resources_.nodes % topology.segment:
        raise InputError(
            f"{source}: topology.segment: {topology.segment} does not divide "
            f"resources.nodes={resources_.nodes}"
        )
    retr = data.get("retries", {})
    retries = Retries(
        max_restarts=retr.get("max_restarts", 0),
        on_node_failure=retr.get("on_node_failure", True),
        on_exit_codes=tuple(retr.get("on_exit_codes", ())),
    )
    command = data.get("command")
    return JobSpec(
        name=data["name"],
        resources=resources_,
        topology=topology,
        image=data.get("image"),
        command=None if command is None else tuple(command),
        script=data.get("script"),
        env=dict(data.get("env", {})),
        outputs=tuple(data.get("outputs", ())),
        workdir=data.get("workdir"),
        retries=retries,
        priority_class=PriorityClass(data.get("priority_class", PriorityClass.TENANT.value)),
    )


_INTEGER_FIELDS = (
    ("resources", "nodes"),
    ("resources", "gpus_per_node"),
    ("resources", "tasks_per_node"),
    ("resources", "cpus_per_task"),
    ("topology", "segment"),
    ("retries", "max_restarts"),
)


def _require_integers(data: dict[str, Any], source: str) -> None:
    """JSON Schema's "integer" accepts 1.0; the renderers need ints (``--nodes=1.0``)."""
    for section, key in _INTEGER_FIELDS:
        value = data.get(section, {}).get(key)
        if value is not None and (type(value) is not int):
            raise InputError(f"{source}: {section}.{key}: expected an integer, got {value!r}")
    memory = data["resources"].get("memory")
    if memory is not None and type(memory) not in (int, str):
        raise InputError(
            f"{source}: resources.memory: expected MiB or a size like '64Gi', got {memory!r}"
        )
    codes = data.get("retries", {}).get("on_exit_codes", [])
    if any(type(c) is not int for c in codes):
        raise InputError(f"{source}: retries.on_exit_codes: expected integers")


def decode_document(text: str, *, source: str) -> object:
    """Decode YAML (a superset of JSON) with bounded cost (:mod:`dcops.docload`): one
    document, no anchors or aliases, bounded nesting, string keys only."""
    from dcops.docload import load_yaml

    docs = load_yaml(text, source=source, multi=True, string_keys=True)
    if len(docs) != 1:
        raise InputError(f"{source}: expected exactly one YAML/JSON document, found {len(docs)}")
    return docs[0]


def load_spec(path: str | Path) -> JobSpec:
    """Read a YAML or JSON spec file and validate it. The only I/O in the spec path."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{p}: cannot read job spec: {exc.strerror or exc}") from exc
    if len(raw) > 4 * 1024 * 1024:
        raise InputError(f"{p}: job spec is larger than 4 MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{p}: job spec is not UTF-8 text") from exc
    return spec_from_dict(decode_document(text, source=str(p)), source=str(p))
