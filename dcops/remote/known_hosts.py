"""A pinned OpenSSH known_hosts file, read once and checked strictly.

Understood: plain names and ``[host]:port`` names, comma-separated name lists,
hashed names (``|1|salt|hash``), ``*``/``?`` patterns and ``!`` negations,
``@revoked`` lines (that key is refused for the names it lists). Not supported:
``@cert-authority`` lines (host certificates), which are skipped with a log
line; such hosts stay *unknown*, never accepted. Malformed lines are skipped
and logged by line number (never their content), as OpenSSH does.

The verdict is one of ``"ok"``, ``"unknown"`` (no key for that name),
``"changed"`` (keys are pinned for the name, none matches) or ``"revoked"``.
"""

from __future__ import annotations

import functools
import hmac
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from dcops.errors import ConfigError

if TYPE_CHECKING:
    from paramiko import PKey

log = logging.getLogger(__name__)

Verdict = Literal["ok", "unknown", "changed", "revoked"]


@dataclass(frozen=True)
class _Entry:
    patterns: tuple[str, ...]
    key_type: str
    blob: bytes
    revoked: bool = False

    def matches(self, name: str) -> bool:
        from paramiko.hostkeys import HostKeys

        lowered = name.lower()
        hit = False
        for pattern in self.patterns:
            if pattern.startswith("|1|"):
                if hmac.compare_digest(HostKeys.hash_host(name, pattern), pattern):
                    hit = True
                continue
            negated = pattern.startswith("!")
            pat = pattern[1:] if negated else pattern
            if _glob(pat).fullmatch(lowered):
                if negated:
                    return False
                hit = True
        return hit


@functools.lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    """OpenSSH patterns: ``*`` and ``?`` only (``[`` is literal, as in ``[host]:port``)."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower())
    return re.compile("".join(parts), re.DOTALL)


class KnownHosts:
    """The host keys pinned in one known_hosts file."""

    def __init__(self, entries: list[_Entry], path: str) -> None:
        self._entries = entries
        self.path = path

    @classmethod
    def load(cls, path: str | Path, *, required: bool) -> KnownHosts:
        """Read ``path``; a missing file is an empty set unless ``required`` (then ConfigError)."""
        import base64
        import binascii

        file = Path(path).expanduser()
        try:
            text = file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            if required:
                raise ConfigError(f"known_hosts file {file} does not exist") from None
            return cls([], str(file))
        except OSError as exc:
            raise ConfigError(f"cannot read known_hosts file {file}: {exc.strerror}") from exc
        entries: list[_Entry] = []
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split()
            revoked = False
            if fields[0].startswith("@"):
                marker = fields.pop(0)
                if marker == "@revoked":
                    revoked = True
                else:
                    log.info("%s:%d: %s lines are not supported; skipped", file, lineno, marker)
                    continue
            if len(fields) < 3:
                log.warning("%s:%d: malformed known_hosts line skipped", file, lineno)
                continue
            names, key_type, data = fields[0], fields[1], fields[2]
            try:
                blob = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                log.warning("%s:%d: undecodable key skipped", file, lineno)
                continue
            entries.append(_Entry(tuple(names.split(",")), key_type, blob, revoked))
        return cls(entries, str(file))

    def known_types(self, name: str) -> list[str]:
        """Key types pinned (not revoked) for ``name``, in file order."""
        seen: list[str] = []
        for entry in self._entries:
            if not entry.revoked and entry.key_type not in seen and entry.matches(name):
                seen.append(entry.key_type)
        return seen

    def check(self, name: str, key: PKey) -> Verdict:
        """Judge the key a server offered under the known_hosts name ``name``."""
        offered_type, offered_blob = key.get_name(), key.asbytes()
        pinned = False
        accepted = False
        for entry in self._entries:
            if not entry.matches(name):
                continue
            same = entry.key_type == offered_type and hmac.compare_digest(entry.blob, offered_blob)
            if entry.revoked:
                if same:
                    return "revoked"
                continue
            pinned = True
            accepted = accepted or same
        if accepted:
            return "ok"
        return "changed" if pinned else "unknown"


def known_hosts_name(hostname: str, port: int, alias: str | None) -> str:
    """The name OpenSSH looks up: the HostKeyAlias as is, else ``host`` or ``[host]:port``."""
    if alias:
        return alias
    return hostname if port == 22 else f"[{hostname}]:{port}"
