"""Write a node_exporter textfile-collector file atomically (sweeps, burn-in).

node_exporter reads ``*.prom`` in its ``--collector.textfile.directory``; a file
half-written when it scrapes would be a parse error for every metric in it. So
the text goes to a hidden temporary file in the same directory, is flushed to
disk, made world-readable (0644: metrics carry no secrets) and renamed over the
target, which is atomic on one filesystem.
"""

from __future__ import annotations

from pathlib import Path

from dcops import atomic
from dcops.errors import DcopsError, InputError


def write_atomic(directory: Path | str, name: str, text: str) -> Path:
    """Write ``text`` to ``directory/name`` atomically; its path.

    InputError when ``directory`` is not a directory; DcopsError when it cannot
    be written (the previous file, if any, is left as it was).
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise InputError(f"--textfile {folder}: not a directory")
    target = folder / name
    try:
        # 0644: node_exporter, another user, reads the textfile collector's directory
        return atomic.write_atomic(target, text, mode=0o644)
    except OSError as exc:
        raise DcopsError(f"--textfile {target}: cannot write: {exc.strerror or exc}") from exc
