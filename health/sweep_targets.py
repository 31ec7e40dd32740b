"""Which nodes a sweep covers: a hostlist, a rack, a Slurm partition or the whole site."""

from __future__ import annotations

from dcops.errors import InputError, SchedulerError
from dcops.hostlist import expand
from dcops.inventory import Site
from dcops.slurm.commands import SlurmCommands, first_line


def partition_nodes(partition: str, slurm: SlurmCommands, *, timeout_s: float = 30.0) -> list[str]:
    """The nodes of a Slurm partition (``sinfo -h -p P -o %N``), expanded."""
    result = slurm.run(["sinfo", "-h", "-p", partition, "-o", "%N"], timeout_s=timeout_s)
    if not result.ok:
        raise SchedulerError(f"sinfo -p {partition}: {first_line(result.stderr, result.stdout)}")
    nodes: list[str] = []
    for line in result.stdout.split():
        nodes.extend(expand(line))
    if not nodes:
        raise InputError(f"partition {partition!r} has no nodes (or does not exist)")
    return list(dict.fromkeys(nodes))


def select_targets(
    site: Site,
    *,
    hostlist: str | None = None,
    rack: str | None = None,
    partition_members: list[str] | None = None,
    everything: bool = False,
) -> list[str]:
    """The site's nodes chosen by exactly one selector, in site order."""
    chosen = [x for x in (hostlist, rack, partition_members) if x is not None]
    if len(chosen) + int(everything) != 1:
        raise InputError("choose the nodes with one of --nodes, --rack, --partition or --all")
    if everything:
        return site.nodes()
    if rack is not None:
        return list(site.rack(rack).nodes)
    if hostlist is not None:
        wanted = set(site.select(hostlist))
    else:
        members = partition_members or []
        known = set(site.nodes())
        unknown = [n for n in members if n not in known]
        if unknown:
            raise InputError(
                f"partition nodes not in site {site.name!r}: {', '.join(unknown[:5])}"
                + (" ..." if len(unknown) > 5 else "")
            )
        wanted = set(members)
    return [n for n in site.nodes() if n in wanted]
