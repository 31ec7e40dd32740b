"""A run lock so overlapping cron sweeps never run twice (``fcntl.flock`` on a file).

::

    with RunLock(data_dir / "sweep.lock"):
        ...                                   # BusyError (exit 4) if another run holds it

The kernel releases a ``flock`` when its holder dies (killed, OOM, reboot), so
a killed run never blocks the next one. The file itself stays, holding the
holder's pid, host, start time and command as JSON while it runs and emptied on
a clean release: a file still holding a record when we get the lock is a
leftover of a run that died; it is reported in :attr:`RunLock.recovered` and
overwritten. The file is never unlinked (unlinking would let two runs lock two
different files).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from dcops.errors import BusyError, StoreError
from dcops.private_files import open_private, private_dir


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """An exclusive, non-blocking lock on ``path``; a context manager."""

    def __init__(self, path: Path | str, *, what: str = "sweep") -> None:
        self.path = Path(path)
        self.what = what
        self.recovered: dict[str, Any] | None = None  # a dead run's record we took over
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            private_dir(self.path.parent)
            fd = open_private(self.path, os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            raise StoreError(f"lock file {self.path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise BusyError(
                f"another {self.what} is running: {describe(holder)} ({self.path})"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"lock file {self.path}: {exc.strerror or exc}") from exc
        self.recovered = _read(fd) or None
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "argv": sys.argv[:8],
        }
        _write(fd, json.dumps(record) + "\n")
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # a clean exit leaves an empty file
        os.close(fd)  # closing drops the flock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def describe(holder: dict[str, Any]) -> str:
    """``pid 123 on host, started 2025-...`` from a lock record (whatever survived of it)."""
    if not holder:
        return "holder unknown (empty lock file)"
    pid = holder.get("pid")
    text = f"pid {pid}"
    if holder.get("host"):
        text += f" on {holder['host']}"
    if holder.get("started_at"):
        text += f", started {holder['started_at']}"
    same_host = holder.get("host") == socket.gethostname()
    if isinstance(pid, int) and same_host and not _pid_alive(pid):
        text += " (not running: a child it started may still hold the lock)"
    return text


def _read(fd: int) -> dict[str, Any]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 4096)
    except OSError:
        return {}
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError:
        return {"raw": raw[:200].decode("utf-8", errors="replace")}
    return data if isinstance(data, dict) else {"raw": str(data)[:200]}


def _write(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, text.encode())
