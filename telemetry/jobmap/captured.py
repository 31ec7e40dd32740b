"""Allocations read from captured scheduler output (a file), whatever tool printed it."""

from __future__ import annotations

from collections.abc import Mapping

from dcops.docload import load_json
from dcops.errors import InputError, SchedulerError
from telemetry.jobmap.kubernetes import allocations_from_pods
from telemetry.jobmap.model import Allocation
from telemetry.jobmap.slurm import allocations_from_json, allocations_from_scontrol

#: What ``dcops telemetry map-jobs --from`` reads from a file, by name.
CAPTURED_SOURCES = ("slurm-json", "scontrol", "pods")


def allocations_from_text(
    source: str, text: str, tenants: Mapping[str, str] | None, *, name: str
) -> list[Allocation]:
    """Parse ``text`` captured from ``source`` (one of :data:`CAPTURED_SOURCES`).

    ``name`` (the file) starts every error message; a malformed document is an
    :class:`InputError` (exit 2), never a partial result.
    """
    if source not in CAPTURED_SOURCES:
        known = ", ".join(CAPTURED_SOURCES)
        raise InputError(f"{name}: unknown source {source!r} (one of {known})")
    try:
        if source == "scontrol":
            return allocations_from_scontrol(text, tenants)
        doc = load_json(text, source=name)  # bounded: depth, big ints -> exit 2
        if source == "pods":
            if not isinstance(doc, Mapping):
                raise InputError(f"{name}: not a pod list (expected a JSON object)")
            return allocations_from_pods(doc, tenants)
        return allocations_from_json(doc, tenants)
    except SchedulerError as exc:
        raise InputError(f"{name}: {exc}") from exc
