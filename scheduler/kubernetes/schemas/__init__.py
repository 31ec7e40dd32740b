"""JSON Schemas (2020-12) of the custom resources dcops emits, shipped as package data.

Hand-written by dcops from the public CRD definitions (JobSet v1alpha2, Kueue
LocalQueue/ClusterQueue v1beta1, NVIDIA ComputeDomain v1beta1); see
``docs/kubernetes.md``. Read them with :func:`scheduler.kubernetes.validate.crd_schema`.
"""
