"""The tenant HTTP API (``dcops serve``): token auth, per-tenant limits, audit, OpenAPI.

* :mod:`scheduler.api.ports` -- what the API needs (job service, token check, audit);
* :mod:`scheduler.api.app` -- the Starlette application (imports Starlette);
* :mod:`scheduler.api.body`, :mod:`~scheduler.api.problems`,
  :mod:`~scheduler.api.ratelimit`, :mod:`~scheduler.api.openapi` -- pure parts;
* :mod:`scheduler.api.server` -- running it under uvicorn (imports uvicorn);
* :mod:`scheduler.api.direct` -- a job service straight over one backend;
* :mod:`scheduler.api.client` -- a tenant's client of the API (standard library only).

Nothing here is imported by ``dcops --help``; the web framework is imported
only when the server is built.
"""
