"""The tenant API as an ASGI application (Starlette): routes, auth, limits, audit.

Every ``/v1/jobs`` call goes through the same steps:

1. **who** -- the ``Authorization: Bearer`` token (scheme case-insensitive),
   checked by the context's ``authenticate`` in a worker thread. Nothing in the
   path, query or body can name a tenant. Failed authentications lock out the
   *credential being guessed* (the token id, or for malformed tokens the address
   sending them), never the address: valid tokens from a shared proxy still work;
2. **how often and how many at once** -- the tenant's token buckets
   (:mod:`scheduler.api.ratelimit`) and its concurrent requests
   (``max_concurrent_per_tenant``): one tenant's slow requests hold at most that
   many of the workers, so another tenant's calls keep their latency;
3. **how big** -- ``Content-Length`` and the streamed body against
   ``max_body_bytes`` (413), then decode and refuse identity claims
   (:mod:`scheduler.api.body`);
4. **do it** -- the job service, as that tenant, and one audit record with
   ``actor = tenant:<name>``.

Blocking work (SQLite, backends) runs in :class:`~scheduler.api.workers.WorkerPool`;
the event loop only parses HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dcops import __version__
from dcops.errors import DcopsError, InputError
from scheduler.api.body import parse_spec
from scheduler.api.openapi import openapi_document
from scheduler.api.params import allowed_methods, bool_param, check_query, int_param, job_dict
from scheduler.api.ports import ApiContext, ContextFactory
from scheduler.api.problems import ApiProblem, Code, problem_for
from scheduler.api.ratelimit import RateLimiter, retry_after_header
from scheduler.api.slots import TenantSlots
from scheduler.api.workers import WorkerPool
from scheduler.tenants.contract import TenantContract

_log = logging.getLogger("dcops.api")
_BEARER_RE = re.compile(r"(?i:bearer)[ \t]+([A-Za-z0-9._~+/=-]{1,512})")
_TOKEN_ID_RE = re.compile(r"dct_([0-9a-f]{16})\.")
_JOB_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True)
class ApiSettings:
    """Server-side limits (the per-tenant submission rate comes from each contract)."""

    max_body_bytes: int = 256 * 1024
    requests_per_minute: float = 600.0  # every authenticated call, per tenant
    auth_failures_per_minute: float = 30.0  # per credential (token id; malformed: per address)
    workers: int = 8
    max_concurrent_per_tenant: int = 1  # requests of one tenant in the server at once
    concurrency_wait_s: float = 10.0  # how long a request waits for its tenant's slot (then 429)
    default_log_bytes: int = 64 * 1024
    max_log_bytes: int = 4 * 1024 * 1024


def _json(data: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(data, status_code=status, headers={**_HEADERS, **(headers or {})})


def problem_response(problem: ApiProblem) -> Response:
    headers: dict[str, str] = {}
    if problem.retry_after_s is not None:
        headers["Retry-After"] = str(problem.retry_after_s)
    if problem.code is Code.UNAUTHORIZED:
        headers["WWW-Authenticate"] = 'Bearer realm="dcops"'
    return _json(problem.body(), problem.status, headers)


@dataclass
class _Call:
    """One request's facts for the audit record."""

    action: str
    route: str
    tenant: TenantContract | None = None
    target: str = ""
    evidence: dict[str, Any] | None = None
    slot: str | None = None  # the tenant whose concurrency slot this call holds


class TenantApi:
    """The application state; :attr:`app` is the ASGI app."""

    def __init__(self, factory: ContextFactory, settings: ApiSettings | None = None) -> None:
        self.settings = settings or ApiSettings()
        self.limiter = RateLimiter()
        self.pool = WorkerPool(factory, self.settings.workers)
        self.slots = TenantSlots(
            self.settings.max_concurrent_per_tenant, self.settings.concurrency_wait_s
        )
        self._openapi = openapi_document(__version__)
        self.app = Starlette(
            routes=[
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/v1/openapi.json", self.openapi, methods=["GET"]),
                Route("/v1/jobs", self.submit, methods=["POST"]),
                Route("/v1/jobs", self.list_jobs, methods=["GET"]),
                Route("/v1/jobs/{job_id}", self.status, methods=["GET"]),
                Route("/v1/jobs/{job_id}", self.cancel, methods=["DELETE"]),
                Route("/v1/jobs/{job_id}/logs", self.logs, methods=["GET"]),
            ],
            exception_handlers={HTTPException: self._http_error, Exception: self._internal_error},
            lifespan=self._lifespan,
        )

    # -- lifecycle ------------------------------------------------------------------

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await asyncio.get_running_loop().run_in_executor(None, self.pool.stop)

    def close(self) -> None:
        self.pool.stop()

    # -- open routes ------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return _json({"status": "ok", "version": __version__})

    async def openapi(self, request: Request) -> Response:
        return _json(self._openapi)

    # -- tenant routes ----------------------------------------------------------------

    async def submit(self, request: Request) -> Response:
        call = _Call("api.submit", "POST /v1/jobs")

        async def handle() -> Response:
            tenant = await self._authenticate(request, call)  # first: refusals are audited
            check_query(request, set())
            self._limit("submit", tenant, per_minute=tenant.max_submissions_per_minute)
            self._limit("request", tenant, per_minute=self.settings.requests_per_minute)
            raw = await self._read_body(request)
            content_type = request.headers.get("content-type")

            def work(ctx: ApiContext) -> Response:
                spec, digest = parse_spec(raw, content_type, tenant_name=tenant.name)
                call.evidence = {"spec_hash": digest, "spec_name": spec.name}
                submitted = ctx.service.submit(tenant, spec, spec_hash=digest)
                call.target = f"job:{submitted.job_id}"
                call.evidence.update(
                    spec_hash=submitted.spec_hash,
                    backend=submitted.backend,
                    backend_job_id=submitted.backend_job_id,
                    gpus=spec.resources.gpus_total,
                )
                self._audit(ctx, call, "ok", 201)
                return _json(submitted.to_dict(), 201, {"Location": f"/v1/jobs/{submitted.job_id}"})

            return await self._in_worker(call, work)

        return await self._guard(call, handle)

    async def list_jobs(self, request: Request) -> Response:
        call = _Call("api.list", "GET /v1/jobs")

        async def handle() -> Response:
            tenant = await self._authenticate(request, call)
            params = check_query(request, {"active"})
            active = bool_param(params, "active")
            self._limit("request", tenant, per_minute=self.settings.requests_per_minute)

            def work(ctx: ApiContext) -> Response:
                jobs = [job_dict(j) for j in ctx.service.list_jobs(tenant, active_only=active)]
                self._audit(ctx, call, "ok", 200)
                return _json({"jobs": jobs})

            return await self._in_worker(call, work)

        return await self._guard(call, handle)

    async def status(self, request: Request) -> Response:
        call = _Call("api.status", "GET /v1/jobs/{id}")

        async def handle() -> Response:
            tenant = await self._authenticate(request, call)  # first: refusals are audited
            check_query(request, set())
            job_id = self._job_id(request, call)
            self._limit("request", tenant, per_minute=self.settings.requests_per_minute)

            def work(ctx: ApiContext) -> Response:
                view = job_dict(ctx.service.status(tenant, job_id))
                self._audit(ctx, call, "ok", 200)
                return _json(view)

            return await self._in_worker(call, work, job_id=job_id)

        return await self._guard(call, handle)

    async def logs(self, request: Request) -> Response:
        call = _Call("api.logs", "GET /v1/jobs/{id}/logs")

        async def handle() -> Response:
            tenant = await self._authenticate(request, call)
            params = check_query(request, {"tail_bytes"})
            tail = int_param(
                params, "tail_bytes", self.settings.default_log_bytes, self.settings.max_log_bytes
            )
            job_id = self._job_id(request, call)
            self._limit("request", tenant, per_minute=self.settings.requests_per_minute)

            def work(ctx: ApiContext) -> Response:
                text = ctx.service.logs(tenant, job_id, tail_bytes=tail)
                self._audit(ctx, call, "ok", 200)
                return _json({"job_id": job_id, "logs": text})

            return await self._in_worker(call, work, job_id=job_id)

        return await self._guard(call, handle)

    async def cancel(self, request: Request) -> Response:
        call = _Call("api.cancel", "DELETE /v1/jobs/{id}")

        async def handle() -> Response:
            tenant = await self._authenticate(request, call)  # first: refusals are audited
            check_query(request, set())
            job_id = self._job_id(request, call)
            self._limit("request", tenant, per_minute=self.settings.requests_per_minute)

            def work(ctx: ApiContext) -> Response:
                ctx.service.cancel(tenant, job_id)
                self._audit(ctx, call, "ok", 200)
                return _json({"job_id": job_id, "cancelled": True})

            return await self._in_worker(call, work, job_id=job_id)

        return await self._guard(call, handle)

    # -- the shared steps ---------------------------------------------------------------

    async def _guard(self, call: _Call, handle: Callable[[], Awaitable[Response]]) -> Response:
        """Turn every refusal into its JSON error, audited when we know who asked."""
        try:
            return await handle()
        except ApiProblem as problem:
            if call.tenant is not None:
                await self._audit_refusal(call, problem)
            return problem_response(problem)
        except Exception as exc:  # noqa: BLE001 -- a bug: still one audited JSON error
            _log.error("internal error on %s", call.route, exc_info=exc)
            internal = ApiProblem(Code.BACKEND_ERROR, "internal error", status=500)
            if call.tenant is not None:
                await self._audit_refusal(call, internal)
            return problem_response(internal)
        finally:
            self._release(call)

    async def _acquire(self, call: _Call, tenant: TenantContract) -> None:
        """Take one of the tenant's concurrency slots, waiting a while for one (else 429)."""
        call.slot = await self.slots.acquire(tenant.name)

    def _release(self, call: _Call) -> None:
        if call.slot is not None:
            self.slots.release(call.slot)
            call.slot = None

    async def _in_worker(
        self, call: _Call, work: Callable[[ApiContext], Response], *, job_id: str | None = None
    ) -> Response:
        """Run ``work`` in a worker; a dcops error becomes an audited API error there."""

        def guarded(ctx: ApiContext) -> Response:
            try:
                return work(ctx)
            except ApiProblem as problem:
                self._audit(ctx, call, _outcome(problem), problem.status, problem)
                return problem_response(problem)
            except DcopsError as exc:
                mapped = problem_for(exc, job_id=job_id)
                if mapped.status >= 500:
                    _log.warning("%s for tenant %s failed: %s", call.route, _who(call), exc)
                self._audit(ctx, call, _outcome(mapped), mapped.status, mapped)
                return problem_response(mapped)
            except (RecursionError, ValueError, TypeError) as exc:  # a bug, but never a bare 500
                _log.error("internal error on %s", call.route, exc_info=exc)
                internal = ApiProblem(Code.BACKEND_ERROR, "internal error", status=500)
                self._audit(ctx, call, _outcome(internal), 500, internal)
                return problem_response(internal)

        try:
            return await self.pool.run(guarded)
        except DcopsError as exc:  # the context itself could not be built (store down)
            _log.error("API worker context unavailable: %s", exc)
            return problem_response(problem_for(exc))

    async def _authenticate(self, request: Request, call: _Call) -> TenantContract:
        client = request.client.host if request.client else "unknown"
        match = _BEARER_RE.fullmatch(request.headers.get("authorization", "").strip())
        token_id = _TOKEN_ID_RE.match(match.group(1)) if match is not None else None
        # Lock out the credential being guessed, never the address (a proxy is shared).
        credential = f"token:{token_id.group(1)}" if token_id else f"malformed:{client}"
        wait = self.limiter.waiting("auth-failure", credential)
        if wait > 0:
            raise ApiProblem(
                Code.RATE_LIMITED,
                "too many failed authentications with this credential; retry later",
                retry_after_s=retry_after_header(wait),
            )
        reason = "missing or malformed Authorization header: send 'Bearer <token>'"
        if match is not None:
            token = match.group(1)

            def check(ctx: ApiContext) -> TenantContract | str:
                try:
                    return ctx.authenticate(token)
                except InputError as exc:
                    return str(exc)

            try:
                result = await self.pool.run(check)
            except DcopsError as exc:
                _log.error("authentication failed internally: %s", exc)
                raise problem_for(exc) from exc
            if isinstance(result, TenantContract):
                call.tenant = result
                call.target = call.target or f"tenant:{result.name}"
                await self._acquire(call, result)
                return result
            reason = result
        self.limiter.take(
            "auth-failure", credential, per_minute=self.settings.auth_failures_per_minute
        )
        await self._audit_auth_failure(call, client, reason)
        raise ApiProblem(Code.UNAUTHORIZED, reason)

    def _limit(self, kind: str, tenant: TenantContract, *, per_minute: float) -> None:
        wait = self.limiter.take(kind, tenant.name, per_minute=per_minute)
        if wait > 0:
            what = "submissions" if kind == "submit" else "requests"
            raise ApiProblem(
                Code.RATE_LIMITED,
                f"tenant {tenant.name!r} is over its rate of {per_minute:g} {what} per minute",
                retry_after_s=retry_after_header(wait),
            )

    def _job_id(self, request: Request, call: _Call) -> str:
        job_id = str(request.path_params["job_id"])
        if not _JOB_ID_RE.fullmatch(job_id):
            raise ApiProblem(Code.NOT_FOUND, "job not found")
        call.target = f"job:{job_id}"
        return job_id

    async def _read_body(self, request: Request) -> bytes:
        limit = self.settings.max_body_bytes
        too_big = ApiProblem(Code.PAYLOAD_TOO_LARGE, f"the body is larger than {limit} bytes")
        declared = request.headers.get("content-length")
        if declared is not None:
            if not (declared.isascii() and declared.isdigit() and len(declared) <= 18):
                raise ApiProblem(Code.INVALID_REQUEST, "bad Content-Length")
            if int(declared) > limit:
                raise too_big
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)

    # -- audit ------------------------------------------------------------------------

    def _audit(
        self,
        ctx: ApiContext,
        call: _Call,
        outcome: str,
        status: int,
        problem: ApiProblem | None = None,
    ) -> None:
        """One record per call; reads carry route and status only (see docs/api.md)."""
        evidence: dict[str, Any] = {"route": call.route, "status": status}
        if call.action in ("api.submit", "api.cancel"):
            evidence.update(call.evidence or {})
            if problem is not None:
                evidence["code"] = problem.code.value
                evidence["reason"] = problem.body()["error"]["message"][:300]
        elif problem is not None:
            evidence["code"] = problem.code.value
        try:
            ctx.audit.record(
                call.action,
                call.target or "api",
                outcome=outcome,
                evidence=evidence,
                actor=f"tenant:{_who(call)}",
            )
        except DcopsError as exc:
            _log.error("audit record for %s (tenant %s) failed: %s", call.route, _who(call), exc)

    async def _audit_refusal(self, call: _Call, problem: ApiProblem) -> None:
        def record(ctx: ApiContext) -> None:
            self._audit(ctx, call, _outcome(problem), problem.status, problem)

        try:
            await self.pool.run(record)
        except DcopsError as exc:
            _log.error("audit record for %s failed: %s", call.route, exc)

    async def _audit_auth_failure(self, call: _Call, client: str, reason: str) -> None:
        """Failed authentications: who cannot be known, so record the address (never the token)."""

        def record(ctx: ApiContext) -> None:
            ctx.audit.record(
                "api.auth",
                f"client:{client}",
                outcome="refused:unauthorized",
                evidence={"route": call.route, "reason": reason[:200]},
                actor="anonymous",
            )

        try:
            await self.pool.run(record)
        except DcopsError as exc:
            _log.error("audit record for a failed authentication failed: %s", exc)

    # -- framework errors ---------------------------------------------------------------

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 404:
            return problem_response(ApiProblem(Code.NOT_FOUND, f"no route {request.url.path!r}"))
        if status == 405:
            response = problem_response(
                ApiProblem(
                    Code.INVALID_REQUEST,
                    f"method {request.method} is not allowed on {request.url.path!r}",
                    status=405,
                )
            )
            allow = allowed_methods(self.app, request.url.path)
            if allow:
                response.headers["Allow"] = allow
            return response
        return problem_response(ApiProblem(Code.INVALID_REQUEST, "bad request", status=status))

    async def _internal_error(self, request: Request, exc: Exception) -> Response:
        _log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(ApiProblem(Code.BACKEND_ERROR, "internal error", status=500))


def _who(call: _Call) -> str:
    return call.tenant.name if call.tenant is not None else "anonymous"


def _outcome(problem: ApiProblem) -> str:
    kind = "failed" if problem.status >= 500 else "refused"
    return f"{kind}:{problem.code.value}"


def create_app(factory: ContextFactory, settings: ApiSettings | None = None) -> Starlette:
    """The ASGI app (see :class:`TenantApi`; the app's ``state.api`` holds it)."""
    api = TenantApi(factory, settings)
    api.app.state.api = api
    return api.app
