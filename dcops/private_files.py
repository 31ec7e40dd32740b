"""Files and directories only their owner can read: dcops's data directory is 0700.

The state store holds every tenant's rendered jobs with their environment,
the audit log and lock records; telemetry holds per-job energy. Whatever dcops
creates under its data directory is therefore private: every missing
directory on the way is created 0700 (as the XDG base-directory spec asks for
``$XDG_DATA_HOME``), files 0600. A directory or file found looser than that is
used, with one warning naming the ``chmod`` that fixes it.

Files that are meant to be read by others (the node_exporter textfile
collector's ``*.prom``) are written elsewhere with their own mode.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

_log = logging.getLogger("dcops.store")

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def warn_if_loose(path: Path, what: str) -> None:
    """Log a warning when ``path`` is readable or writable by group or others."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if stat.S_IMODE(mode) & 0o077:
        _log.warning(
            "%s %s has mode %o: other users can read it; chmod %s %s",
            what,
            path,
            stat.S_IMODE(mode),
            "700" if stat.S_ISDIR(mode) else "600",
            path,
        )


def private_dir(path: Path | str) -> Path:
    """``path`` as a directory; every missing part is created 0700; warn if the leaf is looser.

    Directories that already exist above the leaf are left as they are (they
    are the operator's: ``/var/lib``, a home directory); the leaf, when it
    exists, is warned about but not changed.
    """
    path = Path(path)
    if path.is_dir():
        warn_if_loose(path, "directory")
        return path
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for part in reversed(missing):
        with contextlib.suppress(FileExistsError):
            part.mkdir(mode=PRIVATE_DIR_MODE)
            part.chmod(PRIVATE_DIR_MODE)  # a umask of 0o077 or looser gives 0700 already
    return path


def open_private(path: Path | str, flags: int) -> int:
    """``os.open`` creating ``path`` 0600 (an existing file keeps its mode)."""
    return os.open(path, flags | os.O_CLOEXEC, PRIVATE_FILE_MODE)
