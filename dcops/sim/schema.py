"""The scenario file's JSON Schema, generated from :data:`dcops.sim.faults.FAULT_KINDS`.

The published copy is ``dcops/sim/scenario.schema.json``; regenerate it with
``python -m dcops.sim.schema > dcops/sim/scenario.schema.json`` after changing a
fault kind (a test checks that the two agree).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from dcops.sim.faults import COMMON_FAULT_KEYS, FAULT_KINDS, GpuKey

SCHEMA_ID = "https://dcops.invalid/schemas/sim-scenario.schema.json"

_PARAMS: dict[str, dict[str, Any]] = {
    "factor": {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": 1,
        "description": "multiplier on the healthy figure, in (0, 1]",
    },
    "code": {"type": "integer", "minimum": 1, "description": "XID code"},
    "message": {"type": "string", "description": "XID message text"},
    "nan": {"type": "boolean", "description": "sdc: results also hold NaN"},
    "temperature_c": {"type": "number", "description": "GPU temperature while throttling"},
    "uncorrectable": {"type": "integer", "minimum": 0},
    "correctable": {"type": "integer", "minimum": 0},
    "state": {"enum": ["pending", "failed"], "description": "row remapping state"},
    "links": {"type": "integer", "minimum": 1, "description": "how many links are down"},
}

_GPU = {
    "description": "GPU index on the node, or a list of them",
    "oneOf": [
        {"type": "integer", "minimum": 0},
        {
            "type": "array",
            "items": {"type": "integer", "minimum": 0},
            "minItems": 1,
            "uniqueItems": True,
        },
    ],
}


def _kind_rule(kind: str) -> dict[str, Any]:
    spec = FAULT_KINDS[kind]
    allowed = set(spec.required) | set(spec.optional)
    forbidden: dict[str, Any] = {p: False for p in _PARAMS if p not in allowed}
    required = list(spec.required)
    if spec.gpu is GpuKey.REQUIRED:
        required.insert(0, "gpu")
    elif spec.gpu is GpuKey.FORBIDDEN:
        forbidden["gpu"] = False
    then: dict[str, Any] = {"properties": forbidden}
    if required:
        then["required"] = required
    return {
        "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
        "then": then,
    }


def build_schema() -> dict[str, Any]:
    """The scenario JSON Schema (draft 2020-12) as a plain dict."""
    fault_props: dict[str, Any] = {
        "node": {
            "type": "string",
            "minLength": 1,
            "description": "node name or hostlist expression (sim-r01-t[01-04])",
        },
        "kind": {"enum": list(FAULT_KINDS), "description": "what is wrong"},
        "gpu": _GPU,
        "at_s": {
            "type": "number",
            "minimum": 0,
            "description": "seconds after start_time_s when the fault appears",
        },
        **_PARAMS,
    }
    assert set(COMMON_FAULT_KEYS) <= set(fault_props)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "dcops fleet simulator scenario",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "description": {"type": "string"},
            "sku": {"type": "string", "minLength": 1, "description": "SKU profile name"},
            "racks": {"type": "integer", "minimum": 1, "maximum": 1000},
            "site": {"type": "string", "minLength": 1, "description": "site file to reuse"},
            "prefix": {
                "type": "string",
                "pattern": "^[a-z][a-z0-9-]*$",
                "description": "node name prefix with racks (default sim)",
            },
            "seed": {"type": "integer", "minimum": 0},
            "noise": {"type": "number", "minimum": 0, "maximum": 0.5},
            "load": {"type": "number", "minimum": 0, "maximum": 1},
            "start_time_s": {"type": "number", "minimum": 0},
            "faults": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["node", "kind"],
                    "properties": fault_props,
                    "allOf": [_kind_rule(kind) for kind in FAULT_KINDS],
                },
            },
        },
        "anyOf": [{"required": ["racks"]}, {"required": ["site"]}],
    }


@cache
def packaged_schema() -> dict[str, Any]:
    """The published ``scenario.schema.json`` shipped with the package."""
    text = resources.files("dcops.sim").joinpath("scenario.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def render_schema() -> str:
    return json.dumps(build_schema(), indent=2) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(render_schema())
