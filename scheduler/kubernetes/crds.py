"""The vendored upstream CRDs and their structural schemas as JSON Schema (pure).

The CRDs live in :mod:`scheduler.kubernetes.schemas` as upstream wrote them, minus
documentation (``scripts/vendor-crd-schemas``, pins in ``upstream.toml``,
provenance in ``SOURCES.md``). :func:`served_crds` indexes every served version
by ``(apiVersion, kind)``; :func:`to_json_schema` turns a structural
``openAPIV3Schema`` into a draft 2020-12 JSON Schema that judges a manifest the
way an API server with ``fieldValidation=Strict`` does:

* an object with declared ``properties`` refuses unknown fields unless upstream
  marks it ``x-kubernetes-preserve-unknown-fields``; an object that declares
  neither properties nor ``additionalProperties`` accepts none (the server would
  prune them);
* ``x-kubernetes-int-or-string``, ``nullable``, OpenAPI's boolean
  ``exclusiveMinimum``/``exclusiveMaximum``, ``x-kubernetes-list-type: set``
  (unique items) and ``map`` (unique ``x-kubernetes-list-map-keys``) are honoured;
* the root ``metadata`` and that of embedded resources are checked as ObjectMeta
  (``metadata_ref``), as the server does for every object;
* CEL rules (``x-kubernetes-validations``) are NOT evaluated: they need the
  server. :func:`cel_rule_count` says how many a schema carries, and a live
  cluster's ``dryRun=All`` (see :mod:`scheduler.kubernetes.backend`) runs them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_PACKAGE = "scheduler.kubernetes.schemas"
_SOURCE = "dcops.io/source-"
_SCALARS = ("type", "enum", "pattern", "format", "minLength", "maxLength", "minItems")
_PASSTHROUGH = (
    *_SCALARS,
    "maxItems",
    "uniqueItems",
    "minimum",
    "maximum",
    "multipleOf",
    "minProperties",
    "maxProperties",
    "required",
    "default",
)


@dataclass(frozen=True)
class CrdVersion:
    """One served version of a vendored CRD."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    deprecated: bool
    storage: bool
    schema: Mapping[str, Any]  # the structural openAPIV3Schema, as vendored
    source: Mapping[str, str]  # repo, tag, commit, path, sha256 (from the annotations)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


def _read_vendored() -> Iterator[dict[str, Any]]:
    folder = resources.files(SCHEMA_PACKAGE)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            yield json.loads(entry.read_text(encoding="utf-8"))


@cache
def served_crds() -> dict[tuple[str, str], CrdVersion]:
    """Every served version of every vendored CRD, keyed by ``(apiVersion, kind)``."""
    out: dict[tuple[str, str], CrdVersion] = {}
    for crd in _read_vendored():
        spec = crd["spec"]
        annotations = crd["metadata"].get("annotations") or {}
        source = {k.removeprefix(_SOURCE): v for k, v in annotations.items() if _SOURCE in k}
        for ver in spec["versions"]:
            if not ver.get("served"):
                continue
            entry = CrdVersion(
                group=spec["group"],
                version=ver["name"],
                kind=spec["names"]["kind"],
                plural=spec["names"]["plural"],
                namespaced=spec["scope"] == "Namespaced",
                deprecated=bool(ver.get("deprecated")),
                storage=bool(ver.get("storage")),
                schema=ver["schema"]["openAPIV3Schema"],
                source=source,
            )
            out[(entry.api_version, entry.kind)] = entry
    return out


def cel_rule_count(node: object) -> int:
    """How many CEL rules (``x-kubernetes-validations``) a structural schema holds."""
    if isinstance(node, Mapping):
        own = len(node.get("x-kubernetes-validations") or [])
        return own + sum(cel_rule_count(v) for k, v in node.items() if k != "enum")
    if isinstance(node, list):
        return sum(cel_rule_count(v) for v in node)
    return 0


def _with_null(out: dict[str, Any]) -> None:
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]


def _exclusive(out: dict[str, Any], node: Mapping[str, Any], bound: str, flag: str) -> None:
    if node.get(flag) is True and bound in out:
        out[flag] = out.pop(bound)


def to_json_schema(
    node: Mapping[str, Any], metadata_ref: str, *, value_validation: bool = False
) -> dict[str, Any]:
    """Draft 2020-12 JSON Schema for a structural schema node (see the module doc)."""
    out: dict[str, Any] = {k: node[k] for k in _PASSTHROUGH if k in node}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    _exclusive(out, node, "minimum", "exclusiveMinimum")
    _exclusive(out, node, "maximum", "exclusiveMaximum")
    every: list[dict[str, Any]] = [
        to_json_schema(s, metadata_ref, value_validation=True) for s in node.get("allOf", ())
    ]
    if "anyOf" in node:
        subs = [to_json_schema(s, metadata_ref, value_validation=True) for s in node["anyOf"]]
        if "anyOf" in out:  # int-or-string already took the slot
            every.append({"anyOf": subs})
        else:
            out["anyOf"] = subs
    if "oneOf" in node:
        out["oneOf"] = [
            to_json_schema(s, metadata_ref, value_validation=True) for s in node["oneOf"]
        ]
    if every:
        out["allOf"] = every
    if "not" in node:
        out["not"] = to_json_schema(node["not"], metadata_ref, value_validation=True)
    if "items" in node:
        out["items"] = to_json_schema(node["items"], metadata_ref)
    list_type = node.get("x-kubernetes-list-type")
    if list_type == "set":
        out["uniqueItems"] = True
    elif list_type == "map" and node.get("x-kubernetes-list-map-keys"):
        out["x-kubernetes-list-map-keys"] = list(node["x-kubernetes-list-map-keys"])
    props = dict(node.get("properties") or {})
    embedded = bool(node.get("x-kubernetes-embedded-resource"))
    if props or node.get("type") == "object" or embedded:
        converted = {name: to_json_schema(sub, metadata_ref) for name, sub in props.items()}
        if embedded:
            converted.setdefault("apiVersion", {"type": "string"})
            converted.setdefault("kind", {"type": "string"})
            converted["metadata"] = {"$ref": metadata_ref}
        if converted:
            out["properties"] = converted
        extra = node.get("additionalProperties")
        if isinstance(extra, Mapping):
            out["additionalProperties"] = to_json_schema(extra, metadata_ref)
        elif extra is False or (
            not value_validation
            and extra is None
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
    if node.get("nullable"):
        _with_null(out)
    return out


def root_json_schema(
    entry: CrdVersion, metadata_ref: str, schema_id: str | None = None
) -> dict[str, Any]:
    """The JSON Schema of a whole object of ``entry``'s kind (apiVersion and kind pinned)."""
    out = to_json_schema(entry.schema, metadata_ref)
    props = out.setdefault("properties", {})
    props["apiVersion"] = {"const": entry.api_version}
    props["kind"] = {"const": entry.kind}
    props["metadata"] = {"$ref": metadata_ref}
    out["required"] = sorted({*out.get("required", []), "apiVersion", "kind", "metadata"})
    out["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    if schema_id:
        out["$id"] = schema_id
    return out
