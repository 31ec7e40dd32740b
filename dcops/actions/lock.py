"""Locks per node: one run of a kind per target set, one actuator call per node.

``TargetLock(dir, "burnin", nodes)`` takes an exclusive ``flock`` on one file
per node (``<dir>/<kind>/<node>.lock``), in sorted order, without waiting: if
another run of that kind holds any of the nodes, nothing is held and
:class:`~dcops.errors.BusyError` (exit 4) names the holder. Two burn-ins on
disjoint nodes run side by side; two on overlapping nodes do not. The kernel
drops the locks of a run that dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from dcops.errors import BusyError, StoreError
from dcops.private_files import open_private, private_dir

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class TargetLock:
    """Exclusive, non-blocking locks on ``nodes`` for runs of ``kind``; a context manager."""

    def __init__(self, directory: Path | str, kind: str, nodes: Iterable[str]) -> None:
        self.dir = Path(directory) / _SAFE.sub("_", kind)
        self.kind = kind
        self.nodes = sorted(set(nodes))
        self._fds: list[int] = []

    def acquire(self) -> TargetLock:
        try:
            private_dir(self.dir)
        except OSError as exc:
            raise StoreError(f"lock directory {self.dir}: {exc.strerror or exc}") from exc
        try:
            for node in self.nodes:
                self._take(node)
        except BaseException:
            self.release()
            raise
        return self

    def _take(self, node: str) -> None:
        path = self.dir / f"{_SAFE.sub('_', node)}.lock"
        try:
            fd = open_private(path, os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            raise StoreError(f"lock file {path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 512).decode("utf-8", errors="replace").strip()
            os.close(fd)
            who = _describe(holder)
            raise BusyError(
                f"another {self.kind} run is acting on {node} ({who}); nothing was done"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "kind": self.kind}).encode())
        self._fds.append(fd)

    def release(self) -> None:
        fds, self._fds = self._fds, []
        for fd in fds:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)

    def __enter__(self) -> TargetLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _describe(raw: str) -> str:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return "holder unknown"
    return f"pid {data['pid']}" if isinstance(data, dict) and "pid" in data else "holder unknown"
