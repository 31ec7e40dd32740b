"""What a run would do, in order: every command's argv and every action, nothing run.

``dcops runbook plan NAME --nodes HOSTLIST`` prints this. Placeholders are
filled from the runbook's parameters, the caller's values and ``node``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dcops.errors import InputError
from runbooks.commands import COLLECT_ARGV, action_argv
from runbooks.model import Runbook, Step, substitute

#: (node, check names) -> the argv lists those checks run on the node.
CheckCommands = Callable[[str, Sequence[str]], list[list[str]]]


def values_for(book: Runbook, node: str, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Placeholder values: parameter defaults < ``given`` < node; unknown names refused.

    There is no default GPU: a runbook that resets ``{gpu}`` needs the index from the
    finding's evidence or ``--param gpu=N`` (:func:`needs_gpu`), never GPU 0 by default.
    """
    out: dict[str, Any] = {k: v.get("default") for k, v in book.parameters.items()}
    for key, value in (given or {}).items():
        if key not in out and key not in ("gpu", "run_id", "rack"):
            known = ", ".join(sorted(out)) or "none"
            raise InputError(f"runbook {book.name} has no parameter {key!r} (known: {known})")
        out[key] = value
    if "gpu" in out:
        gpu = out["gpu"]
        text = str(gpu).strip()
        if isinstance(gpu, bool) or not text.isdigit():
            raise InputError(
                f"runbook {book.name}: gpu must be a GPU index (0, 1, ...), got {gpu!r}"
            )
        out["gpu"] = int(text)
    out["node"] = node
    out["runbook"] = book.name
    return out


def needs_gpu(book: Runbook, values: Mapping[str, Any]) -> None:
    """InputError when a ``gpu_reset`` step of ``book`` has no GPU index to reset."""
    for step in (*book.preconditions, *book.steps, *book.rollback):
        if step.kind != "action" or step.spec.get("action") != "gpu_reset":
            continue
        gpu = substitute(step.spec.get("gpu", "{gpu}"), dict(values))
        if not str(gpu).strip().isdigit():
            raise InputError(
                f"runbook {book.name} on {values['node']}: step {step.name} resets a GPU, but "
                "no GPU index came with the finding; give it with --param gpu=N"
            )


def step_plan(
    step: Step,
    values: Mapping[str, Any],
    phase: str,
    check_commands: CheckCommands | None = None,
) -> dict[str, Any]:
    """One step as the plan shows it."""
    spec = {k: substitute(v, dict(values)) for k, v in step.spec.items()}
    node = values["node"]
    line: dict[str, Any] = {
        "phase": phase,
        "name": step.name,
        "kind": step.kind,
        "timeout_s": step.timeout_s,
        "retries": step.retries,
        "idempotent": step.idempotent,
    }
    if step.kind == "command":
        host = node if spec.get("host", "node") == "node" else "management"
        line["commands"] = [{"host": host, "argv": spec["argv"]}]
        line["expect_exit"] = spec.get("expect_exit", [0])
    elif step.kind == "collect":
        line["commands"] = [{"host": node, "argv": COLLECT_ARGV[i]} for i in spec["items"]]
    elif step.kind == "action":
        kind = spec["action"]
        line["action"] = {"kind": kind, "targets": node, "autonomy": step.autonomy or "act"}
        if kind == "drain":
            line["action"]["reason"] = spec.get("reason", f"runbook {values['runbook']}")
        argv = action_argv(kind, spec)
        if argv is not None:
            line["commands"] = [{"host": node, "argv": argv, "via": "actuator"}]
    elif step.kind == "check":
        line["checks"] = spec["checks"]
        if check_commands is not None:
            argvs = check_commands(node, spec["checks"])
            line["commands"] = [{"host": node, "argv": a} for a in argvs]
    elif step.kind == "wait_for":
        line["condition"] = spec["condition"]
        if spec["condition"] == "reachable":
            line["commands"] = [{"host": node, "argv": ["true"]}]
        for key in ("checks", "state", "interval_s"):
            if key in spec:
                line[key] = spec[key]
    elif step.kind == "burnin":
        line["scope"] = spec.get("scope", "node")
    elif step.kind == "escalate":
        line["to"] = spec.get("to", "default")
        line["title"] = spec.get("title", f"runbook {values['runbook']} on {node}")
    elif step.kind == "approve":
        line["prompt"] = spec.get("prompt", step.name)
    return line


def plan(
    book: Runbook,
    node: str,
    given: Mapping[str, Any] | None = None,
    check_commands: CheckCommands | None = None,
) -> list[dict[str, Any]]:
    """Preconditions, steps, then (on failure) rollback steps and the escalation."""
    values = values_for(book, node, given)
    needs_gpu(book, values)
    cc = check_commands
    lines = [step_plan(s, values, "precondition", cc) for s in book.preconditions]
    lines += [step_plan(s, values, "step", cc) for s in book.steps]
    lines += [step_plan(s, values, "on_failure", cc) for s in book.rollback]
    if book.escalate_on_failure:
        lines.append(
            {"phase": "on_failure", "name": "escalate", "kind": "escalate", "to": "default"}
        )
    return lines
