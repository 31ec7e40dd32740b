"""The built-in health checks; importing this package registers every one of them.

Each module is one check (see ``docs/health-checks.md``): ``commands(facts)``
names the argv lists to run on the node, ``judge(results, facts)`` turns their
results into findings, purely. Shared parsing lives in ``_common`` and ``_smi``.
"""

from health.checks import (
    dcgm,
    drift,
    gpu_count,
    memory,
    node_basics,
    nvlink,
    throttle,
    xid,
)

__all__ = ["dcgm", "drift", "gpu_count", "memory", "node_basics", "nvlink", "throttle", "xid"]
