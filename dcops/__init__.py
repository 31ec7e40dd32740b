"""dcops: operate GPU data centers built from NVIDIA GB200 NVL72 racks.

The top-level package holds the shared core: inventory and topology, config,
the state store and audit chain, remote execution, node actions, the fleet
simulator and the operator CLI. Domain packages (``burnin``, ``scheduler``,
``telemetry``, ``capacity``, ``runbooks``) build on it.

Nothing heavy is imported here: ``dcops --help`` must stay instant.
"""

__version__ = "0.1.0"
