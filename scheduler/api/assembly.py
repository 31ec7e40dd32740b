"""What each worker of the tenant API gets: its own store connection, the shared backend.

``create_app(context_factory(cfg, name, backend, "bridge"), settings)`` is how
``dcops serve`` builds the application (:mod:`scheduler.api.app`); the CLI only
parses options and prints where it listens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dcops.config import Config
    from scheduler.api.ports import ApiContext
    from scheduler.backends.base import SchedulerBackend


def context_factory(
    cfg: Config, backend_name: str, backend: SchedulerBackend, service: str
) -> Callable[[], ApiContext]:
    """Per worker thread: its own store connection, the shared backend."""

    def factory() -> ApiContext:
        from dcops.store import AuditLog, Store
        from scheduler.api.ports import ApiContext, JobService
        from scheduler.tenants.tokens import authenticate

        store = Store(cfg.state_path, audit_key=cfg.audit_key_path)
        job_service: JobService
        if service == "direct":
            from scheduler.api.direct import BackendJobService

            job_service = BackendJobService(backend)
        else:
            from scheduler.api.bridge_service import BridgeJobService

            job_service = BridgeJobService(store, backend_name, backend)
        return ApiContext(
            authenticate=lambda token: authenticate(store, token),
            service=job_service,
            audit=AuditLog(store, actor="dcops-api"),
            close=store.close,
        )

    return factory
