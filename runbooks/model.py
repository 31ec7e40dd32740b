"""Runbooks as data: YAML files checked against ``runbooks/runbook.schema.json``.

A runbook names what triggers it (XIDs, immediate buckets, health checks,
burn-in failures), its parameters, preconditions, steps and ``on_failure``
(rollback steps, then an escalation). Each step has a kind (see
:data:`STEP_KINDS`), a timeout, retries, whether it is idempotent (safe to
run again after a crash: a non-idempotent step asks for approval first), and,
for destructive steps, the autonomy level it needs. ``{name}`` in a step's
strings is replaced by a parameter or by ``node``/``run_id``/``gpu``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from dcops.errors import InputError, LocatedInputError

STEP_KINDS = ("command", "check", "action", "wait_for", "burnin", "collect", "escalate", "approve")
#: Steps that change the world, and the autonomy they need unless the runbook says otherwise.
DESTRUCTIVE_ACTIONS = {"reboot": "approve", "gpu_reset": "approve", "service_restart": "approve"}
#: Kinds safe to run again after a crash unless the step says otherwise.
IDEMPOTENT_KINDS = frozenset({"check", "wait_for", "collect", "approve", "burnin"})
IDEMPOTENT_ACTIONS = frozenset({"drain", "resume"})
DEFAULT_TIMEOUT_S = {"wait_for": 900.0, "burnin": 1800.0, "collect": 120.0}

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class RunbookError(LocatedInputError):
    """A runbook file is malformed."""


@dataclass(frozen=True)
class Step:
    name: str
    kind: str
    spec: dict[str, Any]  # the step as written (kind-specific keys)
    timeout_s: float
    retries: int
    idempotent: bool
    autonomy: str | None  # the level this step needs (destructive steps), else None
    on_fail: str = "fail"

    def get(self, key: str, default: Any = None) -> Any:
        return self.spec.get(key, default)

    @property
    def destructive(self) -> bool:
        return self.kind == "action" and self.spec.get("action") in DESTRUCTIVE_ACTIONS

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "timeout_s": self.timeout_s,
            "retries": self.retries,
            "idempotent": self.idempotent,
            "autonomy": self.autonomy,
            **{k: v for k, v in self.spec.items() if k not in ("name", "kind")},
        }


@dataclass(frozen=True)
class Runbook:
    name: str
    description: str
    triggers: dict[str, Any]
    parameters: dict[str, Any]
    preconditions: tuple[Step, ...]
    steps: tuple[Step, ...]
    rollback: tuple[Step, ...]
    escalate_on_failure: bool
    path: str = ""
    version: int = 1
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def priority(self) -> int:
        return int(self.triggers.get("priority", 0))

    def step(self, name: str) -> Step:
        for s in (*self.preconditions, *self.steps, *self.rollback):
            if s.name == name:
                return s
        raise InputError(f"runbook {self.name}: no step {name!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "path": self.path,
            "triggers": self.triggers,
            "parameters": {k: v.get("default") for k, v in self.parameters.items()},
            "preconditions": [s.to_dict() for s in self.preconditions],
            "steps": [s.to_dict() for s in self.steps],
            "rollback": [s.to_dict() for s in self.rollback],
            "escalate_on_failure": self.escalate_on_failure,
        }


@cache
def schema() -> dict[str, Any]:
    """The published JSON Schema of a runbook file."""
    text = resources.files("runbooks").joinpath("runbook.schema.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _step(raw: dict[str, Any]) -> Step:
    kind = raw["kind"]
    action = raw.get("action")
    idempotent = raw.get(
        "idempotent",
        kind in IDEMPOTENT_KINDS or (kind == "action" and action in IDEMPOTENT_ACTIONS),
    )
    autonomy = raw.get("autonomy")
    if autonomy is None and kind == "action":
        autonomy = DESTRUCTIVE_ACTIONS.get(str(action))
    timeout = float(raw.get("timeout_s", DEFAULT_TIMEOUT_S.get(kind, 60.0)))
    return Step(
        name=raw["name"],
        kind=kind,
        spec=dict(raw),
        timeout_s=timeout,
        retries=int(raw.get("retries", 0)),
        idempotent=bool(idempotent),
        autonomy=autonomy,
        on_fail=str(raw.get("on_fail", "fail")),
    )


def parse_runbook(data: Any, path: str) -> Runbook:
    """Validate ``data`` (a loaded YAML document) and build the runbook."""
    from jsonschema import Draft202012Validator

    errors = sorted(Draft202012Validator(schema()).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path)
        raise RunbookError(path, err.message, key=key or None)
    assert isinstance(data, dict)
    pre = tuple(_step(s) for s in data.get("preconditions", []))
    steps = tuple(_step(s) for s in data["steps"])
    failure = data.get("on_failure", {})
    rollback = tuple(_step(s) for s in failure.get("rollback", []))
    names = [s.name for s in (*pre, *steps, *rollback)]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise RunbookError(path, f"step names must be unique, repeated: {', '.join(dupes)}")
    params = dict(data.get("parameters", {}))
    known = {*params, "node", "run_id", "gpu", "rack", "runbook", "data_dir"}
    for step in (*pre, *steps, *rollback):
        for text in _strings(step.spec):
            for name in _PLACEHOLDER.findall(text):
                if name not in known:
                    raise RunbookError(path, f"step {step.name}: unknown placeholder {{{name}}}")
    return Runbook(
        name=data["name"],
        description=data["description"],
        triggers=dict(data.get("triggers", {})),
        parameters=params,
        preconditions=pre,
        steps=steps,
        rollback=rollback,
        escalate_on_failure=bool(failure.get("escalate", True)),
        path=path,
        version=int(data.get("version", 1)),
        raw=data,
    )


@lru_cache(maxsize=256)
def _stored(text: str) -> Runbook:
    return parse_runbook(json.loads(text), "stored run")


def parse_stored(definition: Any) -> Runbook:
    """A runbook as a run stored it (validated once per distinct definition, then cached)."""
    text = definition if isinstance(definition, str) else json.dumps(definition, sort_keys=True)
    return _stored(text)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def substitute(value: Any, values: dict[str, Any]) -> Any:
    """``{name}`` placeholders in strings (and lists of them) replaced from ``values``."""
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), value)
    if isinstance(value, list):
        return [substitute(v, values) for v in value]
    return value


def load_runbook(path: Path) -> Runbook:
    """Load and validate one runbook file (errors name the file, line and key)."""
    from dcops.yamlfile import YamlFileError, load_located

    try:
        data, locs = load_located(path)
    except YamlFileError as exc:
        raise RunbookError(str(path), exc.what, line=exc.line) from exc
    try:
        return parse_runbook(data, str(path))
    except RunbookError as exc:
        if exc.key and exc.line is None:
            parts = tuple(int(p) if p.isdigit() else p for p in exc.key.split("."))
            raise RunbookError(str(path), exc.what, line=locs.line(parts), key=exc.key) from None
        raise
