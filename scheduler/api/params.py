"""Request parameters of the tenant API: query strings, routes' methods, job views (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from scheduler.api.problems import ApiProblem, Code

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}


def allowed_methods(app: Starlette, path: str) -> str:
    """The methods the routes matching ``path`` accept (for ``Allow``)."""
    from starlette.routing import Match

    methods: set[str] = set()
    scope = {"type": "http", "path": path, "method": "GET"}
    for route in app.routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE and isinstance(route, Route) and route.methods:
            methods |= set(route.methods)
    return ", ".join(sorted(methods))


def job_dict(view: Any) -> dict[str, Any]:
    data: dict[str, Any] = dict(view.to_dict())
    data.setdefault("job_id", data.get("backend_job_id"))
    return data


def check_query(request: Request, allowed: set[str]) -> Mapping[str, str]:
    params = request.query_params
    unknown = sorted(set(params.keys()) - allowed)
    if unknown:
        hint = (
            " (the tenant comes only from the token)"
            if any(k.lower() in ("tenant", "account", "namespace", "user") for k in unknown)
            else ""
        )
        raise ApiProblem(
            Code.INVALID_REQUEST,
            f"unknown query parameter(s) {', '.join(repr(k[:40]) for k in unknown[:5])}{hint}",
        )
    return params


def bool_param(params: Mapping[str, str], name: str) -> bool:
    value = params.get(name)
    if value is None:
        return False
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ApiProblem(Code.INVALID_REQUEST, f"{name}: expected true or false")


def int_param(params: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    if not (value.isascii() and value.isdigit() and len(value) <= 12) or not (
        1 <= int(value) <= maximum
    ):
        raise ApiProblem(Code.INVALID_REQUEST, f"{name}: expected an integer 1..{maximum}")
    return int(value)
