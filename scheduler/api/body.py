"""From request bytes to a validated :class:`JobSpec`, refusing identity claims first (pure).

A submitted body is a job spec, JSON or YAML (``dcops/v1``, see docs/jobspec.md).
Before the schema runs, the decoded document is searched for anything that
tries to say *as whom* the job runs -- ``tenant``, ``account``, ``namespace``,
``qos``, ``partition``, ``user``, ``queue`` and friends, at any depth outside
``env`` -- so such a body gets a message that names the key and says where the
identity really comes from (the token), instead of the schema's generic
"additional property". YAML anchors/aliases are refused (no alias bombs) and the cost of decoding is
bounded before any parser runs (:mod:`dcops.docload`), and
the spec hash is the SHA-256 of the canonical JSON of the document, so the same
spec sent as JSON or as YAML hashes the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from scheduler.api.problems import ApiProblem, Code
from scheduler.spec import JobSpec, spec_from_dict

JSON_TYPES = frozenset({"application/json"})
YAML_TYPES = frozenset(
    {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"}
)
ACCEPTED_TYPES = JSON_TYPES | YAML_TYPES

#: Keys (lowercased, '-' -> '_') that would choose identity or placement owned by the contract.
IDENTITY_KEYS = frozenset(
    {
        "tenant",
        "tenant_name",
        "account",
        "slurm_account",
        "qos",
        "slurm_qos",
        "partition",
        "partitions",
        "slurm_partitions",
        "reservation",
        "cluster",
        "clusters",
        "namespace",
        "k8s_namespace",
        "queue",
        "local_queue",
        "localqueue",
        "k8s_local_queue",
        "kueue.x_k8s.io/queue_name",
        "user",
        "unix_user",
        "unix_users",
        "username",
        "uid",
        "gid",
        "group",
        "runasuser",
        "run_as_user",
        "runasgroup",
        "serviceaccount",
        "serviceaccountname",
        "service_account",
        "owner",
        "project",
        "wckey",
    }
)
_MAX_DEPTH = 32


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json`` (empty: JSON)."""
    if not content_type:
        return "application/json"
    return content_type.split(";", 1)[0].strip().lower()


def spec_hash(document: object) -> str:
    from dcops.store.audit import canonical_json

    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


def decode_body(raw: bytes, content_type: str | None) -> object:
    """Bytes -> one decoded JSON/YAML document, or an ApiProblem saying why not."""
    kind = media_type(content_type)
    if kind not in ACCEPTED_TYPES:
        raise ApiProblem(
            Code.INVALID_REQUEST,
            f"unsupported content type {kind[:80]!r}: send application/json or application/yaml",
            status=415,
        )
    if not raw.strip():
        raise ApiProblem(Code.INVALID_SPEC, "empty body: send a job spec (JSON or YAML)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiProblem(Code.INVALID_REQUEST, "the body is not UTF-8 text") from exc
    if kind in JSON_TYPES:
        return _decode_json(text)
    return _decode_yaml(text)


def _decode_json(text: str) -> object:
    import json

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ApiProblem(Code.INVALID_SPEC, f"duplicate key {key[:80]!r} in the JSON body")
            out[key] = value
        return out

    def no_constants(name: str) -> object:
        raise ApiProblem(Code.INVALID_SPEC, f"{name} is not valid JSON")

    from dcops.docload import DocumentError, prescan

    try:
        prescan(text, source="body")
    except DocumentError as exc:
        raise ApiProblem(Code.INVALID_SPEC, str(exc)) from exc
    try:
        return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except RecursionError as exc:
        raise ApiProblem(Code.INVALID_SPEC, "the JSON body is nested too deeply") from exc
    except ValueError as exc:
        raise ApiProblem(Code.INVALID_SPEC, f"not valid JSON: {exc}") from exc


def _decode_yaml(text: str) -> object:
    """Bounded before parsing (:mod:`dcops.docload`): depth pre-scan, C parser, no aliases."""
    from dcops.docload import AliasError
    from dcops.errors import InputError
    from scheduler.spec import decode_document

    try:
        return decode_document(text, source="body")
    except AliasError as exc:
        raise ApiProblem(Code.INVALID_REQUEST, str(exc)) from exc
    except InputError as exc:
        raise ApiProblem(Code.INVALID_SPEC, str(exc)) from exc
    except RecursionError as exc:
        raise ApiProblem(Code.INVALID_SPEC, "the YAML body is nested too deeply") from exc


def _norm(key: str) -> str:
    return key.strip().lower().replace("-", "_")


def identity_claims(document: object) -> Iterator[str]:
    """Dotted paths of keys in ``document`` that try to choose identity (``env`` is skipped)."""

    def walk(node: object, path: str, depth: int) -> Iterator[str]:
        if depth > _MAX_DEPTH:
            return
        if isinstance(node, dict):
            for key, value in node.items():
                here = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and _norm(key) in IDENTITY_KEYS:
                    yield here
                if path == "" and key == "env":
                    continue
                yield from walk(value, here, depth + 1)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from walk(value, f"{path}[{i}]", depth + 1)

    yield from walk(document, "", 0)


def parse_spec(raw: bytes, content_type: str | None, *, tenant_name: str) -> tuple[JobSpec, str]:
    """Decode, refuse identity claims, validate: (spec, spec hash) or ApiProblem."""
    from dcops.errors import InputError

    document = decode_body(raw, content_type)
    claims = list(identity_claims(document))
    if claims:
        named = ", ".join(repr(c[:80]) for c in claims[:5])
        raise ApiProblem(
            Code.INVALID_SPEC,
            f"the spec names {named}: a job's tenant, account, QOS, partition, user, "
            f"namespace and queue come only from your API token (tenant {tenant_name!r}); "
            "remove them",
        )
    try:
        spec = spec_from_dict(document, source="spec")
    except InputError as exc:
        raise ApiProblem(Code.INVALID_SPEC, str(exc)) from exc
    except RecursionError as exc:
        raise ApiProblem(Code.INVALID_SPEC, "the spec is nested too deeply") from exc
    return spec, spec_hash(document)
