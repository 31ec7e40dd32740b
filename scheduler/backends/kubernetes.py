"""Registers the ``kubernetes`` scheduler backend (:mod:`scheduler.kubernetes.backend`).

Importing this module is enough for ``create_backend("kubernetes", api=...)``; the
kubernetes client itself is imported only when the backend first talks to a cluster.
"""

from __future__ import annotations

from scheduler.kubernetes.backend import KubernetesBackend, kubernetes_availability

__all__ = ["KubernetesBackend", "kubernetes_availability"]
