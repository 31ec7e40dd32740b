"""The runbook engine's verification adapters: health checks and recertification.

:meth:`dcops.cli.wiring.Wiring.runbook_context` plugs them in: with
``--sim SCENARIO`` the checks run on the simulated fleet and a recertification
is the burn-in suite on the simulator; otherwise checks run over SSH and a
recertification is a burn-in over SSH (config ``[runbooks] burnin_python``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from dcops.verify import Verification

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from burnin.suite import SuitePorts
    from dcops.inventory import Site
    from dcops.ports import RemoteRunner

    SuitePortsFor = Callable[[str, int | None, float | None], AbstractContextManager[SuitePorts]]


class HealthChecker:
    """:class:`dcops.verify.NodeChecker` over the health checks (agentless, one node)."""

    def __init__(self, runner: RemoteRunner, site: Site) -> None:
        self.runner = runner
        self.site = site

    def check(self, node: str, checks: Sequence[str], *, timeout_s: float) -> Verification:
        from health.base import CheckStatus, get_checks
        from health.sweep import node_facts
        from health.sweep_collect import collect

        facts = node_facts(self.site, [node], {node: None}, {})
        found = collect(
            self.runner, get_checks(list(checks)), facts, timeout_s=timeout_s, concurrency=1
        )
        result = found[node]
        if result.error:
            return Verification(False, result.error, error=result.error)
        findings = tuple(f.to_dict() for f in result.findings)
        errors = [f for f in result.findings if f.status is CheckStatus.ERROR]
        bad = [f for f in result.findings if f.status in (CheckStatus.FAIL, CheckStatus.WARN)]
        if bad:
            return Verification(False, "; ".join(f"{f.check}: {f.message}" for f in bad), findings)
        if errors:
            why = "; ".join(f"{f.check}: {f.message}" for f in errors)
            return Verification(False, why, findings, error=why)
        return Verification(True, f"{', '.join(checks)}: ok", findings)


def check_commands(node: str, checks: Sequence[str]) -> list[list[str]]:
    """The argv lists the named health checks run on ``node`` (for plans)."""
    from health.base import NodeFacts, get_checks

    facts = NodeFacts(node=node, sku="", expected_gpus=0)  # commands depend on neither
    out: list[list[str]] = []
    for check in get_checks(list(checks)):
        for argv in check.commands(facts):
            if list(argv) not in out:
                out.append(list(argv))
    return out


class SuiteRecertifier:
    """:class:`dcops.verify.Recertifier`: the burn-in suite on one node.

    ``ports(node, rounds, duration_s)`` is a context giving the suite's ports for that
    node (the composition root's: the simulator, or workers over SSH); ``thresholds`` a
    site override file for the SKU profile.
    """

    def __init__(self, ports: SuitePortsFor, thresholds: str | None = None) -> None:
        self.ports = ports
        self.thresholds = thresholds

    def recertify(
        self, node: str, *, timeout_s: float, rounds: int | None = None,
        duration_s: float | None = None,
    ) -> Verification:  # fmt: skip
        from burnin.profiles import load_thresholds
        from burnin.suite import SuiteOptions, run_suite

        with self.ports(node, rounds, duration_s) as ports:
            thresholds = load_thresholds(ports.site.sku, override=self.thresholds)
            options = SuiteOptions(
                nodes=(node,), gemm_rounds=rounds, gemm_duration_s=duration_s, localize=False
            )
            run = run_suite(ports, thresholds, options)
        return _verdict(run)


def _verdict(run: Any) -> Verification:
    status = str(run.verdict.status.value)
    findings = tuple(
        {"target": f.target, "status": f.status.value, "message": f.message}
        for f in run.findings
        if f.status.value != "pass"
    )[:20]
    backend = run.params.get("backend", "?")
    tflops = [round(v, 3) for v in run.gemm_tflops.values()]
    summary = f"burn-in {status} on {backend} (GEMM TFLOP/s per GPU: {tflops})"
    if status == "error":
        return Verification(False, summary, findings, error="burn-in could not judge")
    return Verification(status == "pass", summary, findings)
