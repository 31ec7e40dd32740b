"""What the audit chain is sealed with, kept outside the state store: a key and exported heads.

* **The key** (``audit.key``, 32 random bytes in hex, mode 0600, created on
  first use in a 0700 directory): every record's hash is an HMAC-SHA256 under
  it, so someone who can write ``state.db`` but cannot read the key cannot
  append a record, nor edit history and recompute the chain.
* **The anchors** (``audit.anchors`` beside the key, append-only, 0600): after
  every append the new head (seq and hash) is written there, and to syslog
  (journald reads it) when ``/dev/log`` exists. ``verify`` checks the chain
  against the latest exported head by default, which catches records cut off
  the end, an emptied table and a replaced database.

Stores written before the chain was keyed keep their plain SHA-256 records:
when the key is created, the first anchor line says up to which ``seq`` the
records are unkeyed (``legacy_upto``); every later record is keyed, and the
first keyed record's ``prev_hash`` binds the unkeyed history.

Put the key somewhere the users who can write the state store cannot read
(``audit_key`` in config, e.g. ``/etc/dcops/audit.key`` owned by the dcops
service user); the default is ``audit.key`` beside ``state.db``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from dcops.errors import StoreError
from dcops.private_files import private_dir, warn_if_loose

_log = logging.getLogger("dcops.store")
KEY_BYTES = 32
SYSLOG_SOCKET = "/dev/log"
_TAIL_BYTES = 8192


@dataclass(frozen=True)
class Anchor:
    """One exported head."""

    seq: int
    head: str


class AuditSeal:
    """The key and the anchors file of one audit chain."""

    def __init__(self, key_path: Path | str, *, syslog: bool | None = None) -> None:
        self.key_path = Path(key_path)
        self.anchors_path = self.key_path.with_name(self.key_path.stem + ".anchors")
        self.syslog = os.path.exists(SYSLOG_SOCKET) if syslog is None else syslog
        self._key: bytes | None = None
        self._legacy_upto: int | None = None

    # -- the key -------------------------------------------------------------------

    def exists(self) -> bool:
        return self.key_path.exists()

    def key(self) -> bytes | None:
        """The key, or None when none was created yet."""
        if self._key is None:
            try:
                text = self.key_path.read_text(encoding="ascii").strip()
            except FileNotFoundError:
                return None
            except (OSError, UnicodeDecodeError) as exc:
                raise StoreError(f"audit key {self.key_path}: cannot read: {exc}") from exc
            warn_if_loose(self.key_path, "audit key")
            try:
                key = bytes.fromhex(text)
            except ValueError:
                key = b""
            if len(key) < 16:
                raise StoreError(f"audit key {self.key_path}: not a hex key of >= 16 bytes")
            self._key = key
        return self._key

    def create(self, head: Anchor) -> bytes:
        """Create the key (0600, exclusive); ``head`` is the unkeyed history it seals.

        The key appears whole or not at all: it is written to a private temporary file
        and linked into place, after the anchors file names the history it seals, so a
        reader in another process never sees an empty key or a key without its
        ``legacy_upto``. Returns the key of whoever created it first when two race.
        """
        private_dir(self.key_path.parent)
        if self.key_path.exists():
            return self._existing()
        key = secrets.token_bytes(KEY_BYTES)
        tmp = self.key_path.with_name(f".{self.key_path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(key.hex() + "\n")
                out.flush()
                os.fsync(out.fileno())
            self._append({"seq": head.seq, "head": head.head, "legacy_upto": head.seq})
            try:
                os.link(tmp, self.key_path)
            except FileExistsError:
                return self._existing()
        except OSError as exc:
            raise StoreError(f"audit key {self.key_path}: cannot create: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._key = key
        self._legacy_upto = head.seq
        return key

    def _existing(self) -> bytes:
        self._key = None
        key = self.key()
        if key is None:
            raise StoreError(f"audit key {self.key_path}: vanished while being created")
        return key

    # -- hashes ----------------------------------------------------------------------

    def mac(self, body: str) -> str:
        key = self.key()
        if key is None:
            raise StoreError(f"audit key {self.key_path} does not exist")
        return hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()

    # -- anchors ----------------------------------------------------------------------

    def _append(self, entry: dict[str, object]) -> None:
        line = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
        try:
            fd = os.open(self.anchors_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("ascii"))
            finally:
                os.close(fd)
        except OSError as exc:
            raise StoreError(f"audit anchors {self.anchors_path}: cannot append: {exc}") from exc

    def export(self, head: Anchor) -> None:
        """Write ``head`` to the anchors file and, when present, to syslog."""
        self._append({"seq": head.seq, "head": head.head})
        if self.syslog:
            _to_syslog(head)

    def legacy_upto(self) -> int:
        """Records up to this seq predate the key (plain SHA-256)."""
        if self._legacy_upto is None:
            try:
                with self.anchors_path.open("rb") as src:
                    first = src.readline()
            except FileNotFoundError:
                first = b""
            except OSError as exc:
                raise StoreError(f"audit anchors {self.anchors_path}: {exc}") from exc
            entry = _parse(first)
            value = entry.get("legacy_upto") if entry else None
            self._legacy_upto = value if isinstance(value, int) and value >= 0 else 0
        return self._legacy_upto

    def latest(self) -> Anchor | None:
        """The exported head with the highest seq, or None when nothing was exported."""
        try:
            with self.anchors_path.open("rb") as src:
                src.seek(0, os.SEEK_END)
                size = src.tell()
                src.seek(max(0, size - _TAIL_BYTES))
                tail = src.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"audit anchors {self.anchors_path}: {exc}") from exc
        best: Anchor | None = None
        for raw in tail.splitlines():
            entry = _parse(raw)
            if entry is None:
                continue
            seq, head = entry.get("seq"), entry.get("head")
            if isinstance(seq, int) and isinstance(head, str) and (best is None or seq > best.seq):
                best = Anchor(seq, head)
        return best


def _parse(raw: bytes) -> dict[str, object] | None:
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def _to_syslog(head: Anchor) -> None:
    import syslog

    try:
        syslog.openlog("dcops-audit", 0, syslog.LOG_AUTH)
        syslog.syslog(syslog.LOG_INFO, f"audit head seq={head.seq} hash={head.head}")
    except OSError:  # pragma: no cover - syslog is best effort beside the anchors file
        pass
