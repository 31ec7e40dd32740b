"""Escalation sinks: a directory of private JSON files, and a webhook (a real local HTTP server)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from dcops.errors import BackendError, ConfigError
from runbooks.evidence import Bundle, DirectorySink, WebhookSink, make_sink


def test_bundle_files_and_manifest_are_private(tmp_path: Path) -> None:
    bundle = Bundle(tmp_path / "runs" / "rb-1" / "evidence")
    entry = bundle.add("collect", "dmesg", ["dmesg"], 0, "NVRM: Xid 79\n")
    assert Path(entry["file"]).read_text() == "NVRM: Xid 79\n"
    assert entry["sha256"] and entry["bytes"] == 13
    assert [m["item"] for m in bundle.manifest()] == ["dmesg"]
    for path in (tmp_path / "runs", bundle.root, Path(entry["file"])):
        assert path.stat().st_mode & 0o077 == 0


def test_directory_sink_is_the_default(tmp_path: Path) -> None:
    sink = make_sink(None, None, tmp_path)
    assert isinstance(sink, DirectorySink) and sink.directory == tmp_path / "tickets"
    where = sink.send({"id": "t-1", "node": "n1"})
    assert json.loads(Path(where).read_text())["node"] == "n1"


class _Hook(BaseHTTPRequestHandler):
    got: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.got.append(json.loads(body))
        self.send_response(202 if self.path == "/ok" else 500)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def test_webhook_sink_posts_the_ticket() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        assert WebhookSink(f"{base}/ok").send({"id": "t-2", "node": "n2"}) == f"{base}/ok"
        assert _Hook.got[-1] == {"id": "t-2", "node": "n2"}
        with pytest.raises(BackendError, match="500"):
            WebhookSink(f"{base}/broken").send({"id": "t-3"})
    finally:
        server.shutdown()
    with pytest.raises(ConfigError):
        WebhookSink("file:///etc/passwd")
