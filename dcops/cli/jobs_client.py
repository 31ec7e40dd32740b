"""The tenant side of ``dcops jobs``: talk to the tenant API (``dcops serve``) with a token.

When ``--api URL`` (or ``DCOPS_API_URL``) is given, ``dcops jobs
submit|list|status|logs|cancel`` act as the tenant the token belongs to, over
HTTP, instead of as the operator on the store. The token comes from
``DCOPS_TOKEN`` or ``--token-file`` (first line); it is sent only in the
``Authorization`` header, never printed, and never re-sent on a redirect
(redirects are refused). Plain ``http://`` is accepted for loopback only.

Standard library only (urllib): the tenant client needs no extra package.

Errors map to the CLI's exit codes: 4xx -> 2 (input: invalid spec, quota,
unknown job, bad token), 429 -> 4 (busy: retry after the given seconds),
5xx and connection failures -> 3.
"""

from __future__ import annotations

import json
import os
import stat
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from dcops.errors import BackendError, BusyError, ConfigError, InputError

F = TypeVar("F", bound=Callable[..., Any])
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


def read_token(token_file: Path | None) -> str:
    """The token from ``--token-file`` (first line), else ``DCOPS_TOKEN``."""
    if token_file is not None:
        try:
            mode = token_file.stat().st_mode
            text = token_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--token-file {token_file}: cannot read it") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            click.echo(
                f"dcops: warning: {token_file} is readable by others; chmod 600 it", err=True
            )
        token = text.strip().splitlines()[0].strip() if text.strip() else ""
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise ConfigError(f"an API token is needed: set {TOKEN_ENV} or give --token-file FILE")
    return token


def client_from_options(
    api: str | None, token_file: Path | None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> ApiClient | None:
    """The tenant client when an API URL is given (flag, then DCOPS_API_URL), else None."""
    url = api or os.environ.get(API_URL_ENV, "").strip() or None
    if url is None:
        if token_file is not None:
            raise ConfigError(f"--token-file needs --api URL (or {API_URL_ENV})")
        return None
    return ApiClient(check_url(url), read_token(token_file), timeout_s)


def api_options(func: F) -> F:
    """Add ``--api URL`` and ``--token-file FILE`` to a ``dcops jobs`` command."""
    func = click.option(
        "--token-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"File holding the tenant API token (default: ${TOKEN_ENV}).",
    )(func)
    return click.option(
        "--api",
        "api_url",
        metavar="URL",
        help=f"Act as a tenant through the API at URL (default: ${API_URL_ENV}).",
    )(func)


# -- what each command prints -------------------------------------------------------------------


def _echo_json(data: object) -> None:
    from dcops.cli.common import dump_json

    click.echo(dump_json(data))


def submit_command(client: ApiClient, spec: Path, as_json: bool) -> None:
    result = client.submit(spec)
    if as_json:
        _echo_json(result)
        return
    click.echo(f"submitted {result['job_id']} (backend job {result['backend_job_id']})")
    click.echo(f"spec sha256 {result['spec_hash']}", err=True)


def list_command(client: ApiClient, active_only: bool, as_json: bool) -> None:
    jobs = client.list_jobs(active_only=active_only)
    if as_json:
        _echo_json({"jobs": jobs})
        return
    if not jobs:
        click.echo("no jobs")
        return
    click.echo(f"{'JOB':<18} {'BACKEND JOB':<12} {'STATE':<13} {'GPUS':>5}  NAME")
    for job in jobs:
        click.echo(
            f"{job.get('job_id', ''):<18} {job.get('backend_job_id') or '':<12} "
            f"{job.get('state', ''):<13} {job.get('gpus', ''):>5}  {job.get('name', '')}"
        )


def status_command(client: ApiClient, job_id: str, as_json: bool) -> None:
    job = client.status(job_id)
    if as_json:
        _echo_json(job)
        return
    for key, value in job.items():
        click.echo(f"{key:16} {show_value(value)}".rstrip())


def show_value(value: object) -> str:
    """A status field for people: nothing for none (never "None"), lists comma-joined."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def logs_command(client: ApiClient, job_id: str, tail_bytes: int) -> None:
    click.echo(client.logs(job_id, tail_bytes=tail_bytes), nl=False)


def cancel_command(client: ApiClient, job_id: str, as_json: bool) -> None:
    result = client.cancel(job_id)
    if as_json:
        _echo_json(result)
        return
    click.echo(f"cancelled {result.get('job_id', job_id)}")
