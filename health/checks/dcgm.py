"""``dcgm``: DCGM's quick diagnostic, ``dcgmi diag -r <level> -j`` (level 1 by default).

Parsed with :func:`dcops.dcgm.diag.parse_dcgm_diag` (DCGM 3.x/4.x JSON or the
table). ``dcgm_level`` (default 1: seconds, software only) picks the run level;
higher levels take minutes and belong in burn-in, not in a cron sweep.

- dcgmi exits 127 (not installed): **ok** with the message "dcgmi not
  installed" -- DCGM is optional on a node, its absence is not a fault;
- a test failed -> fail per GPU (or per node when DCGM names no GPU); never
  fatal on its own (level 1 finds configuration faults: persistence mode,
  environment, page retirement...);
- a test warned -> warn; all passed or skipped -> ok;
- DCGM's runtime error (host engine down ...) or output it cannot parse -> error.
"""

from __future__ import annotations

from collections.abc import Sequence

from dcops.dcgm.diag import DcgmTest, parse_dcgm_diag
from dcops.errors import InputError
from dcops.measurements import CommandResult
from health.base import CheckResult, CheckStatus, NodeFacts, register_check
from health.checks._common import (
    EXIT_NOT_FOUND,
    BadThreshold,
    Finder,
    expect_results,
    finder,
    first_line,
    threshold_number,
)

DEFAULT_LEVEL = 1
_STATUS = {"fail": CheckStatus.FAIL, "warn": CheckStatus.WARN, "error": CheckStatus.ERROR}


@register_check("dcgm")
class DcgmCheck:
    name = "dcgm"
    description = "DCGM quick diagnostic (dcgmi diag -r 1); ok when dcgmi is not installed"
    needs_nvidia_gpus = True

    def commands(self, facts: NodeFacts) -> Sequence[Sequence[str]]:
        try:
            level = int(threshold_number(facts, "dcgm_level", DEFAULT_LEVEL))
        except BadThreshold:
            level = DEFAULT_LEVEL  # judge() reports the bad value
        return [["dcgmi", "diag", "-r", str(level), "-j"]]

    def judge(self, results: Sequence[CommandResult], facts: NodeFacts) -> list[CheckResult]:
        find = finder(self.name, facts)
        wrong = expect_results(find, results, 1)
        if wrong is not None:
            return [wrong]
        try:
            threshold_number(facts, "dcgm_level", DEFAULT_LEVEL)
        except BadThreshold as exc:
            return [find.error(str(exc))]
        (diag,) = results
        if diag.returncode == EXIT_NOT_FOUND:
            return [find.ok("dcgmi not installed", evidence={"exit": EXIT_NOT_FOUND})]
        text = diag.stdout if diag.stdout.strip() else diag.stderr
        try:
            report = parse_dcgm_diag(text, source=f"{facts.node}: dcgmi diag")
        except InputError as exc:
            return [find.error(f"unparsable dcgmi diag output (exit {diag.returncode}): {exc}")]
        if report.runtime_error:
            return [find.error(f"dcgmi diag: {report.runtime_error}")]
        if not report.tests:
            return [find.error(f"dcgmi diag ran no test: {first_line(diag)}")]
        out: list[CheckResult] = []
        for test in report.tests:
            out.extend(_test_findings(find, test))
        if not out:
            names = ", ".join(t.name for t in report.tests)
            return [find.ok(f"dcgmi diag passed ({names})", evidence={"dcgm": report.dcgm_version})]
        return out


def _test_findings(find: Finder, test: DcgmTest) -> list[CheckResult]:
    status = _STATUS.get(test.status)
    if status is None:
        return []
    out: list[CheckResult] = []
    for result in test.results:
        own = _STATUS.get(result.status)
        if own is None:
            continue
        gpu = result.gpu if result.entity_group == "GPU" else None
        words = "; ".join(w.text for w in result.warnings) or result.raw_status
        where = f"GPU {gpu}: " if gpu is not None else ""
        out.append(
            find(
                own,
                f"{where}DCGM {test.name}: {words}",
                gpu=gpu,
                metric=f"dcgm_{test.name.lower().replace(' ', '_')}",
                value=result.status,
                action="see the DCGM warning; rerun dcgmi diag -r 2 before returning the node",
                evidence={"warnings": [w.to_dict() for w in result.warnings]},
            )
        )
    if not out:
        words = "; ".join(w.text for w in test.warnings) or (test.raw_status or test.status)
        out.append(
            find(
                status,
                f"DCGM {test.name}: {words}",
                metric=f"dcgm_{test.name.lower().replace(' ', '_')}",
                value=test.status,
                evidence={"info": list(test.info)},
            )
        )
    return out
