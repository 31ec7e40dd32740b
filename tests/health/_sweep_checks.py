"""Tiny test-local checks implementing the Check protocol, to drive the sweep engine.

``t-smi`` judges ``nvidia-smi -q -x`` (the simulator answers it): a lost GPU
(exit 15, XID 79) or fewer GPUs than expected is fatal. ``t-flag`` runs
``true`` and fails (non-fatally) on the nodes listed in ``FLAGGED``; ``t-sleep``
runs ``sleep`` for nodes whose name holds ``hang`` (a hung command over SSH).
"""

from __future__ import annotations

from collections.abc import Sequence

from dcops.measurements import CommandResult
from health.base import CheckResult, CheckStatus, NodeFacts, register_check

FLAGGED: set[str] = set()


@register_check("t-smi")
class SmiCheck:
    name = "t-smi"
    description = "test: GPUs present and on the bus"

    def commands(self, facts: NodeFacts) -> Sequence[Sequence[str]]:
        return [["nvidia-smi", "-q", "-x"]]

    def judge(self, results: Sequence[CommandResult], facts: NodeFacts) -> list[CheckResult]:
        (res,) = results
        if res.returncode == 15:
            return [
                CheckResult(
                    "t-smi", facts.node, CheckStatus.FAIL, "GPU fell off the bus (XID 79)",
                    fatal=True, evidence={"stdout": res.stdout[:200]},
                )
            ]  # fmt: skip
        if res.returncode != 0:
            return [CheckResult("t-smi", facts.node, CheckStatus.ERROR, f"exit {res.returncode}")]
        found = res.stdout.count("<gpu ")
        if found < facts.expected_gpus:
            return [
                CheckResult(
                    "t-smi", facts.node, CheckStatus.FAIL, f"{found} of {facts.expected_gpus} GPUs",
                    fatal=True, metric="gpu_count", value=found, threshold=facts.expected_gpus,
                )
            ]  # fmt: skip
        return [CheckResult("t-smi", facts.node, CheckStatus.OK, f"{found} GPUs")]


@register_check("t-flag")
class FlagCheck:
    name = "t-flag"
    description = "test: fails on the nodes in FLAGGED"

    def commands(self, facts: NodeFacts) -> Sequence[Sequence[str]]:
        return [["true"]]

    def judge(self, results: Sequence[CommandResult], facts: NodeFacts) -> list[CheckResult]:
        if facts.node in FLAGGED:
            return [
                CheckResult(
                    "t-flag", facts.node, CheckStatus.FAIL, "flagged by the test",
                    metric="flag", value=1, threshold=0,
                )
            ]  # fmt: skip
        return [CheckResult("t-flag", facts.node, CheckStatus.OK)]


@register_check("t-sleep")
class SleepCheck:
    name = "t-sleep"
    description = "test: a command that hangs on nodes named *hang*"

    def commands(self, facts: NodeFacts) -> Sequence[Sequence[str]]:
        return [["sleep", "30"]] if "hang" in facts.node else [["true"]]

    def judge(self, results: Sequence[CommandResult], facts: NodeFacts) -> list[CheckResult]:
        (res,) = results
        status = CheckStatus.OK if res.ok else CheckStatus.ERROR
        return [CheckResult("t-sleep", facts.node, status, f"exit {res.returncode}")]
