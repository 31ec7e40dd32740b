"""The vendored upstream CRD schemas: pinned, stripped, converted faithfully, and used.

* every file named in ``upstream.toml`` is vendored with the pinned repo/tag/commit
  (a bump of the pin without re-vendoring fails here);
* the vendoring script strips documentation and nothing else;
* the structural -> JSON Schema conversion keeps Kubernetes' semantics;
* upstream's own example manifests validate (no false refusals).
"""

from __future__ import annotations

import copy
import importlib.machinery
import importlib.util
import json
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

from dcops import kube as api
from dcops.errors import InputError
from scheduler.kubernetes.crds import cel_rule_count, served_crds, to_json_schema
from scheduler.kubernetes.validate import (
    OBJECT_META_REF,
    crd_entry,
    crd_kinds,
    deprecations,
    validate_manifest,
)

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "scheduler" / "kubernetes" / "schemas"
EXAMPLES = ROOT / "tests" / "data" / "kubernetes"
WANTED = {"ClusterQueue", "LocalQueue", "ResourceFlavor", "Topology", "Workload"}


def _vendor_script() -> ModuleType:
    path = ROOT / "scripts" / "vendor-crd-schemas"
    loader = importlib.machinery.SourceFileLoader("vendor_crd_schemas", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_every_pinned_file_is_vendored_at_its_pin() -> None:
    pins = tomllib.loads((SCHEMAS / "upstream.toml").read_text())
    vendored = {p.name: json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}
    by_path = {
        crd["metadata"]["annotations"]["dcops.io/source-path"]: crd for crd in vendored.values()
    }
    sources = (SCHEMAS / "SOURCES.md").read_text()
    expected = 0
    for pin in pins.values():
        for path in pin["files"]:
            expected += 1
            ann = by_path[path]["metadata"]["annotations"]
            assert ann["dcops.io/source-repo"] == pin["repo"]
            assert ann["dcops.io/source-tag"] == pin["tag"]
            assert ann["dcops.io/source-commit"] == pin["commit"]
            assert len(ann["dcops.io/source-sha256"]) == 64
            url = f"https://github.com/{pin['repo']}/blob/{pin['commit']}/{path}"
            assert url in sources
    assert len(vendored) == expected  # nothing stale, nothing hand-written left


def test_the_kinds_the_issue_names_are_there() -> None:
    kinds = {kind for _, kind in crd_kinds()}
    assert kinds >= WANTED | {"JobSet", "ComputeDomain"}
    # every CRD kind the adapter talks to is served by a vendored schema
    for kind in api.KINDS.values():
        if "/" in kind.api_version and "." in kind.group:
            entry = crd_entry(kind.api_version, kind.kind)
            assert entry.plural == kind.plural
            assert entry.namespaced == kind.namespaced


def _schema_nodes(node: Any) -> Any:
    """Every schema node (not property names) of a structural schema."""
    yield node
    for name in ("items", "not", "additionalProperties"):
        if isinstance(node.get(name), dict):
            yield from _schema_nodes(node[name])
    for sub in (node.get("properties") or {}).values():
        yield from _schema_nodes(sub)
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(key) or []:
            yield from _schema_nodes(sub)


def test_vendored_schemas_carry_no_documentation() -> None:
    count = 0
    for entry in served_crds().values():
        for node in _schema_nodes(entry.schema):
            count += 1
            assert not {"description", "example", "externalDocs"} & set(node)
    assert count > 4000  # the whole upstream trees (4,909 nodes at the pins), not stubs


def test_strip_keeps_property_names_and_validation() -> None:
    vendor = _vendor_script()
    raw = yaml.safe_dump(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "names": {
                    "kind": "Widget",
                    "listKind": "WidgetList",
                    "plural": "widgets",
                    "singular": "widget",
                },
                "scope": "Namespaced",
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "additionalPrinterColumns": [{"name": "x", "jsonPath": ".x"}],
                        "schema": {
                            "openAPIV3Schema": {
                                "description": "doc",
                                "type": "object",
                                "properties": {
                                    "description": {"description": "a field", "type": "string"},
                                    "size": {"type": "integer", "minimum": 1, "example": 3},
                                },
                                "x-kubernetes-validations": [{"rule": "self.size > 0"}],
                            }
                        },
                    }
                ],
            },
        }
    ).encode()
    pin = {"repo": "example/widgets", "tag": "v1", "commit": "0" * 40}
    name, crd = vendor.vendor("widgets", pin, "crd.yaml", raw)
    assert name == "example.com_widgets.json"
    version = crd["spec"]["versions"][0]
    assert "additionalPrinterColumns" not in version
    assert version["schema"]["openAPIV3Schema"] == {
        "type": "object",
        "properties": {
            "description": {"type": "string"},
            "size": {"type": "integer", "minimum": 1},
        },
        "x-kubernetes-validations": [{"rule": "self.size > 0"}],
    }
    assert crd["metadata"]["annotations"]["dcops.io/source-commit"] == "0" * 40


def _check(schema: dict[str, Any], value: Any) -> bool:
    return jsonschema.Draft202012Validator(to_json_schema(schema, OBJECT_META_REF)).is_valid(value)


def test_conversion_keeps_kubernetes_semantics() -> None:
    int_or_string = {"x-kubernetes-int-or-string": True}
    assert _check(int_or_string, 3) and _check(int_or_string, "50%")
    assert not _check(int_or_string, 1.5) and not _check(int_or_string, None)
    strict = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert _check(strict, {"a": "x"}) and not _check(strict, {"b": "x"})
    preserve = {**strict, "x-kubernetes-preserve-unknown-fields": True}
    assert _check(preserve, {"b": "x"}) and not _check(preserve, {"a": 1})
    assert not _check({"type": "object"}, {"pruned": 1})  # the server would drop it
    assert _check({"type": "object", "additionalProperties": {"type": "string"}}, {"k": "v"})
    nullable = {"type": "string", "nullable": True, "enum": ["a"]}
    assert _check(nullable, None) and not _check(nullable, "b")
    exclusive = {"type": "integer", "minimum": 0, "exclusiveMinimum": True}
    assert _check(exclusive, 1) and not _check(exclusive, 0)
    assert not _check({"type": "array", "x-kubernetes-list-type": "set"}, ["a", "a"])
    # anyOf inside value validation adds no strictness of its own
    any_of = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "anyOf": [{"required": ["a"]}, {"required": ["b"]}],
    }
    assert _check(any_of, {"b": "x"}) and not _check(any_of, {})


def test_list_map_keys_must_be_unique() -> None:
    cq = _upstream("kueue-v0.19.2_admin_single-clusterqueue-setup.yaml")[1]
    resources = cq["spec"]["resourceGroups"][0]["flavors"][0]["resources"]
    resources.append(copy.deepcopy(resources[0]))
    with pytest.raises(InputError, match=r"same key \(name='cpu'\)"):
        validate_manifest(cq)


def _upstream(name: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]
    for doc in docs:  # as `kubectl apply` would: the current namespace, a generated name
        meta = doc["metadata"]
        key = (doc["apiVersion"], doc["kind"])
        namespaced = served_crds()[key].namespaced if key in served_crds() else True
        if namespaced and doc["kind"] not in ("Namespace", "Node"):
            meta.setdefault("namespace", "default")
        meta.setdefault("name", meta.get("generateName", "x") + "abcde")
    return docs


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_upstream_examples_validate(name: str) -> None:
    docs = _upstream(name)
    assert docs
    for doc in docs:
        validate_manifest(doc)


def test_examples_cover_every_vendored_project() -> None:
    seen = set()
    for path in EXAMPLES.glob("*.yaml"):
        for doc in _upstream(path.name):
            key = (doc["apiVersion"], doc["kind"])
            if key in served_crds():
                seen.add(served_crds()[key].source["repo"])
    assert seen == {e.source["repo"] for e in served_crds().values()}


def test_deprecated_versions_are_reported() -> None:
    old = _upstream("kueue-v0.14.8_tas_sample-gpu-queues.yaml")
    new = _upstream("kueue-v0.19.2_tas_sample-gpu-queues.yaml")
    lines = deprecations(old)
    assert len(lines) == 4
    assert "kueue.x-k8s.io/v1beta1 is deprecated in kubernetes-sigs/kueue v0.19.2" in lines[0]
    assert "(stored as v1beta2)" in lines[0]
    assert deprecations(new) == []


def test_scope_is_checked() -> None:
    _topo, _flavor, cq, lq = _upstream("kueue-v0.19.2_tas_sample-gpu-queues.yaml")
    cq["metadata"]["namespace"] = "default"
    with pytest.raises(InputError, match="ClusterQueue is cluster-scoped"):
        validate_manifest(cq)
    del lq["metadata"]["namespace"]
    with pytest.raises(InputError, match="LocalQueue is namespaced"):
        validate_manifest(lq)


def test_a_workload_validates_and_a_broken_one_does_not() -> None:
    workload: dict[str, Any] = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "Workload",
        "metadata": {"name": "job-train-1a2b3", "namespace": "tenant-acme"},
        "spec": {
            "queueName": "acme-lq",
            "podSets": [
                {
                    "name": "main",
                    "count": 4,
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [
                                {
                                    "name": "main",
                                    "image": "nvcr.io/nvidia/pytorch:25.01-py3",
                                    "resources": {"requests": {"nvidia.com/gpu": "4"}},
                                }
                            ],
                        }
                    },
                    "topologyRequest": {"required": "nvidia.com/gpu.clique"},
                }
            ],
        },
    }
    validate_manifest(workload)
    broken = copy.deepcopy(workload)
    broken["spec"]["podSets"][0]["count"] = "four"
    with pytest.raises(InputError, match=r"\$\.spec\.podSets\[0\]\.count"):
        validate_manifest(broken)


def test_cel_rules_are_counted_not_evaluated() -> None:
    # CEL needs the API server: documented, and visible in numbers
    assert cel_rule_count(crd_entry("kueue.x-k8s.io/v1beta2", "ClusterQueue").schema) >= 1
    assert sum(cel_rule_count(e.schema) for e in served_crds().values()) > 20
    assert cel_rule_count(crd_entry("resource.nvidia.com/v1beta1", "ComputeDomain").schema) >= 1
