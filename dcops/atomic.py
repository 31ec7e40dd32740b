"""The one atomic-write helper: a file is either its old content or its whole new content.

Write to a temporary file in the target's directory, fsync it, set its mode,
rename it over the target, fsync the directory. A crash or an error at any
point leaves the previous file as it was and no temporary file behind. The
default mode is 0600 (dcops's data is private, see :mod:`dcops.private_files`);
files that other programs must read (node_exporter's textfile collector) pass
``mode=0o644``.

Errors are :class:`OSError`; each caller names its own file in its own error.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from dcops.private_files import PRIVATE_FILE_MODE


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_target(path: Path | str, *, mode: int = PRIVATE_FILE_MODE) -> Iterator[Path]:
    """A temporary path to write the new ``path`` to; on a clean exit it replaces ``path``.

    For writers that want a path rather than text (``pyarrow.parquet.write_table``).
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_atomic(path: Path | str, content: str | bytes, *, mode: int = PRIVATE_FILE_MODE) -> Path:
    """Replace ``path`` with ``content`` (text is UTF-8) atomically, at ``mode``; its path."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    target = Path(path)
    with atomic_target(target, mode=mode) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    return target
