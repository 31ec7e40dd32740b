"""Evidence bundles and escalation tickets.

A ``collect`` step writes each command's output into the run's bundle,
``<data_dir>/runbooks/<run_id>/evidence/<step>/<item>.txt``, with a
``manifest.json`` (argv, exit code, bytes, sha256 per file). An ``escalate``
step sends a ticket -- run, runbook, node, why, the steps so far and the
bundle's manifest -- to the configured sink: a webhook URL (POST JSON) or a
directory of JSON files (default ``<data_dir>/tickets``). Files are written
owner-only (0600) and atomically.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dcops.atomic import write_atomic
from dcops.errors import BackendError, ConfigError
from dcops.private_files import private_dir


def write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically, readable by the owner only (new directories 0700)."""
    private_dir(path.parent)
    write_atomic(path, text)


@dataclass
class Bundle:
    """One run's evidence directory."""

    root: Path

    def add(
        self, step: str, item: str, argv: list[str], code: int | None, text: str
    ) -> dict[str, Any]:
        path = self.root / step / f"{item}.txt"
        write_private(path, text)
        entry = {
            "step": step,
            "item": item,
            "argv": argv,
            "exit": code,
            "file": str(path),
            "bytes": len(text.encode("utf-8")),
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        }
        manifest = self.manifest()
        manifest = [m for m in manifest if not (m["step"] == step and m["item"] == item)]
        manifest.append(entry)
        write_private(self.root / "manifest.json", json.dumps(manifest, indent=2) + "\n")
        return entry

    def manifest(self) -> list[dict[str, Any]]:
        path = self.root / "manifest.json"
        if not path.is_file():
            return []
        data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
        return data


class TicketSink(Protocol):
    def send(self, ticket: dict[str, Any]) -> str:
        """Deliver ``ticket``; return where it went (a path or URL)."""
        ...


@dataclass
class DirectorySink:
    directory: Path

    def send(self, ticket: dict[str, Any]) -> str:
        path = self.directory / f"{ticket['id']}.json"
        write_private(path, json.dumps(ticket, indent=2, sort_keys=True, default=str) + "\n")
        return str(path)


@dataclass
class WebhookSink:
    url: str
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"runbooks.escalate_webhook must be an http(s) URL, not {self.url!r}")

    def send(self, ticket: dict[str, Any]) -> str:
        body = json.dumps(ticket, sort_keys=True, default=str).encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:  # noqa: S310
                status = answer.status
        except OSError as exc:
            raise BackendError(f"escalation webhook {self.url}: {exc}") from exc
        if status >= 300:
            raise BackendError(f"escalation webhook {self.url} answered {status}")
        return self.url


def make_sink(webhook: str | None, directory: str | Path | None, data_dir: Path) -> TicketSink:
    """The configured sink: a webhook, else a directory (default ``<data_dir>/tickets``)."""
    if webhook:
        return WebhookSink(webhook)
    return DirectorySink(Path(directory) if directory else data_dir / "tickets")
