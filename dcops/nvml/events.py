"""XidWatcher: critical XID events from this machine's GPUs, collected over a window.

Registers every GPU for ``nvmlEventTypeXidCriticalError`` on one NVML event
set and waits on it (``nvmlEventSetWait_v2``, ``poll_ms`` at a time, so
:meth:`XidWatcher.stop` returns promptly) in a daemon thread, typically for
the duration of a burn-in::

    with XidWatcher() as watcher, NvmlProbe(watcher=watcher) as probe:
        run_burn_in()
        reading = probe.read("localhost")   # carries the XIDs seen meanwhile

NVML gives the XID code and the device, not the driver's message text nor a
timestamp: an event is stamped when it is received, and its message comes
from ``messages`` (code -> text; empty by default). GPUs that cannot be
registered (lost, or events not supported) are listed in ``unwatched``;
events whose device cannot be matched to a GPU index are kept in
``unattributed`` rather than dropped.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

from dcops.errors import BackendError
from dcops.measurements import XidEvent
from dcops.nvml._lib import NvmlSession, bounded, has_code, is_lost, is_missing

DEFAULT_POLL_MS = 500
DEFAULT_TIMEOUT_S = 30.0


def _handle_key(handle: Any) -> int | None:
    """A device handle's address, to match event devices to registered GPUs."""
    try:
        value = ctypes.cast(handle, ctypes.c_void_p).value
    except (TypeError, ctypes.ArgumentError):
        return None
    return int(value) if value else None


class XidWatcher:
    """Collects critical XID events per GPU index between :meth:`start` and :meth:`stop`."""

    def __init__(
        self,
        *,
        poll_ms: int = DEFAULT_POLL_MS,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        messages: Mapping[int, str] | None = None,
        clock: Callable[[], float] = time.time,
        host: str = "localhost",
    ) -> None:
        if poll_ms < 1:
            raise ValueError("poll_ms must be at least 1")
        self.poll_ms = poll_ms
        self.timeout_s = timeout_s
        self.host = host
        self._messages = dict(messages or {})
        self._clock = clock
        self._session = NvmlSession()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._event_set: Any = None
        self._index_by_key: dict[int, int] = {}
        self._watched: list[int] = []
        self._unwatched: list[int] = []
        self._pending: dict[int, list[XidEvent]] = {}
        self._window: dict[int, list[XidEvent]] = {}
        self._unattributed: list[XidEvent] = []
        self._errors: list[str] = []

    # -- what was seen ----------------------------------------------------------------

    @property
    def watched(self) -> tuple[int, ...]:
        """GPU indices registered for XID events."""
        return tuple(self._watched)

    @property
    def unwatched(self) -> tuple[int, ...]:
        """GPU indices that could not be registered (lost, or events not supported)."""
        return tuple(self._unwatched)

    @property
    def unattributed(self) -> tuple[XidEvent, ...]:
        """Events whose device matched no GPU index."""
        with self._lock:
            return tuple(self._unattributed)

    @property
    def errors(self) -> tuple[str, ...]:
        """Wait failures met by the background thread (it keeps waiting after each)."""
        with self._lock:
            return tuple(self._errors)

    def events(self) -> dict[int, tuple[XidEvent, ...]]:
        """Every event of the window so far, by GPU index (:meth:`drain` does not clear it)."""
        with self._lock:
            return {i: tuple(v) for i, v in self._window.items()}

    def drain(self, indices: Iterable[int] | None = None) -> dict[int, tuple[XidEvent, ...]]:
        """Events not yet drained, by GPU index, and forget them (only ``indices`` if given)."""
        with self._lock:
            keys = list(self._pending) if indices is None else [i for i in indices]
            out = {i: tuple(self._pending.pop(i)) for i in keys if self._pending.get(i)}
        return out

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, *, background: bool = True) -> XidWatcher:
        """Register every GPU; with ``background`` a daemon thread then waits for events.

        Without it, call :meth:`poll` yourself. BackendError when NVML or its
        events are unavailable; CommandTimeout when registration hangs.
        """
        if self._event_set is not None:
            return self
        bounded(self._register, timeout_s=self.timeout_s, host=self.host, what="event registration")
        self._stop.clear()
        if background and self._watched:
            self._thread = threading.Thread(target=self._run, name="dcops-xid-watcher", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop waiting, free the event set and shut NVML down; collected events stay."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(self.poll_ms / 1000.0 + self.timeout_s)
            if thread.is_alive():
                # NVML's wait is hung: leave its event set and session alone.
                with self._lock:
                    self._errors.append(
                        f"nvmlEventSetWait_v2 still blocked after {self.timeout_s:g} s"
                    )
                return
        self._free()

    def __enter__(self) -> XidWatcher:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- waiting ----------------------------------------------------------------------

    def poll(self, timeout_ms: int | None = None) -> XidEvent | None:
        """Wait up to ``timeout_ms`` (default ``poll_ms``) for one event; record and return it."""
        if self._event_set is None:
            raise BackendError("XID watcher is not started")
        pynvml = self._session.open()
        wait_ms = self.poll_ms if timeout_ms is None else timeout_ms
        try:
            data = pynvml.nvmlEventSetWait_v2(self._event_set, wait_ms)
        except pynvml.NVMLError as exc:
            if has_code(pynvml, exc, "TIMEOUT"):
                return None
            raise BackendError(f"NVML: waiting for XID events failed: {exc}") from exc
        if not int(data.eventType) & int(pynvml.nvmlEventTypeXidCriticalError):
            return None
        code = int(data.eventData)
        event = XidEvent(code=code, timestamp_s=self._clock(), message=self._messages.get(code, ""))
        index = self._index_of(pynvml, data.device)
        with self._lock:
            if index is None:
                self._unattributed.append(event)
            else:
                self._pending.setdefault(index, []).append(event)
                self._window.setdefault(index, []).append(event)
        return event

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except BackendError as exc:
                with self._lock:
                    self._errors.append(str(exc))
                self._stop.wait(self.poll_ms / 1000.0)  # no busy loop on a failing wait

    def _index_of(self, pynvml: Any, device: Any) -> int | None:
        key = _handle_key(device)
        if key is not None and key in self._index_by_key:
            return self._index_by_key[key]
        if key is None:
            return None
        try:
            return int(pynvml.nvmlDeviceGetIndex(device))
        except pynvml.NVMLError:
            return None

    def _register(self) -> None:
        pynvml = self._session.open()
        try:
            event_set = pynvml.nvmlEventSetCreate()
        except pynvml.NVMLError as exc:
            self._session.close()
            raise BackendError(f"NVML: XID events unavailable: {exc}") from exc
        try:
            count = int(pynvml.nvmlDeviceGetCount())
            for index in range(count):
                self._register_gpu(pynvml, event_set, index)
        except pynvml.NVMLError as exc:
            self._free_set(pynvml, event_set)
            self._session.close()
            raise BackendError(f"NVML: cannot register for XID events: {exc}") from exc
        self._event_set = event_set

    def _register_gpu(self, pynvml: Any, event_set: Any, index: int) -> None:
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            pynvml.nvmlDeviceRegisterEvents(handle, pynvml.nvmlEventTypeXidCriticalError, event_set)
        except pynvml.NVMLError as exc:
            if is_lost(pynvml, exc) or is_missing(pynvml, exc):
                self._unwatched.append(index)
                return
            raise
        self._watched.append(index)
        key = _handle_key(handle)
        if key is not None:
            self._index_by_key[key] = index

    def _free(self) -> None:
        event_set, self._event_set = self._event_set, None
        if event_set is not None and self._session.is_open:
            self._free_set(self._session.open(), event_set)
        self._session.close()

    @staticmethod
    def _free_set(pynvml: Any, event_set: Any) -> None:
        with contextlib.suppress(pynvml.NVMLError):  # best effort: it dies with the process
            pynvml.nvmlEventSetFree(event_set)
