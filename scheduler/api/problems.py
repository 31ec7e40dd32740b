"""The API's error vocabulary: stable codes, HTTP statuses, and the mapping from dcops errors.

Every error response is ``{"error": {"code": CODE, "message": "..."}}``:

=====================  ======  ==============================================
code                   status  when
=====================  ======  ==============================================
``unauthorized``       401     no, malformed, unknown, revoked or expired token
``invalid_spec``       400     the spec breaks the schema or a contract rule,
                               or names a tenant/account/namespace itself
``invalid_request``    400     bad query parameter / YAML alias / not UTF-8;
                       405     method not allowed; 415 unsupported media type
``not_found``          404     no such route, or no such job *for this tenant*
``quota_exceeded``     409     the GPU quota (or pending-job limit) is used up
``payload_too_large``  413     body over the server's limit
``rate_limited``       429     the tenant's token bucket is empty (Retry-After)
``backend_error``      502     the scheduler failed; 500/503 internal/store
=====================  ======  ==============================================

Messages are one line and never carry a token, a traceback or another tenant's
data. Pure module: no HTTP framework import.
"""

from __future__ import annotations

import re
from enum import StrEnum

from dcops.errors import BackendError, DcopsError, InputError, StoreError, UnknownNameError


class Code(StrEnum):
    UNAUTHORIZED = "unauthorized"
    INVALID_SPEC = "invalid_spec"
    INVALID_REQUEST = "invalid_request"
    NOT_FOUND = "not_found"
    QUOTA_EXCEEDED = "quota_exceeded"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    RATE_LIMITED = "rate_limited"
    BACKEND_ERROR = "backend_error"


STATUS: dict[Code, int] = {
    Code.UNAUTHORIZED: 401,
    Code.INVALID_SPEC: 400,
    Code.INVALID_REQUEST: 400,
    Code.NOT_FOUND: 404,
    Code.QUOTA_EXCEEDED: 409,
    Code.PAYLOAD_TOO_LARGE: 413,
    Code.RATE_LIMITED: 429,
    Code.BACKEND_ERROR: 502,
}

MAX_MESSAGE_CHARS = 500

# admit() words a quota refusal as "... exceeds tenant 'x' quota of N GPUs"; the
# job service's pending-job limit as "... pending jobs ... limit". A dedicated
# InputError subclass would be cleaner (see docs/api.md); until then, match both.
_QUOTA_RE = re.compile(r"exceeds tenant .* quota|quota exceeded|pending[- ]jobs?\b.*limit", re.I)


class ApiProblem(Exception):
    """An error response the API sends as it is."""

    def __init__(
        self,
        code: Code,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else STATUS[code]
        self.retry_after_s = retry_after_s

    def body(self) -> dict[str, dict[str, str]]:
        text = " ".join(self.message.split())
        if len(text) > MAX_MESSAGE_CHARS:
            text = text[: MAX_MESSAGE_CHARS - 3] + "..."
        return {"error": {"code": self.code.value, "message": text}}


def is_quota_error(exc: BaseException) -> bool:
    """True when an InputError is a quota refusal rather than a bad spec."""
    if any("Quota" in cls.__name__ for cls in type(exc).__mro__):
        return True
    return isinstance(exc, InputError) and bool(_QUOTA_RE.search(str(exc)))


def problem_for(exc: DcopsError, *, job_id: str | None = None) -> ApiProblem:
    """Map a dcops error raised by the job service to the response the tenant sees."""
    if isinstance(exc, UnknownNameError) and job_id is not None:
        return ApiProblem(Code.NOT_FOUND, f"job {job_id!r} not found")
    if is_quota_error(exc):
        return ApiProblem(Code.QUOTA_EXCEEDED, str(exc))
    if isinstance(exc, InputError):
        return ApiProblem(Code.INVALID_SPEC, str(exc))
    if isinstance(exc, StoreError):
        return ApiProblem(Code.BACKEND_ERROR, "the state store is unavailable", status=503)
    if isinstance(exc, BackendError):
        return ApiProblem(Code.BACKEND_ERROR, f"scheduler backend failed: {exc}")
    return ApiProblem(Code.BACKEND_ERROR, "internal error", status=500)
