"""Real compute engines for burn-in, on torch: GEMM and collectives (the dcops.ports).

- :class:`~burnin.engines.gemm.TorchGemmEngine` implements ``GemmEngine``.
- :class:`~burnin.engines.collectives.TorchCollectiveEngine` implements
  ``CollectiveEngine`` through ``torch.distributed`` (NCCL on GPUs, gloo on CPU);
  its per-rank worker is ``python -m burnin.engines.collective_worker``.

Importing this package does not import torch; the engines import it when they run.
"""
