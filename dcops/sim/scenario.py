"""Scenario files: which fleet to simulate, its seed and noise, and the faults to inject.

Loading is in two steps, like site files: the published JSON Schema
(``scenario.schema.json``) checks the shape, then fleet rules the schema cannot
say (the SKU exists, fault nodes are in the site, GPU indexes are in range,
links do not exceed the SKU's). Every failure is a
:class:`~dcops.errors.ScenarioError` naming the file, the line and the key.
The format is documented in ``docs/simulator.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcops.errors import InputError, ScenarioError
from dcops.inventory import Site, load_site, simulated_site
from dcops.sim.faults import FAULT_KINDS, Fault, GpuKey
from dcops.sim.schema import packaged_schema
from dcops.skus import get_sku
from dcops.yamlfile import Locations, PathKey, YamlFileError, format_path, load_located

DEFAULT_SKU = "gb200-nvl72"
DEFAULT_SEED = 0
DEFAULT_NOISE = 0.02
DEFAULT_LOAD = 0.0
#: 2025-01-01T00:00:00Z: the virtual clock's default start, so timestamps are reproducible.
DEFAULT_START_TIME_S = 1_735_689_600.0


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: the site, the randomness, and the faults (one per node)."""

    site: Site
    seed: int = DEFAULT_SEED
    noise: float = DEFAULT_NOISE
    load: float = DEFAULT_LOAD
    start_time_s: float = DEFAULT_START_TIME_S
    faults: tuple[Fault, ...] = ()
    source: str = "<memory>"
    description: str = ""

    @property
    def sku(self) -> str:
        return self.site.sku


class _Checker:
    """Turns problems found at a data path into located ScenarioErrors."""

    def __init__(self, origin: str, locs: Locations) -> None:
        self.origin = origin
        self.locs = locs

    def error(self, key: PathKey, what: str) -> ScenarioError:
        return ScenarioError(
            self.origin, what, line=self.locs.line(key), key=format_path(key) or None
        )


def load_scenario(path: Path | str) -> Scenario:
    """Read, validate and build the scenario in ``path``; raise ScenarioError if it is bad."""
    path = Path(path)
    try:
        data, locs = load_located(path)
    except YamlFileError as exc:
        raise ScenarioError(str(path), exc.what, line=exc.line) from exc
    return scenario_from_data(data, origin=str(path), locs=locs, base_dir=path.parent)


def scenario_from_data(
    data: Any,
    *,
    origin: str = "<memory>",
    locs: Locations | None = None,
    base_dir: Path | None = None,
) -> Scenario:
    """Validate an already-parsed scenario mapping (as from YAML) and build it."""
    check = _Checker(origin, locs or Locations())
    if not isinstance(data, dict):
        raise check.error((), "a scenario must be a YAML mapping (sku, racks, seed, faults...)")
    _schema_check(check, data)
    site = _site(check, data, base_dir or Path.cwd())
    faults: list[Fault] = []
    for i, raw in enumerate(data.get("faults") or []):
        faults.extend(_faults(check, site, i, raw))
    return Scenario(
        site=site,
        seed=int(data.get("seed", DEFAULT_SEED)),
        noise=float(data.get("noise", DEFAULT_NOISE)),
        load=float(data.get("load", DEFAULT_LOAD)),
        start_time_s=float(data.get("start_time_s", DEFAULT_START_TIME_S)),
        faults=tuple(faults),
        source=origin,
        description=str(data.get("description", "")),
    )


def _schema_check(check: _Checker, data: dict[str, Any]) -> None:
    import jsonschema

    if "racks" in data and "site" in data:
        raise check.error(("site",), "give either 'racks' or 'site', not both")
    if "racks" not in data and "site" not in data:
        raise check.error((), "missing key 'racks' (or 'site: FILE')")
    validator = jsonschema.Draft202012Validator(packaged_schema())
    errors = list(validator.iter_errors(data))
    if not errors:
        return
    # Report the first problem in file order; the deepest error under a failed if/then.
    leaves = [_leaf(err) for err in errors]
    leaves.sort(key=lambda e: (check.locs.line(tuple(e.absolute_path)) or 0, len(e.path)))
    raise _explain(check, data, leaves[0])


def _leaf(err: Any) -> Any:
    while err.context:
        err = min(err.context, key=lambda e: -len(e.absolute_path))
    return err


def _explain(check: _Checker, data: dict[str, Any], err: Any) -> ScenarioError:
    key: PathKey = tuple(err.absolute_path)
    validator = err.validator
    if validator == "additionalProperties":
        known = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(known))
        where = "fault" if key[:1] == ("faults",) else "scenario"
        return check.error(
            (*key, extra[0]), f"unknown {where} key {extra[0]!r} (known: {', '.join(known)})"
        )
    if validator == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        kind = err.instance.get("kind") if isinstance(err.instance, dict) else None
        suffix = f" for kind {kind!r}" if kind in FAULT_KINDS and missing[0] != "kind" else ""
        return check.error(key, f"missing key {missing[0]!r}{suffix}")
    if validator == "enum" and key[-1:] == ("kind",):
        return check.error(
            key, f"unknown fault kind {err.instance!r} (known: {', '.join(FAULT_KINDS)})"
        )
    if err.schema is False:
        # jsonschema locates a false subschema at the fault, not at its key: find the key.
        fault = _at(data, key)
        if isinstance(fault, dict) and fault.get("kind") in FAULT_KINDS:
            kind = fault["kind"]
            bad = [k for k in fault if k not in _allowed_keys(kind)]
            if bad:
                return check.error(
                    (*key, bad[0]), f"key {bad[0]!r} is not allowed for kind {kind!r}"
                )
        return check.error(key, err.message)
    if key[-1:] == ("factor",):
        return check.error(key, f"factor must be in (0, 1], got {err.instance!r}")
    return check.error(key, err.message)


def _allowed_keys(kind: str) -> set[str]:
    spec = FAULT_KINDS[kind]
    allowed = {"node", "kind", "at_s", *spec.required, *spec.optional}
    if spec.gpu is not GpuKey.FORBIDDEN:
        allowed.add("gpu")
    return allowed


def _at(data: Any, key: PathKey) -> Any:
    for part in key:
        data = data[part]
    return data


def _site(check: _Checker, data: dict[str, Any], base_dir: Path) -> Site:
    sku = data.get("sku")
    if sku is not None:
        try:
            get_sku(sku)
        except InputError as exc:
            raise check.error(("sku",), str(exc)) from exc
    if "site" in data:
        site_path = (base_dir / data["site"]).resolve()
        if not site_path.is_file():
            raise check.error(("site",), f"no such site file {str(site_path)!r}")
        site = load_site(site_path)  # a bad site file raises SiteError naming that file
        if sku is not None and sku != site.sku:
            raise check.error(("sku",), f"sku {sku!r} differs from the site's {site.sku!r}")
        return site
    try:
        return simulated_site(
            int(data["racks"]), sku=sku or DEFAULT_SKU, prefix=data.get("prefix", "sim")
        )
    except InputError as exc:
        raise check.error(("racks",), str(exc)) from exc


def _faults(check: _Checker, site: Site, i: int, raw: dict[str, Any]) -> list[Fault]:
    kind = raw["kind"]
    base: PathKey = ("faults", i)
    try:
        nodes = site.select(raw["node"])
    except InputError as exc:
        raise check.error((*base, "node"), str(exc)) from exc
    gpu_value = raw.get("gpu")
    gpus = None if gpu_value is None else _as_tuple(gpu_value)
    line = check.locs.line(base)
    out: list[Fault] = []
    for node in nodes:
        info = site.node(node)
        for g in gpus or ():
            if g >= info.gpus_per_node:
                raise check.error(
                    (*base, "gpu"),
                    f"GPU index {g} is out of range: {node} has {info.gpus_per_node} GPUs "
                    f"(0..{info.gpus_per_node - 1})",
                )
        links = raw.get("links")
        if links is not None:
            total = get_sku(info.sku).gpu.nvlink_links
            if links > total:
                raise check.error(
                    (*base, "links"), f"links is {links} but a {info.sku} GPU has {total}"
                )
        if kind == "ecc" and not raw.get("uncorrectable") and not raw.get("correctable"):
            raise check.error(base, "an ecc fault needs 'uncorrectable' or 'correctable' > 0")
        out.append(Fault(kind=kind, node=node, gpus=gpus, line=line, **_params(raw)))
    return out


_INT_PARAMS = ("code", "uncorrectable", "correctable", "links")
_FLOAT_PARAMS = ("at_s", "factor", "temperature_c")


def _params(raw: dict[str, Any]) -> dict[str, Any]:
    """Fault parameters with JSON numbers normalised (YAML ``2.0`` is a valid integer)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("node", "gpu", "kind"):
            continue
        if key in _INT_PARAMS:
            out[key] = int(value)
        elif key in _FLOAT_PARAMS:
            out[key] = float(value)
        else:
            out[key] = value
    return out


def _as_tuple(value: int | list[int]) -> tuple[int, ...]:
    items = [value] if isinstance(value, int | float) else value
    return tuple(int(v) for v in items)
