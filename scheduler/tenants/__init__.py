"""Tenants of the scheduler bridge: contracts and API tokens in the state store.

* :mod:`scheduler.tenants.store` -- persist :class:`~scheduler.tenants.contract.TenantContract`
  JSON in the ``tenants`` table (create, show, list, quota);
* :mod:`scheduler.tenants.tokens` -- API tokens: issue (the secret is shown
  once), revoke, expire, and :func:`~scheduler.tenants.tokens.authenticate`,
  the only way the API server learns who the caller is;
* :mod:`scheduler.tenants.kubernetes` -- the tenant's Kubernetes side
  (Namespace, LocalQueue, ClusterQueue) as manifests (pure).
"""
