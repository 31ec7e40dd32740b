"""schemathesis against the OpenAPI document: zero server errors, zero schema violations.

The API runs in-process (ASGI) over a real state store with two tenants and the
RecordingBackend. Every operation gets generated valid and invalid inputs (bounded
examples, so the run stays short on a small CI box); each response must be a
documented status code with a body that matches its schema, and never a 5xx.
Every request that reached a handler must be in the audit log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dcops.store import AuditLog, Store
from scheduler.api.app import ApiSettings
from tests.scheduler.test_api_support import ApiRig, build_rig

MAX_EXAMPLES = 40


@pytest.fixture(scope="module")
def api_client(api_rig: ApiRig) -> Iterator[Any]:
    from starlette.testclient import TestClient

    with TestClient(api_rig.api.app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def api_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiRig]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    rig = build_rig(
        tmp,
        ApiSettings(workers=2, requests_per_minute=1e9, auth_failures_per_minute=1e9),
        max_submissions_per_minute=1_000_000,
        max_pending_jobs=1_000_000,
        gpu_quota=1_000_000,
    )
    try:
        yield rig
    finally:
        rig.api.close()


def _schema() -> schemathesis.BaseSchema:
    from dcops import __version__
    from scheduler.api.openapi import openapi_document

    return schemathesis.openapi.from_dict(openapi_document(__version__))


schema = _schema()
_TestFn = TypeVar("_TestFn", bound=Callable[..., None])


def each_operation(test: _TestFn) -> _TestFn:
    """``schema.parametrize()``, typed: schemathesis declares its decorator a bare Callable."""
    parametrized: _TestFn = schema.parametrize()(test)
    return parametrized


@each_operation
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_conforms(case: Any, api_rig: ApiRig, api_client: Any) -> None:
    kwargs = case.as_transport_kwargs(headers=api_rig.auth())
    response = api_client.request(**{k: v for k, v in kwargs.items() if k != "base_url"})
    assert response.status_code < 500, (case.method, case.path, response.text[:300])
    adapted = schemathesis.Response.from_any(response)
    case.validate_response(
        adapted,
        checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
    )


def test_every_request_that_reached_a_handler_was_audited(api_rig: ApiRig) -> None:
    with Store(api_rig.db) as store:
        records = AuditLog(store).records()
        assert AuditLog(store).verify().ok
    api_calls = [r for r in records if r.action.startswith("api.") and r.action != "api.auth"]
    statuses = {r.evidence.get("status") for r in api_calls}
    assert len(api_calls) > 100 and {200, 201, 400, 404} <= statuses, statuses
    assert all(isinstance(s, int) and s < 500 for s in statuses), statuses
