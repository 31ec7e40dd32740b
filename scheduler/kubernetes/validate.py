"""Offline validation of the manifests dcops sends to Kubernetes (pure, no cluster).

* built-in kinds (Job, Namespace, ResourceQuota...) against Kubernetes' published
  OpenAPI schemas as packaged by ``kubernetes-validate``, in strict mode (unknown
  fields refused), for the pinned :data:`K8S_VERSION`;
* the CRDs dcops emits (JobSet, ComputeDomain, Kueue LocalQueue/ClusterQueue)
  against the schemas bundled in :mod:`scheduler.kubernetes.schemas`; a JobSet's
  embedded Job templates are checked again as built-in Jobs.

Every failure is an :class:`~dcops.errors.InputError` naming the object and the
JSON path: ``JobSet tenant-acme/train: $.spec.replicatedJobs[0].replicas: -1 is
less than the minimum of 0``. A live cluster is the last word (``dry_run="All"``
with ``field_validation="Strict"``, see :mod:`scheduler.kubernetes.backend`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

from dcops.errors import InputError

#: The Kubernetes minor release manifests are validated against (DRA ResourceClaims
#: in pod specs need >= 1.32; GB200 clusters run recent releases).
K8S_VERSION = "1.33"

#: (apiVersion, kind) -> bundled schema file.
CRD_SCHEMAS: dict[tuple[str, str], str] = {
    ("jobset.x-k8s.io/v1alpha2", "JobSet"): "jobset.x-k8s.io_v1alpha2_jobset.json",
    ("resource.nvidia.com/v1beta1", "ComputeDomain"): (
        "resource.nvidia.com_v1beta1_computedomain.json"
    ),
    ("kueue.x-k8s.io/v1beta1", "LocalQueue"): "kueue.x-k8s.io_v1beta1_localqueue.json",
    ("kueue.x-k8s.io/v1beta1", "ClusterQueue"): "kueue.x-k8s.io_v1beta1_clusterqueue.json",
}


@cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    """The bundled JSON Schema of a CRD dcops emits; KeyError for any other kind."""
    filename = CRD_SCHEMAS[(api_version, kind)]
    text = (
        resources.files("scheduler.kubernetes.schemas")
        .joinpath(filename)
        .read_text(encoding="utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


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


def _validate_crd(manifest: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InputError(
            f"{_where(manifest)}: {_json_path(first.absolute_path)}: {first.message}{more}"
        )


def _validate_builtin(manifest: Mapping[str, Any], k8s_version: str) -> None:
    import kubernetes_validate  # type: ignore[import-untyped,unused-ignore]

    try:
        kubernetes_validate.validate(dict(manifest), k8s_version, strict=True)
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise InputError(
            f"{_where(manifest)}: no schema for {manifest.get('apiVersion')} "
            f"{manifest.get('kind')} in Kubernetes {k8s_version}"
        ) from exc
    except kubernetes_validate.ValidationError as exc:
        raise InputError(
            f"{_where(manifest)}: {_json_path(exc.absolute_path)}: {exc.message}"
        ) from exc


def validate_manifest(manifest: Mapping[str, Any], *, k8s_version: str = K8S_VERSION) -> None:
    """Raise InputError unless ``manifest`` is valid for its kind (strict: no unknown fields)."""
    if not isinstance(manifest, Mapping):
        raise InputError(f"a manifest must be a mapping, got {type(manifest).__name__}")
    api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise InputError(f"{_where(manifest)}: apiVersion and kind are required")
    key = (api_version, kind)
    if key not in CRD_SCHEMAS:
        _validate_builtin(manifest, k8s_version)
        return
    _validate_crd(manifest, crd_schema(*key))
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
