"""The pure core of burn-in judgement: measurements in, findings and verdicts out.

How a ``burnin run`` calls it (every function is pure; only
:func:`burnin.profiles.load_thresholds` reads a file)::

    th = load_thresholds(site.sku, override=site_thresholds_file)
    findings = []
    # 1. GEMM: th.gemm.rounds rounds, one seed per round, over every reachable GPU
    findings += judge_gemm(rounds, th.gemm, expected=gpus_that_should_have_run)
    # 2. readings taken during the burn (any number of snapshots per node)
    findings += judge_readings(readings, th.health,
                               expected_gpus={n: site.node(n).gpus_per_node for n in nodes},
                               slow=slow_gpus(findings))
    # 3. collectives: per tray and per NVLink domain, th.collectives.sizes_bytes
    findings += judge_collectives(results, th.collectives, domain_of=domain_map)
    findings += [collective_error(op, members, exc) for the sweeps that raised]
    # 4. nodes that could not be reached or hung, at any step
    findings += [node_error(node, exc, during="gemm") ...]
    verdict = rollup(findings, layout_from_site(site, nodes),
                     required_gpu_checks=("gemm", "gpu_health"))
    verdict.status            # worst of everything; verdict.to_dict() is the --json shape
    # 5. a domain sweep that fell short: burnin.localize.localize(engine, trays, th)

Status order: PASS < WARN < ERROR < FAIL (see :mod:`burnin.verdicts.status`).
"""

from burnin.verdicts.collectives import collective_error, group_busbw, judge_collectives, scope_of
from burnin.verdicts.gemm import judge_gemm, slow_gpus
from burnin.verdicts.reachability import node_error
from burnin.verdicts.readings import judge_readings
from burnin.verdicts.robust import OutlierRule, Spread, low_outliers, spread
from burnin.verdicts.rollup import Verdict, layout_from_site, rollup
from burnin.verdicts.status import Finding, Reason, Status, worst
from burnin.verdicts.xid import XID_TABLE, XidRule, classify_xid

__all__ = [
    "XID_TABLE",
    "Finding",
    "OutlierRule",
    "Reason",
    "Spread",
    "Status",
    "Verdict",
    "XidRule",
    "classify_xid",
    "collective_error",
    "group_busbw",
    "judge_collectives",
    "judge_gemm",
    "judge_readings",
    "layout_from_site",
    "low_outliers",
    "node_error",
    "rollup",
    "scope_of",
    "slow_gpus",
    "spread",
    "worst",
]
