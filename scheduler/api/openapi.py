"""The OpenAPI 3.1 document of the tenant API (pure; served at ``GET /v1/openapi.json``).

The job spec schema is the published ``scheduler/jobspec.schema.json`` itself
(OpenAPI 3.1 schemas are JSON Schema 2020-12), so the document cannot drift
from what the server validates.
"""

from __future__ import annotations

from typing import Any

from scheduler.api.problems import Code

JOB_ID_PATTERN = "^[A-Za-z0-9._-]{1,128}$"


def _error_response(description: str, codes: list[Code]) -> dict[str, Any]:
    return {
        "description": f"{description} (code: {', '.join(c.value for c in codes)})",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(schema_ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


def openapi_document(version: str) -> dict[str, Any]:
    """The whole document, built fresh (callers may cache it)."""
    from scheduler.spec import jobspec_schema

    spec_schema = {k: v for k, v in jobspec_schema().items() if k not in ("$schema", "$id")}
    unauthorized = _error_response(
        "Missing, invalid, revoked or expired token", [Code.UNAUTHORIZED]
    )
    limited = {
        **_error_response("Too many requests for this tenant", [Code.RATE_LIMITED]),
        "headers": {
            "Retry-After": {
                "description": "Seconds until a request will be accepted again",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    }
    backend = _error_response("The scheduler failed", [Code.BACKEND_ERROR])
    unavailable = _error_response("The state store is unavailable", [Code.BACKEND_ERROR])
    not_found = _error_response("No such job for this tenant", [Code.NOT_FOUND])
    bad_request = _error_response(
        "A malformed request: unknown query parameter, bad value", [Code.INVALID_REQUEST]
    )
    common = {
        "400": bad_request,
        "401": unauthorized,
        "429": limited,
        "502": backend,
        "503": unavailable,
    }
    job_id = {
        "name": "job_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": JOB_ID_PATTERN},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dcops tenant API",
            "version": version,
            "description": (
                "Submit and manage jobs on managed Slurm/Kubernetes as a tenant. The tenant "
                "is identified only by the bearer token; a body naming a tenant, account, "
                "namespace, QOS, partition, user or queue is refused."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": {
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Liveness (no authentication)",
                    "security": [],
                    "responses": {"200": _json("Health", "The server is up")},
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document (no authentication)",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/v1/jobs": {
                "post": {
                    "operationId": "submitJob",
                    "summary": "Submit a job spec (JSON or YAML) as the token's tenant",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/JobSpec"}
                            },
                            "application/yaml": {
                                "schema": {"$ref": "#/components/schemas/JobSpec"}
                            },
                        },
                    },
                    "responses": {
                        "201": {
                            **_json("Submitted", "Submitted; the body holds the exact rendering"),
                            "headers": {
                                "Location": {
                                    "description": "The new job's URL",
                                    "schema": {"type": "string"},
                                }
                            },
                        },
                        **common,
                        "400": _error_response(
                            "The spec is invalid or claims an identity, or the request is "
                            "malformed",
                            [Code.INVALID_SPEC, Code.INVALID_REQUEST],
                        ),
                        "409": _error_response(
                            "Over the tenant's GPU quota, CPU node quota or pending-job limit",
                            [Code.QUOTA_EXCEEDED],
                        ),
                        "413": _error_response("Body too large", [Code.PAYLOAD_TOO_LARGE]),
                        "415": _error_response("Unsupported content type", [Code.INVALID_REQUEST]),
                    },
                },
                "get": {
                    "operationId": "listJobs",
                    "summary": "The tenant's jobs",
                    "parameters": [
                        {
                            "name": "active",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "boolean", "default": False},
                        }
                    ],
                    "responses": {"200": _json("JobList", "The tenant's jobs"), **common},
                },
            },
            "/v1/jobs/{job_id}": {
                "parameters": [job_id],
                "get": {
                    "operationId": "getJob",
                    "summary": "One job of the tenant",
                    "responses": {"200": _json("Job", "The job"), "404": not_found, **common},
                },
                "delete": {
                    "operationId": "cancelJob",
                    "summary": "Cancel one job of the tenant",
                    "responses": {
                        "200": _json("Cancelled", "Cancellation requested"),
                        "404": not_found,
                        **common,
                    },
                },
            },
            "/v1/jobs/{job_id}/logs": {
                "parameters": [job_id],
                "get": {
                    "operationId": "getJobLogs",
                    "summary": "The job's output, bounded",
                    "parameters": [
                        {
                            "name": "tail_bytes",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "default": 65536},
                        }
                    ],
                    "responses": {
                        "200": _json("Logs", "The job's output"),
                        "404": not_found,
                        **common,
                    },
                },
            },
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A tenant API token issued by an operator",
                }
            },
            "schemas": {
                "JobSpec": spec_schema,
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string", "enum": [c.value for c in Code]},
                                "message": {"type": "string"},
                            },
                        }
                    },
                },
                "Health": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"const": "ok"}, "version": {"type": "string"}},
                },
                "Submitted": {
                    "type": "object",
                    "required": ["job_id", "backend", "backend_job_id", "spec_hash", "rendering"],
                    "properties": {
                        "job_id": {"type": "string"},
                        "backend": {"type": "string"},
                        "backend_job_id": {"type": "string"},
                        "spec_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                        "rendering": {"type": "string"},
                    },
                },
                "Job": {
                    "type": "object",
                    "required": ["job_id", "state"],
                    "properties": {
                        "job_id": {"type": "string"},
                        "backend": {"type": "string"},
                        "backend_job_id": {
                            "type": ["string", "null"],
                            "description": "null while the job never reached a scheduler "
                            "(rejected, submit-failed, submitting)",
                        },
                        "name": {"type": "string"},
                        "state": {"type": "string"},
                        "reason": {"type": "string"},
                        "gpus": {"type": "integer"},
                        "nodes": {"type": "string"},
                        "submit_time_s": {"type": ["number", "null"]},
                        "start_time_s": {"type": ["number", "null"]},
                        "end_time_s": {"type": ["number", "null"]},
                        "exit_code": {"type": ["integer", "null"]},
                    },
                },
                "JobList": {
                    "type": "object",
                    "required": ["jobs"],
                    "properties": {
                        "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}
                    },
                },
                "Logs": {
                    "type": "object",
                    "required": ["job_id", "logs"],
                    "properties": {"job_id": {"type": "string"}, "logs": {"type": "string"}},
                },
                "Cancelled": {
                    "type": "object",
                    "required": ["job_id", "cancelled"],
                    "properties": {"job_id": {"type": "string"}, "cancelled": {"const": True}},
                },
            },
        },
    }
