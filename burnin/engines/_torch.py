"""Shared torch plumbing of the burn-in engines: lazy import, device choice, error wrapping.

torch is imported only when an engine runs, never when this package is imported,
so ``dcops --help`` stays instant on a machine without torch. Library errors
become :class:`dcops.errors.BackendError` with a one-line message; the cause
stays on ``__cause__``.
"""

from __future__ import annotations

import socket
from typing import Any

from dcops.errors import BackendError, ConfigError

#: Device kinds an engine can run on; "auto" picks cuda when torch sees a GPU.
DEVICE_KINDS = ("auto", "cuda", "cpu")


def import_torch() -> Any:
    """``import torch``, or a BackendError that says how to install it."""
    try:
        import torch
    except ImportError as exc:
        raise BackendError(
            "torch is not installed: install dcops[torch] (a CPU wheel is enough off-GPU)"
        ) from exc
    return torch


def resolve_device_kind(torch: Any, kind: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; ``cuda`` without one errors."""
    if kind not in DEVICE_KINDS:
        raise ConfigError(f"device must be one of {', '.join(DEVICE_KINDS)}, not {kind!r}")
    cuda = bool(torch.cuda.is_available())
    if kind == "auto":
        return "cuda" if cuda else "cpu"
    if kind == "cuda" and not cuda:
        raise BackendError("device 'cuda' asked for, but torch sees no CUDA GPU on this node")
    return kind


def local_hostname() -> str:
    """The name this node reports for itself (the ``node`` of its GpuRefs)."""
    return socket.gethostname()


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's text (torch errors run to pages)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def wrap_torch_error(where: str, exc: BaseException) -> BackendError:
    """A one-line BackendError for a torch failure (CUDA OOM, device lost, NCCL/gloo error)."""
    name = type(exc).__name__
    if name == "OutOfMemoryError" or "out of memory" in str(exc).lower():
        return BackendError(f"{where}: out of device memory ({first_line(exc)})")
    return BackendError(f"{where}: {name}: {first_line(exc)}")
