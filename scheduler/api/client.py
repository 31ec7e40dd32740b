"""A tenant's client of the tenant API (``dcops serve``), authenticated by its token.

``ApiClient(url, token)`` submits, lists, shows, tails and cancels the
tenant's jobs over HTTP. The token comes from a file (first line) or
``DCOPS_TOKEN``; it is sent only in the ``Authorization`` header, never
printed (not even in a ``repr``), and never re-sent on a redirect (redirects
are refused). Plain ``http://`` is accepted for loopback only.

Standard library only (urllib): the tenant client needs no extra package.

Errors: 4xx -> :class:`~dcops.errors.InputError` (invalid spec, quota, unknown
job, bad token), 429 -> :class:`~dcops.errors.BusyError` (retry after the given
seconds), 5xx, redirects and connection failures -> :class:`~dcops.errors.BackendError`.
The CLI side is :mod:`dcops.cli.jobs_client`.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcops.errors import BackendError, BusyError, ConfigError, InputError

_log = logging.getLogger("dcops.api")
API_URL_ENV = "DCOPS_API_URL"
TOKEN_ENV = "DCOPS_TOKEN"  # noqa: S105 -- a variable name, not a secret
DEFAULT_TIMEOUT_S = 60.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx surfaces as an HTTPError: the token never follows a redirect


@dataclass(frozen=True)
class ApiClient:
    """A tenant's view of the API at ``url``."""

    url: str
    token: str
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __repr__(self) -> str:  # keep the token out of tracebacks
        return f"ApiClient(url={self.url!r}, token='***')"

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        query: dict[str, str] | None = None,
    ) -> Any:
        """One call; the decoded JSON answer, or a DcopsError with the API's code and message."""
        url = self.url.rstrip("/") + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        # check_url() admitted only http(s) URLs.
        req = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310
        opener = urllib.request.build_opener(_NoRedirect())
        try:
            with opener.open(req, timeout=self.timeout_s) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise _api_error(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BackendError(f"tenant API {self.url}: {reason}") from None
        except ValueError as exc:
            raise BackendError(f"tenant API {self.url}: the answer is not JSON") from exc

    def submit(self, spec_path: Path) -> dict[str, Any]:
        try:
            raw = spec_path.read_bytes()
        except OSError as exc:
            raise InputError(f"{spec_path}: cannot read job spec: {exc.strerror or exc}") from exc
        kind = "application/json" if spec_path.suffix == ".json" else "application/yaml"
        result: dict[str, Any] = self.request("POST", "/v1/jobs", body=raw, content_type=kind)
        return result

    def list_jobs(self, *, active_only: bool = False) -> list[dict[str, Any]]:
        query = {"active": "true"} if active_only else None
        jobs: list[dict[str, Any]] = self.request("GET", "/v1/jobs", query=query)["jobs"]
        return jobs

    def status(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/v1/jobs/{_quote(job_id)}")
        return result

    def logs(self, job_id: str, *, tail_bytes: int = 65536) -> str:
        query = {"tail_bytes": str(tail_bytes)}
        return str(self.request("GET", f"/v1/jobs/{_quote(job_id)}/logs", query=query)["logs"])

    def cancel(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("DELETE", f"/v1/jobs/{_quote(job_id)}")
        return result


def _quote(job_id: str) -> str:
    return urllib.parse.quote(job_id, safe="")


def _api_error(exc: urllib.error.HTTPError) -> Exception:
    code, message = "http_error", exc.reason
    try:
        detail = json.loads(exc.read(65536))["error"]
        code, message = str(detail["code"]), str(detail["message"])
    except (ValueError, KeyError, TypeError, OSError):
        pass
    text = f"tenant API: {code}: {message}"
    if exc.code == 429:
        retry = exc.headers.get("Retry-After", "?") if exc.headers else "?"
        return BusyError(f"{text} (retry after {retry} s)")
    if 300 <= exc.code < 400:
        return BackendError(f"tenant API answered a redirect ({exc.code}); not following it")
    if exc.code < 500:
        return InputError(text)
    return BackendError(text)


def check_url(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"--api: expected http(s)://HOST[:PORT], got {url!r}")
    if parsed.scheme == "http" and parsed.hostname not in ("127.0.0.1", "::1", "localhost"):
        raise ConfigError(f"--api: {url!r}: use https:// (the token must not travel in clear text)")
    return url


def read_token(token_file: Path | None, *, warn: Callable[[str], None] = _log.warning) -> str:
    """The token from ``--token-file`` (first line), else ``DCOPS_TOKEN``; ``warn`` is told
    when the file is readable by others."""
    if token_file is not None:
        try:
            mode = token_file.stat().st_mode
            text = token_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--token-file {token_file}: cannot read it") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warn(f"{token_file} is readable by others; chmod 600 it")
        token = text.strip().splitlines()[0].strip() if text.strip() else ""
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise ConfigError(f"an API token is needed: set {TOKEN_ENV} or give --token-file FILE")
    return token


def client_from_options(
    api: str | None,
    token_file: Path | None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    *,
    warn: Callable[[str], None] = _log.warning,
) -> ApiClient | None:
    """The tenant client when an API URL is given (flag, then DCOPS_API_URL), else None."""
    url = api or os.environ.get(API_URL_ENV, "").strip() or None
    if url is None:
        if token_file is not None:
            raise ConfigError(f"--token-file needs --api URL (or {API_URL_ENV})")
        return None
    return ApiClient(check_url(url), read_token(token_file, warn=warn), timeout_s)
