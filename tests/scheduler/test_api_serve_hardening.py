"""``dcops serve`` as a process: tokens never in the access log, SIGTERM ends it promptly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from dcops.store import AuditLog, Store
from scheduler.api.server import redact_url
from scheduler.tenants.store import create_tenant
from scheduler.tenants.tokens import issue_token
from tests.scheduler.conftest import make_tenant
from tests.scheduler.test_api_uvicorn import raw


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_redact_url() -> None:
    assert redact_url("/v1/jobs?access_token=dct_ab.cd&active=1") == (
        "/v1/jobs?access_token=REDACTED&active=1"
    )
    assert "SECRET" not in redact_url("/v1/jobs?x=dct_0123456789abcdef.SECRET")
    assert redact_url("/v1/jobs/j-1/logs?tail_bytes=10") == "/v1/jobs/j-1/logs?tail_bytes=10"


def test_served_access_log_redacts_tokens_and_sigterm_is_prompt(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    root = tmp_path / "out"
    root.mkdir()
    with Store(db) as store:
        audit = AuditLog(store, actor="op")
        create_tenant(store, make_tenant(root.resolve()), audit)
        token = issue_token(store, "acme", audit).token
    port = _port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dcops",
                "--state-db",
                str(db),
                "serve",
                "--port",
                str(port),
                "--backend",
                "recording",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if raw(url, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        status, _ = raw(url, "GET", f"/v1/jobs?access_token={token}")
        assert status == 401  # no Authorization header: the query never authenticates
        # Hostile bodies in flight while SIGTERM arrives.
        body = ("name: x\nresources: {time_limit: 1h}\ncommand: [a]\nx: " + "[" * 30000).encode()
        hdrs = {"Authorization": f"Bearer {token}", "Content-Type": "application/yaml"}
        workers = [
            threading.Thread(target=lambda: raw(url, "POST", "/v1/jobs", body, **hdrs))
            for _ in range(8)
        ]
        for worker in workers:
            worker.start()
        time.sleep(0.2)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        assert time.monotonic() - start < 8
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    secret = token.split(".", 1)[1]
    assert "GET /v1/jobs?access_token=REDACTED" in text
    assert secret not in text
