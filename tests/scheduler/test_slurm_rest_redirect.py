"""The slurm-rest backend never follows a redirect with the tenant's JWT (real HTTP, loopback)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from dcops.errors import SchedulerError
from scheduler.backends.slurm_rest import SlurmRestBackend, urllib_transport
from tests.scheduler.conftest import make_tenant

SECRET = "jwt-secret-of-acme01"


class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []
    location = ""

    def do_GET(self) -> None:
        type(self).seen.append(dict(self.headers))
        if self.location:
            self.send_response(307)
            self.send_header("Location", self.location + self.path)
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        if not self.location:
            self.wfile.write(b'{"jobs": []}')

    def log_message(self, *args: object) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[HTTPServer, str]:
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def servers() -> Iterator[tuple[str, type[_Recorder]]]:
    other = type("Other", (_Recorder,), {"seen": [], "location": ""})
    evil, evil_url = _serve(other)
    first = type("First", (_Recorder,), {"seen": [], "location": evil_url})
    front, front_url = _serve(first)
    try:
        yield front_url, other
    finally:
        front.shutdown()
        evil.shutdown()


class _Tokens:
    def token(self, user: str) -> str:
        return SECRET


def test_redirect_is_an_error_and_the_token_stays_home(
    servers: tuple[str, type[_Recorder]], root: Path
) -> None:
    url, other = servers
    status, _ = urllib_transport("GET", url + "/x", {"X-SLURM-USER-TOKEN": SECRET}, None, 5)
    assert status == 307
    backend = SlurmRestBackend(url=url, tokens=_Tokens(), version="0.0.42")
    with pytest.raises(SchedulerError, match="redirect"):
        backend.list(make_tenant(root))
    assert other.seen == []  # the other host never saw a request, let alone the JWT
