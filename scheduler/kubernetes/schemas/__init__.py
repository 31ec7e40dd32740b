"""Upstream CustomResourceDefinitions dcops validates against, shipped as package data.

Kueue, JobSet and NVIDIA's DRA driver (ComputeDomain) at the releases pinned in
``upstream.toml``, vendored by ``scripts/vendor-crd-schemas`` as structural
schemas without descriptions; provenance in ``SOURCES.md``. Read them through
:mod:`scheduler.kubernetes.crds`.
"""
