"""Run the tenant API under uvicorn: in the foreground (``dcops serve``) or in a thread.

:func:`serve` blocks until SIGINT/SIGTERM. :func:`running_server` starts the
same server on an already-bound socket (port 0: an ephemeral port) in a
background thread and yields its base URL -- for tests, benchmarks and demos.

Choices that matter for a multi-tenant endpoint:

* ``proxy_headers`` is off unless asked for, so a client cannot choose the
  address its failed authentications are counted against with
  ``X-Forwarded-For``;
* uvicorn's access log shows method, path and status -- never headers, so the
  bearer token is not logged (job ids are not secrets); query strings are
  redacted (:class:`RedactQuery`), so a token sent as ``?access_token=`` is not
  logged either;
* keep-alive is short and header size bounded (h11 defaults);
* shutdown is prompt: SIGTERM stops accepting at once and waits at most
  ``graceful_shutdown_s`` for requests in progress.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dcops.errors import ConfigError


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: str | None = None
    tls_key: str | None = None
    proxy_headers: bool = False
    access_log: bool = True
    log_level: str = "info"
    insecure_http: bool = False  # allow plain HTTP on a non-loopback address (behind a TLS proxy)
    graceful_shutdown_s: int = 5

    def check(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port: {self.port} is outside 0..65535")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("--tls-cert and --tls-key go together")
        if self.tls_cert is None and not self.insecure_http and not is_loopback(self.host):
            raise ConfigError(
                f"--host {self.host}: bearer tokens would cross the network in clear text; "
                "give --tls-cert/--tls-key, or --insecure-http behind a TLS proxy"
            )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_SECRET_PARAM = re.compile(
    r"(?i)([?&](?:[^=&#]*(?:token|key|secret|passw|auth|jwt|sig)[^=&#]*)=)[^&#]*"
)
_TOKEN_TEXT = re.compile(r"dct_[0-9A-Za-z._~+/=-]+")


def redact_url(path: str) -> str:
    """``/v1/jobs?access_token=X&active=1`` -> ``/v1/jobs?access_token=REDACTED&active=1``."""
    return _TOKEN_TEXT.sub("dct_REDACTED", _SECRET_PARAM.sub(r"\1REDACTED", path))


class RedactQuery(logging.Filter):
    """Redact credentials in the request line of uvicorn's access log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_url(args[2]), *args[3:])
        return True


def install_access_log_redaction() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactQuery) for f in access.filters):
        access.addFilter(RedactQuery())


def _config(app: Any, options: ServerOptions) -> Any:
    import uvicorn

    install_access_log_redaction()
    return uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        proxy_headers=options.proxy_headers,
        access_log=options.access_log,
        log_level=options.log_level,
        ssl_certfile=options.tls_cert,
        ssl_keyfile=options.tls_key,
        server_header=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=options.graceful_shutdown_s,
        lifespan="on",
    )


#: GIL switch interval of a serving process: one tenant's CPU-bound request (decoding a
#: body in a worker thread) hands the interpreter back to the event loop and to other
#: tenants' workers every millisecond instead of every 5 ms (bench/bench_api_isolation.py).
SWITCH_INTERVAL_S = 0.001


def tune_interpreter() -> None:
    """Settings of a process that serves the API (called by :func:`serve`)."""
    import sys

    sys.setswitchinterval(SWITCH_INTERVAL_S)


def serve(app: Any, options: ServerOptions) -> None:
    """Run until interrupted (uvicorn handles SIGINT/SIGTERM and drains requests)."""
    import uvicorn

    options.check()
    tune_interpreter()
    uvicorn.Server(_config(app, options)).run()


@contextlib.contextmanager
def running_server(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    start_timeout_s: float = 10.0,
    access_log: bool = False,
) -> Iterator[str]:
    """A real uvicorn serving ``app`` on ``host`` (ephemeral port by default); yields its URL."""
    import uvicorn

    if not is_loopback(host):
        raise ConfigError(f"running_server binds loopback addresses only, not {host!r}")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    options = ServerOptions(host=host, port=bound_port, access_log=access_log, log_level="warning")
    server = uvicorn.Server(_config(app, options))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="dcops-api-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the API server did not start")
        time.sleep(0.01)
    url_host = f"[{host}]" if ":" in host else host
    try:
        yield f"http://{url_host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(start_timeout_s)
        sock.close()
