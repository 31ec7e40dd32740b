"""The SQLite state store: one file, WAL mode, versioned migrations.

Default path: ``$XDG_DATA_HOME/dcops/state.db`` (``~/.local/share/dcops/state.db``),
overridable with ``data_dir`` / ``state_db`` in config, ``DCOPS_STATE_DB`` or
``--state-db``. Several processes may write at once: every write runs in an
``IMMEDIATE`` transaction and waits (``busy_timeout``) for the others.

The store holds every tenant's job renderings: a directory it creates is 0700
and the database 0600 (SQLite gives ``-wal``/``-shm`` the database's mode); a
looser mode found on an existing store is warned about. The audit chain's key
and exported heads live outside the database (:mod:`dcops.store.seal`), by
default ``audit.key`` and ``audit.anchors`` beside it.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from dcops.errors import StoreError
from dcops.private_files import private_dir, warn_if_loose
from dcops.store.migrations import MIGRATIONS
from dcops.store.seal import AuditSeal

BUSY_TIMEOUT_MS = 30_000


def utc_now() -> str:
    """Timestamps in the store: UTC ISO-8601 with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Store:
    """An open state store. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: Path | str, *, audit_key: Path | str | None = None) -> None:
        self.path = Path(path)
        self.seal = AuditSeal(
            audit_key if audit_key is not None else self.path.with_name("audit.key")
        )
        try:
            private_dir(self.path.parent)
            _create_private(self.path)
            for suffix in ("", "-wal", "-shm"):
                warn_if_loose(Path(f"{self.path}{suffix}"), "state store file")
            # The actuator runs backend calls in a worker thread (with a timeout); the sim's
            # scheduler writes through this connection there. sqlite3 is serialized
            # (threadsafety 3), and calls are not concurrent: the caller waits for the worker.
            self.conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            self.conn.row_factory = sqlite3.Row
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            _use_wal(self.conn, BUSY_TIMEOUT_MS / 1000)
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"state store {self.path}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"state store {self.path}: {exc.strerror or exc}") from exc

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        with self.transaction():
            current = self.schema_version
            if current > len(MIGRATIONS):
                raise StoreError(
                    f"state store {self.path} has schema {current}, newer than this dcops "
                    f"({len(MIGRATIONS)}): upgrade dcops"
                )
            for version in range(current, len(MIGRATIONS)):
                for statement in _statements(MIGRATIONS[version]):
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {version + 1}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: holds the write lock from the start; rolls back on error."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"state store {self.path}: {exc}") from exc
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                self.conn.execute("ROLLBACK")
                raise StoreError(f"state store {self.path}: {exc}") from exc

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _use_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """Switch a database to WAL, waiting out the others that are switching it.

    Processes opening a new store at once race here, and SQLite answers this pragma
    with "database is locked" at once instead of calling the busy handler.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite does (it would use the umask)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _statements(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        code = line.split("--", 1)[0]
        buffer += code
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
