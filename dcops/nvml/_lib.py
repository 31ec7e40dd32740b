"""NVML plumbing shared by the probe and the XID watcher.

nvidia-ml-py (module ``pynvml``) is imported lazily, so importing
:mod:`dcops.nvml` costs nothing on a machine without it. An
:class:`NvmlSession` holds one ``nvmlInit`` ... ``nvmlShutdown`` pair (NVML
counts them, so a probe and a watcher may each hold one). NVML errors are
sorted into three kinds by their return code:

- *missing*: the GPU or driver lacks the feature (``NOT_SUPPORTED``,
  ``FUNCTION_NOT_FOUND``, ``NO_PERMISSION``, ``NO_DATA``): the field stays empty;
- *lost*: the GPU is gone or unusable (``GPU_IS_LOST``, ``UNKNOWN``,
  ``RESET_REQUIRED``): the GPU is reported ``lost=True``;
- anything else is a :class:`~dcops.errors.BackendError`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from dcops.errors import BackendError, CommandTimeout

T = TypeVar("T")

_MISSING = ("NOT_SUPPORTED", "FUNCTION_NOT_FOUND", "NO_PERMISSION", "NO_DATA")
_LOST = ("GPU_IS_LOST", "UNKNOWN", "RESET_REQUIRED")


def load_pynvml() -> Any:
    """The ``pynvml`` module, or BackendError when nvidia-ml-py is not installed."""
    try:
        import pynvml
    except ImportError as exc:
        raise BackendError(
            "NVML unavailable: nvidia-ml-py is not installed (pip install 'dcops[nvml]')"
        ) from exc
    return pynvml


def _codes(pynvml: Any, names: tuple[str, ...]) -> frozenset[int]:
    return frozenset(
        int(getattr(pynvml, f"NVML_ERROR_{n}")) for n in names if hasattr(pynvml, f"NVML_ERROR_{n}")
    )


def is_missing(pynvml: Any, exc: BaseException) -> bool:
    """The error says the GPU or driver does not offer this reading."""
    return getattr(exc, "value", None) in _codes(pynvml, _MISSING)


def is_lost(pynvml: Any, exc: BaseException) -> bool:
    """The error says the GPU is gone (fell off the bus, unknown error, needs a reset)."""
    return getattr(exc, "value", None) in _codes(pynvml, _LOST)


def has_code(pynvml: Any, exc: BaseException, *names: str) -> bool:
    """The NVML error carries one of the ``NVML_ERROR_<name>`` codes."""
    return getattr(exc, "value", None) in _codes(pynvml, names)


class NvmlSession:
    """One ``nvmlInit`` (on first :meth:`open`, thread-safe) and its ``nvmlShutdown``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pynvml: Any = None

    @property
    def is_open(self) -> bool:
        return self._pynvml is not None

    def open(self) -> Any:
        """Initialise NVML once; return the ``pynvml`` module. BackendError when it cannot."""
        with self._lock:
            if self._pynvml is None:
                pynvml = load_pynvml()
                try:
                    pynvml.nvmlInit()
                except pynvml.NVMLError as exc:
                    raise BackendError(f"NVML unavailable: {exc}") from exc
                self._pynvml = pynvml
            return self._pynvml

    def close(self) -> None:
        """Shut NVML down if this session initialised it; errors on shutdown are ignored."""
        with self._lock:
            pynvml, self._pynvml = self._pynvml, None
        if pynvml is not None:
            with contextlib.suppress(pynvml.NVMLError):
                pynvml.nvmlShutdown()


def bounded(fn: Callable[[], T], *, timeout_s: float, host: str, what: str) -> T:
    """Run ``fn`` in a daemon thread; CommandTimeout if it has not returned in ``timeout_s``.

    NVML calls block in C and a wedged driver can hang them: the hung thread is
    left behind (daemon), the caller gets its answer in bounded time.
    """
    box: list[T] = []
    err: list[BaseException] = []

    def target() -> None:
        try:
            box.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            err.append(exc)

    worker = threading.Thread(target=target, name=f"dcops-nvml-{what}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise CommandTimeout(host, f"NVML {what} did not finish within {timeout_s:g} s")
    if err:
        raise err[0]
    return box[0]
