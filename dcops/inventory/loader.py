"""Read and validate a site file into a :class:`~dcops.inventory.model.Site`.

Validation is in two steps: the published JSON Schema (``site.schema.json``)
for shape, then fleet rules the schema cannot say (hostlists parse, no node in
two places, tray counts match the SKU). Every failure is a
:class:`~dcops.errors.SiteError` naming the file, the line and the key.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from dcops.errors import HostlistError, InputError, SiteError
from dcops.hostlist import expand
from dcops.inventory.model import CapacitySettings, Rack, Site
from dcops.skus import SkuProfile, get_sku, load_sku_dir
from dcops.yamlfile import Locations, PathKey, YamlFileError, format_path, load_located

DEFAULT_SKU = "gb200-nvl72"


@cache
def site_schema() -> dict[str, Any]:
    text = resources.files("dcops.inventory").joinpath("site.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _fail(path: Path, locs: Locations, key: PathKey, what: str) -> SiteError:
    return SiteError(str(path), what, line=locs.line(key), key=format_path(key) or None)


def _schema_check(path: Path, data: Any, locs: Locations) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(site_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path)))
    if not errors:
        return
    err = errors[0]
    key: PathKey = tuple(err.path)
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        key = (*key, extra[0]) if extra else key
        allowed = ", ".join(sorted(err.schema.get("properties", {})))
        raise _fail(path, locs, key, f"unknown key {extra[0]!r} (allowed: {allowed})")
    if err.validator == "required":
        raise _fail(path, locs, key, err.message)
    raise _fail(path, locs, key, f"{err.message}")


def load_site(path: Path | str) -> Site:
    """Load and validate a site file; raise SiteError on anything wrong."""
    path = Path(path)
    try:
        data, locs = load_located(path)
    except YamlFileError as exc:
        raise SiteError(str(path), exc.what, line=exc.line) from exc
    if not isinstance(data, dict):
        raise SiteError(str(path), "a site file must be a YAML mapping with 'site' and 'racks'")
    _schema_check(path, data, locs)

    extra: dict[str, SkuProfile] = {}
    for i, rel in enumerate(data.get("sku_dirs", [])):
        sku_dir = (path.parent / rel).resolve()
        if not sku_dir.is_dir():
            raise _fail(path, locs, ("sku_dirs", i), f"no such directory {str(sku_dir)!r}")
        try:
            extra.update(load_sku_dir(sku_dir))
        except InputError as exc:
            raise _fail(path, locs, ("sku_dirs", i), str(exc)) from exc

    default_sku = data.get("sku", DEFAULT_SKU)
    racks: list[Rack] = []
    seen_racks: set[str] = set()
    owner: dict[str, str] = {}
    for i, raw in enumerate(data["racks"]):
        racks.append(_rack(path, locs, i, raw, default_sku, extra, seen_racks, owner))
    return Site(
        name=data["site"],
        sku=default_sku,
        racks=tuple(racks),
        description=data.get("description", ""),
        source=str(path),
        capacity=_capacity(path, locs, data.get("capacity", {}), racks),
    )


def _capacity(
    path: Path, locs: Locations, raw: dict[str, Any], racks: list[Rack]
) -> CapacitySettings:
    """The ``capacity:`` section; a segment larger than the smallest rack is an error."""
    smallest = min(len(r.nodes) for r in racks)
    sizes = raw.get("segment_sizes")
    for i, size in enumerate(sizes or []):
        if size > smallest:
            raise _fail(
                path,
                locs,
                ("capacity", "segment_sizes", i),
                f"segment of {size} trays is larger than a rack ({smallest} trays)",
            )
    promised = raw.get("promised_segment")
    if promised is not None and promised > smallest:
        raise _fail(
            path,
            locs,
            ("capacity", "promised_segment"),
            f"segment of {promised} trays is larger than a rack ({smallest} trays)",
        )
    return CapacitySettings(
        segment_sizes=tuple(sorted(sizes)) if sizes else None,
        promised_segment=promised,
        certificate_max_age_days=raw.get("certificate_max_age_days"),
        row_power_budget_kw=raw.get("row_power_budget_kw"),
        spare_trays=raw.get("spare_trays"),
    )


def _rack(
    path: Path,
    locs: Locations,
    i: int,
    raw: dict[str, Any],
    default_sku: str,
    extra: dict[str, SkuProfile],
    seen_racks: set[str],
    owner: dict[str, str],
) -> Rack:
    name = raw["name"]
    if name in seen_racks:
        raise _fail(path, locs, ("racks", i, "name"), f"rack {name!r} is listed twice")
    seen_racks.add(name)
    sku_name = raw.get("sku", default_sku)
    try:
        sku = get_sku(sku_name, extra)
    except InputError as exc:
        key: PathKey = ("racks", i, "sku") if "sku" in raw else ("sku",)
        raise _fail(path, locs, key, str(exc)) from exc
    try:
        nodes = expand(raw["nodes"])
    except HostlistError as exc:
        raise _fail(path, locs, ("racks", i, "nodes"), str(exc)) from exc
    for node in nodes:
        if node in owner:
            raise _fail(
                path,
                locs,
                ("racks", i, "nodes"),
                f"node {node!r} is already in rack {owner[node]!r}",
            )
        owner[node] = name
    if sku.nvlink_domain == "rack" and len(nodes) != sku.nodes_per_rack:
        raise _fail(
            path,
            locs,
            ("racks", i, "nodes"),
            f"rack {name!r} has {len(nodes)} nodes but a {sku.name} rack has "
            f"{sku.nodes_per_rack} compute trays",
        )
    gpus = raw.get("gpus_per_node", sku.gpus_per_node)
    if gpus != sku.gpus_per_node:
        raise _fail(
            path,
            locs,
            ("racks", i, "gpus_per_node"),
            f"gpus_per_node is {gpus} but a {sku.name} node has {sku.gpus_per_node}",
        )
    return Rack(
        name=name,
        sku=sku.name,
        nodes=tuple(nodes),
        gpus_per_node=gpus,
        domain=raw.get("domain") or (name if sku.nvlink_domain == "rack" else ""),
        location=raw.get("location", ""),
        power_capacity_kw=raw.get("power_capacity_kw"),
    )


def simulated_site(racks: int, sku: str = DEFAULT_SKU, prefix: str = "sim") -> Site:
    """A site of ``racks`` full racks named ``{prefix}-r01-t01`` .. like the simulator's."""
    profile = get_sku(sku)
    if racks < 1:
        raise InputError("a simulated site needs at least one rack")
    rack_width = max(2, len(str(racks)))
    tray_width = max(2, len(str(profile.nodes_per_rack)))
    built = []
    for r in range(1, racks + 1):
        rack_name = f"r{str(r).zfill(rack_width)}"
        nodes = tuple(
            f"{prefix}-{rack_name}-t{str(t).zfill(tray_width)}"
            for t in range(1, profile.nodes_per_rack + 1)
        )
        domain = rack_name if profile.nvlink_domain == "rack" else ""
        built.append(Rack(rack_name, profile.name, nodes, profile.gpus_per_node, domain=domain))
    return Site(name=f"{prefix}-{racks}r", sku=profile.name, racks=tuple(built), source="simulated")
