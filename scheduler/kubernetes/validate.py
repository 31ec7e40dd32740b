"""Offline validation of the manifests dcops sends to Kubernetes (pure, no cluster).

* built-in kinds (Job, Namespace, Node, ResourceQuota...) against Kubernetes'
  published OpenAPI schemas as packaged by ``kubernetes-validate``, in strict mode
  (unknown fields refused), for the pinned :data:`K8S_VERSION`;
* the CRDs dcops emits or reads (JobSet, ComputeDomain, Kueue ClusterQueue /
  LocalQueue / ResourceFlavor / Topology / Workload) against the upstream
  structural schemas vendored at pinned releases in :mod:`scheduler.kubernetes.schemas`
  (see :mod:`scheduler.kubernetes.crds`), with ``metadata`` checked as the core
  ObjectMeta; a JobSet's embedded Job templates are checked again as built-in Jobs;
* merge patches (:func:`validate_merge_patch`): the object a patch would produce.

Every failure is an :class:`~dcops.errors.InputError` naming the object and the
JSON path: ``JobSet tenant-acme/train: $.spec.replicatedJobs[0].replicas: -1 is
less than the minimum of 0``. What offline validation cannot do (CEL rules,
admission webhooks, quota) a live cluster does: ``dry_run="All"`` with
``field_validation="Strict"``, see :mod:`scheduler.kubernetes.backend`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from dcops.errors import InputError
from scheduler.kubernetes.crds import CrdVersion, root_json_schema, served_crds

#: The Kubernetes minor release manifests are validated against (DRA ResourceClaims
#: in pod specs need >= 1.32; GB200 clusters run recent releases).
K8S_VERSION = "1.33"

_DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"
OBJECT_META_REF = f"{_DEFINITIONS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def crd_kinds() -> list[tuple[str, str]]:
    """Every ``(apiVersion, kind)`` validated against a vendored upstream CRD."""
    return sorted(served_crds())


def crd_entry(api_version: str, kind: str) -> CrdVersion:
    """The vendored CRD version for ``(apiVersion, kind)``; KeyError for any other."""
    return served_crds()[(api_version, kind)]


def _json_path(parts: Iterable[object]) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _where(manifest: Mapping[str, Any]) -> str:
    meta = manifest.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    ns = meta.get("namespace")
    name = f"{ns}/{meta.get('name', '?')}" if ns else str(meta.get("name", "?"))
    return f"{manifest.get('kind', '?')} {name}"


@cache
def _schema_dir(k8s_version: str) -> str:
    """``kubernetes-json-schema/vX.Y.Z-local-strict``: the newest release <= k8s_version."""
    from kubernetes_validate import utils  # type: ignore[import-untyped,unused-ignore]

    wanted = utils.major_minor(k8s_version.removeprefix("v"))
    versions = [v for v in utils.all_versions() if _minor_key(v) <= _minor_key(wanted)]
    if not versions:
        raise InputError(f"kubernetes-validate has no schemas for Kubernetes {k8s_version}")
    return f"kubernetes-json-schema/v{versions[-1]}-local-strict"


def _minor_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")[:2])


def _contents(path: str) -> dict[str, Any]:
    from kubernetes_validate import utils

    doc: dict[str, Any] = utils.schema_contents(path, path)
    return doc


_INT_RANGES = {"int32": 2**31, "int64": 2**63}


@cache
def _format_checker() -> Any:
    """The formats the API server enforces on numbers: int32 and int64 ranges."""
    import jsonschema

    checker = jsonschema.FormatChecker(formats=())
    for name, bound in _INT_RANGES.items():
        checker.checks(name)(
            lambda v, b=bound: not isinstance(v, int) or isinstance(v, bool) or -b <= v < b
        )
    return checker


@cache
def _validator_class() -> Any:
    import jsonschema

    def list_map_keys(validator: Any, keys: list[str], instance: Any, schema: Any) -> Any:
        if not isinstance(instance, list):
            return
        seen: dict[tuple[Any, ...], int] = {}
        for i, item in enumerate(instance):
            if not isinstance(item, Mapping):
                continue
            key = tuple(repr(item.get(k)) for k in keys)
            if key in seen:
                yield jsonschema.ValidationError(
                    f"items {seen[key]} and {i} have the same key "
                    f"({', '.join(f'{k}={item.get(k)!r}' for k in keys)})"
                )
            seen[key] = i

    return jsonschema.validators.extend(  # type: ignore[no-untyped-call]
        jsonschema.Draft202012Validator, {"x-kubernetes-list-map-keys": list_map_keys}
    )


@cache
def _registry(k8s_version: str) -> Any:
    from referencing import Registry, Resource

    definitions = Resource.from_contents(_contents(f"{_schema_dir(k8s_version)}/_definitions.json"))
    return definitions @ Registry()


@cache
def _builtin_validator(k8s_version: str, api_version: str, kind: str) -> Any:
    # kubernetes-validate's layout: rbac.authorization.k8s.io/v1 Role -> role-rbac-v1.json
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = _contents(f"{_schema_dir(k8s_version)}/{kind.lower()}-{api}.json")
    except FileNotFoundError:
        return None
    return _validator_class()(
        schema, registry=_registry(k8s_version), format_checker=_format_checker()
    )


@cache
def _crd_validator(k8s_version: str, api_version: str, kind: str) -> Any:
    schema = root_json_schema(crd_entry(api_version, kind), OBJECT_META_REF)
    return _validator_class()(
        schema, registry=_registry(k8s_version), format_checker=_format_checker()
    )


def _check(manifest: Mapping[str, Any], validator: Any) -> None:
    errors = sorted(
        validator.iter_errors(manifest), key=lambda e: [str(p) for p in e.absolute_path]
    )
    if errors:
        first = errors[0]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InputError(
            f"{_where(manifest)}: {_json_path(first.absolute_path)}: {first.message}{more}"
        )


def _check_scope(manifest: Mapping[str, Any], entry: CrdVersion) -> None:
    has_ns = bool((manifest.get("metadata") or {}).get("namespace"))
    if entry.namespaced and not has_ns:
        raise InputError(f"{_where(manifest)}: $.metadata.namespace: {entry.kind} is namespaced")
    if has_ns and not entry.namespaced:
        raise InputError(
            f"{_where(manifest)}: $.metadata.namespace: {entry.kind} is cluster-scoped"
        )


def _validate_builtin(manifest: Mapping[str, Any], k8s_version: str) -> None:
    api_version, kind = str(manifest.get("apiVersion")), str(manifest.get("kind"))
    validator = _builtin_validator(k8s_version, api_version, kind)
    if validator is None:
        vendored = sorted(v for v, k in served_crds() if k == kind)
        hint = f" (vendored upstream versions: {', '.join(vendored)})" if vendored else ""
        raise InputError(
            f"{_where(manifest)}: no schema for {api_version} {kind} "
            f"in Kubernetes {k8s_version}{hint}"
        )
    _check(manifest, validator)


def validate_manifest(manifest: Mapping[str, Any], *, k8s_version: str = K8S_VERSION) -> None:
    """Raise InputError unless ``manifest`` is valid for its kind (strict: no unknown fields)."""
    if not isinstance(manifest, Mapping):
        raise InputError(f"a manifest must be a mapping, got {type(manifest).__name__}")
    api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise InputError(f"{_where(manifest)}: apiVersion and kind are required")
    if (api_version, kind) not in served_crds():
        _validate_builtin(manifest, k8s_version)
        return
    _check(manifest, _crd_validator(k8s_version, api_version, kind))
    _check_scope(manifest, crd_entry(api_version, kind))
    if kind == "JobSet":
        for i, rjob in enumerate(manifest["spec"]["replicatedJobs"]):
            template = rjob["template"]
            as_job = {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": str(rjob["name"]), **(template.get("metadata") or {})},
                "spec": template["spec"],
            }
            try:
                _validate_builtin(as_job, k8s_version)
            except InputError as exc:
                detail = str(exc).split(": ", 1)[-1].removeprefix("$")
                raise InputError(
                    f"{_where(manifest)}: $.spec.replicatedJobs[{i}].template{detail}"
                ) from exc


def validate_manifests(
    manifests: Sequence[Mapping[str, Any]], *, k8s_version: str = K8S_VERSION
) -> None:
    """Validate each manifest in turn; the first invalid one raises."""
    for manifest in manifests:
        validate_manifest(manifest, k8s_version=k8s_version)


def merge_patch(target: object, patch: object) -> Any:
    """RFC 7386 JSON merge patch: what the server stores after ``patch`` (pure, copies)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def validate_merge_patch(
    target: Mapping[str, Any], patch: Mapping[str, Any], *, k8s_version: str = K8S_VERSION
) -> dict[str, Any]:
    """Validate the object ``patch`` would make of ``target``; return that object."""
    result: dict[str, Any] = merge_patch(target, patch)
    validate_manifest(result, k8s_version=k8s_version)
    return result


def deprecations(manifests: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per manifest whose CRD version upstream marks deprecated."""
    out = []
    for manifest in manifests:
        key = (str(manifest.get("apiVersion")), str(manifest.get("kind")))
        entry = served_crds().get(key)
        if entry is not None and entry.deprecated:
            storage = [
                e.version for e in served_crds().values() if e.kind == entry.kind and e.storage
            ]
            out.append(
                f"{_where(manifest)}: {entry.api_version} is deprecated in "
                f"{entry.source.get('repo', '?')} {entry.source.get('tag', '?')}"
                + (f" (stored as {storage[0]})" if storage else "")
            )
    return out


def schema_sources() -> list[str]:
    """``repo tag`` of every vendored upstream project, for reports."""
    return sorted({f"{e.source.get('repo')} {e.source.get('tag')}" for e in served_crds().values()})
