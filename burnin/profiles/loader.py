"""Load per-SKU threshold profiles (packaged YAML) and merge a site override file.

Precedence: packaged profile < site override file. The override file says which
profiles it changes, and only the keys it wants to change::

    version: 1
    profiles:
      gb200-nvl72:
        collectives:
          busbw_gbps:
            domain: {warn: 820}

Every key is checked against the profile schema (:data:`SCHEMA`): an unknown key
or a value of the wrong type is a :class:`~dcops.errors.LocatedInputError`
naming the file, the line and the key; an unknown SKU is an
:class:`~dcops.errors.UnknownNameError` listing the known ones. This is the one
module of the verdict core that reads files.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from burnin.profiles.model import (
    SCOPES,
    BusbwFloor,
    CollectiveThresholds,
    GemmThresholds,
    HealthThresholds,
    LocalizeThresholds,
    PeerRule,
    RemeasureRule,
    Thresholds,
)
from dcops.errors import InputError, LocatedInputError, UnknownNameError
from dcops.skus import SkuProfile, get_sku
from dcops.yamlfile import Locations, PathKey, YamlFileError, format_path, load_located_text

#: The profile format this code reads.
PROFILE_VERSION = 1
DTYPES = ("fp32", "tf32", "fp16", "bf16", "fp8")

_PEERS: dict[str, Any] = {
    "z_cut": float,
    "warn_deficit": float,
    "fail_deficit": float,
    "min_peers": int,
    "min_scale_fraction": float,
}
_FLOOR: dict[str, Any] = {"expected": float, "warn": float, "fail": float}

#: Allowed keys and leaf types of a profile. ``("map", DTYPES, float)``: a mapping
#: restricted to those keys; ``(float, None)``: nullable.
SCHEMA: dict[str, Any] = {
    "version": int,
    "sku": str,
    "gemm": {
        "dtype": str,
        "rounds": int,
        "duration_s": float,
        "floor_warn_fraction": float,
        "floor_fail_fraction": float,
        "rel_error_max": ("map", DTYPES, float),
        "outliers": _PEERS,
        "remeasure": {
            "z_low": float,
            "z_high": float,
            "max_rounds": int,
            "min_deficit": float,
        },
    },
    "collectives": {
        "op": str,
        "sizes_bytes": [int],
        "min_size_bytes": int,
        "busbw_gbps": {scope: _FLOOR for scope in SCOPES},
        "outliers": _PEERS,
    },
    "health": {
        "temperature_warn_c": float,
        "temperature_fail_c": (float, None),
        "ecc_correctable_warn": int,
        "nvlink_errors_warn": int,
    },
    "localize": {"pass_deficit": float, "fail_deficit": float, "max_remeasure": int},
}


class _Source:
    """One YAML file (or packaged resource) with its line index, for located errors."""

    def __init__(self, origin: str, text: str) -> None:
        self.origin = origin
        try:
            self.data, self.locs = load_located_text(text)
        except YamlFileError as exc:
            raise LocatedInputError(origin, exc.what, line=exc.line) from exc

    def error(self, key: PathKey, what: str) -> LocatedInputError:
        return LocatedInputError(
            self.origin, what, line=self.locs.line(key), key=format_path(key) or None
        )


def _packaged_names() -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in resources.files("burnin.profiles").iterdir():
        if entry.name.endswith(".yaml"):
            out[entry.name.removesuffix(".yaml")] = entry.read_text(encoding="utf-8")
    return out


def known_profiles() -> list[str]:
    """SKUs that have a packaged threshold profile."""
    return sorted(_packaged_names())


def _check(value: Any, spec: Any, key: PathKey, src: _Source) -> None:
    """Raise a located error for the first unknown key or wrongly typed value."""
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise src.error(key, "expected a mapping")
        for name, item in value.items():
            if name not in spec:
                known = ", ".join(spec)
                raise src.error((*key, str(name)), f"unknown key (known: {known})")
            _check(item, spec[name], (*key, str(name)), src)
        return
    if isinstance(spec, list):
        if not isinstance(value, list) or not value:
            raise src.error(key, "expected a non-empty list")
        for i, item in enumerate(value):
            _check(item, spec[0], (*key, i), src)
        return
    if isinstance(spec, tuple) and spec and spec[0] == "map":
        _, keys, leaf = spec
        _check(value, dict.fromkeys(keys, leaf), key, src)
        return
    if isinstance(spec, tuple):
        if value is None and None in spec:
            return
        spec = spec[0]
    ok = (
        isinstance(value, (int, float)) and not isinstance(value, bool)
        if spec is float
        else isinstance(value, spec) and not (spec is int and isinstance(value, bool))
    )
    if not ok:
        raise src.error(key, f"expected {spec.__name__}, got {type(value).__name__} {value!r}")
    if spec in (int, float) and value < 0:
        raise src.error(key, f"must not be negative (got {value!r})")


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _required(data: dict[str, Any], spec: dict[str, Any], key: PathKey, src: _Source) -> None:
    """A packaged profile must hold every key (overrides may hold any subset)."""
    for name, sub in spec.items():
        if name not in data:
            raise src.error(key, f"missing key {format_path((*key, name))!r}")
        if isinstance(sub, dict):
            _required(data[name], sub, (*key, name), src)


def _version(data: dict[str, Any], src: _Source) -> None:
    version = data.get("version")
    if version != PROFILE_VERSION:
        raise src.error(
            ("version",),
            f"version {version!r} is not supported (this dcops reads {PROFILE_VERSION})",
        )


def load_thresholds(
    sku: str,
    *,
    override: Path | str | None = None,
    override_text: str | None = None,
    sku_profile: SkuProfile | None = None,
) -> Thresholds:
    """The thresholds for ``sku``: packaged profile, merged with a site override file.

    ``override_text`` is the override's content when it is not in a file (tests,
    config embedded elsewhere); ``sku_profile`` replaces the packaged SKU data
    (site SKU directories).
    """
    packaged = _packaged_names()
    if sku not in packaged:
        raise UnknownNameError("burn-in profile", sku, list(packaged))
    base_src = _Source(f"burnin/profiles/{sku}.yaml", packaged[sku])
    data = base_src.data
    _check(data, SCHEMA, (), base_src)
    _required(data, SCHEMA, (), base_src)
    _version(data, base_src)
    sources = [base_src.origin]

    if override is not None or override_text is not None:
        origin = str(override) if override is not None else "<override>"
        if override_text is None:
            try:
                override_text = Path(origin).read_text(encoding="utf-8")
            except FileNotFoundError:
                raise LocatedInputError(origin, "no such file") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise LocatedInputError(origin, f"cannot read: {exc}") from exc
        src = _Source(origin, override_text)
        _check(src.data, {"version": int, "profiles": dict}, (), src)
        _version(src.data, src)
        for name in src.data.get("profiles") or {}:
            if name not in packaged:
                raise UnknownNameError("burn-in profile", str(name), list(packaged))
        part = (src.data.get("profiles") or {}).get(sku)
        if part is not None:
            spec = {k: v for k, v in SCHEMA.items() if k not in ("version", "sku")}
            _check(part, spec, ("profiles", sku), src)
            data = _merge(data, part)
        sources.append(origin)

    return _build(data, sku_profile or get_sku(sku), tuple(sources))


def _peers(data: dict[str, Any]) -> PeerRule:
    return PeerRule(
        z_cut=float(data["z_cut"]),
        warn_deficit=float(data["warn_deficit"]),
        fail_deficit=float(data["fail_deficit"]),
        min_peers=int(data["min_peers"]),
        min_scale_fraction=float(data["min_scale_fraction"]),
    )


def _remeasure(data: dict[str, Any], sources: tuple[str, ...]) -> RemeasureRule:
    rule = RemeasureRule(
        z_low=float(data["z_low"]),
        z_high=float(data["z_high"]),
        max_rounds=int(data["max_rounds"]),
        min_deficit=float(data["min_deficit"]),
    )
    if rule.z_high <= rule.z_low:  # negative values are refused by the schema check
        raise InputError(
            f"{' + '.join(sources)}: gemm.remeasure: z_high must be above z_low "
            f"(got z_low {rule.z_low:g}, z_high {rule.z_high:g})"
        )
    return rule


def _build(data: dict[str, Any], sku: SkuProfile, sources: tuple[str, ...]) -> Thresholds:
    g = data["gemm"]
    nominal = sku.gpu.tflops
    gemm = GemmThresholds(
        dtype=str(g["dtype"]),
        rounds=int(g["rounds"]),
        duration_s=float(g["duration_s"]),
        floor_warn_tflops={d: float(g["floor_warn_fraction"]) * t for d, t in nominal.items()},
        floor_fail_tflops={d: float(g["floor_fail_fraction"]) * t for d, t in nominal.items()},
        rel_error_max={d: float(v) for d, v in g["rel_error_max"].items()},
        peers=_peers(g["outliers"]),
        remeasure=_remeasure(g["remeasure"], sources),
    )
    c = data["collectives"]
    coll = CollectiveThresholds(
        op=str(c["op"]),
        sizes_bytes=tuple(int(s) for s in c["sizes_bytes"]),
        min_size_bytes=int(c["min_size_bytes"]),
        busbw_gbps={
            scope: BusbwFloor(float(f["expected"]), float(f["warn"]), float(f["fail"]))
            for scope, f in c["busbw_gbps"].items()
        },
        peers=_peers(c["outliers"]),
    )
    h = data["health"]
    fail_c = h["temperature_fail_c"]
    health = HealthThresholds(
        temperature_warn_c=float(h["temperature_warn_c"]),
        temperature_fail_c=None if fail_c is None else float(fail_c),
        ecc_correctable_warn=int(h["ecc_correctable_warn"]),
        nvlink_errors_warn=int(h["nvlink_errors_warn"]),
    )
    lo = data["localize"]
    loc = LocalizeThresholds(
        pass_deficit=float(lo["pass_deficit"]),
        fail_deficit=float(lo["fail_deficit"]),
        max_remeasure=int(lo["max_remeasure"]),
    )
    return Thresholds(
        sku=sku.name,
        version=int(data["version"]),
        gemm=gemm,
        collectives=coll,
        health=health,
        localize=loc,
        sources=sources,
    )


__all__ = ["PROFILE_VERSION", "SCHEMA", "Locations", "known_profiles", "load_thresholds"]
