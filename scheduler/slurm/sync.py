"""Bring Slurm's accounting in line with a tenant contract: plan, drift report, apply.

What a contract asks of slurmdbd (``sacctmgr``):

* the QOS ``slurm_qos`` exists;
* the account ``slurm_account`` exists, its own association carrying
  ``GrpTRES=gres/gpu=<gpu_quota>`` (Slurm's second line of quota enforcement:
  over it, jobs pend with reason ``AssocGrpGRES``);
* every Unix user of the tenant has an association under that account whose
  QOS list holds ``slurm_qos`` (its default QOS).

:func:`parse_associations` / :func:`diff` are pure; :func:`sync_slurm` reads
with ``sacctmgr -n -P show``, reports the drift and, with ``apply``, runs the
fixes (``sacctmgr -i``) one by one, recording each in the audit log.
Partition restrictions of associations are not managed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from dcops.errors import SchedulerError
from dcops.ports import RemoteRunner
from dcops.slurm.commands import SlurmCommands, first_line
from dcops.slurm.parse import gpus_in_tres
from dcops.store import AuditLog
from scheduler.tenants.contract import TenantContract

ASSOC_FORMAT = "Cluster,Account,User,GrpTRES,QOS,DefaultQOS"


@dataclass(frozen=True)
class Association:
    cluster: str
    account: str
    user: str  # "" for the account's own association
    grp_tres: str
    qos: tuple[str, ...]
    default_qos: str

    @property
    def gpu_limit(self) -> int | None:
        """``GrpTRES`` GPUs, None when unlimited."""
        return gpus_in_tres(self.grp_tres) if "gres/gpu" in self.grp_tres else None


@dataclass(frozen=True)
class Drift:
    """One difference between contract and Slurm, with the commands that fix it."""

    what: str  # qos, account, account-gpu-limit, user-association, user-qos
    target: str
    want: str
    have: str
    fix: tuple[tuple[str, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["fix"] = [" ".join(cmd) for cmd in self.fix]
        return data


@dataclass
class SyncReport:
    tenant: str
    drift: list[Drift]
    applied: list[dict[str, Any]] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return not self.drift

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "in_sync": self.in_sync,
            "drift": [d.to_dict() for d in self.drift],
            "applied": self.applied,
        }


def parse_associations(stdout: str) -> list[Association]:
    """``sacctmgr -n -P show assoc format=Cluster,Account,User,GrpTRES,QOS,DefaultQOS``."""
    out = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) < 6:
            raise SchedulerError(f"sacctmgr printed an association with {len(parts)} fields")
        cluster, account, user, grp, qos, default_qos = parts[:6]
        out.append(
            Association(
                cluster=cluster,
                account=account,
                user=user,
                grp_tres=grp,
                qos=tuple(q for q in qos.split(",") if q),
                default_qos=default_qos,
            )
        )
    return out


def _sacctmgr(*args: str) -> tuple[str, ...]:
    return ("sacctmgr", "-i", *args)


def diff(
    contract: TenantContract,
    associations: list[Association],
    qos_names: set[str],
    *,
    cluster: str | None = None,
) -> list[Drift]:
    """What Slurm lacks or holds differently from ``contract`` (pure)."""
    rows = [a for a in associations if cluster is None or a.cluster == cluster]
    acct, qos, quota = contract.slurm_account, contract.slurm_qos, contract.gpu_quota
    where_cluster = (f"cluster={cluster}",) if cluster else ()
    drift: list[Drift] = []
    if qos not in qos_names:
        drift.append(Drift("qos", qos, "exists", "missing", (_sacctmgr("add", "qos", qos),)))
    own = [a for a in rows if a.account == acct and not a.user]
    if not own:
        drift.append(
            Drift(
                "account",
                acct,
                f"exists with GrpTRES=gres/gpu={quota}",
                "missing",
                (
                    _sacctmgr(
                        "add",
                        "account",
                        acct,
                        *where_cluster,
                        f"Description=dcops-tenant-{contract.name}",
                        f"Organization={contract.name}",
                        f"GrpTRES=gres/gpu={quota}",
                    ),
                ),
            )
        )
    else:
        have = own[0].gpu_limit
        if have != quota:
            drift.append(
                Drift(
                    "account-gpu-limit",
                    acct,
                    f"gres/gpu={quota}",
                    "unlimited" if have is None else f"gres/gpu={have}",
                    (
                        _sacctmgr(
                            "modify",
                            "account",
                            "where",
                            f"name={acct}",
                            *where_cluster,
                            "set",
                            f"GrpTRES=gres/gpu={quota}",
                        ),
                    ),
                )
            )
    for user in contract.unix_users:
        mine = [a for a in rows if a.account == acct and a.user == user]
        if not mine:
            drift.append(
                Drift(
                    "user-association",
                    f"{user}@{acct}",
                    f"exists with QOS {qos}",
                    "missing",
                    (
                        _sacctmgr(
                            "add",
                            "user",
                            user,
                            f"Account={acct}",
                            *where_cluster,
                            f"QOS={qos}",
                            f"DefaultQOS={qos}",
                        ),
                    ),
                )
            )
        elif qos not in mine[0].qos:
            drift.append(
                Drift(
                    "user-qos",
                    f"{user}@{acct}",
                    f"QOS includes {qos}",
                    ",".join(mine[0].qos) or "none",
                    (
                        _sacctmgr(
                            "modify",
                            "user",
                            "where",
                            f"name={user}",
                            f"account={acct}",
                            *where_cluster,
                            "set",
                            f"QOS+={qos}",
                            f"DefaultQOS={qos}",
                        ),
                    ),
                )
            )
    return drift


def read_slurm_state(slurm: SlurmCommands) -> tuple[list[Association], set[str]]:
    """Associations and QOS names as slurmdbd holds them now."""
    assoc = slurm.run(["sacctmgr", "-n", "-P", "show", "assoc", f"format={ASSOC_FORMAT}"])
    if assoc.returncode != 0:
        raise SchedulerError(f"sacctmgr show assoc failed: {first_line(assoc.stderr)}")
    qos = slurm.run(["sacctmgr", "-n", "-P", "show", "qos", "format=Name"])
    if qos.returncode != 0:
        raise SchedulerError(f"sacctmgr show qos failed: {first_line(qos.stderr)}")
    names = {line.strip() for line in qos.stdout.splitlines() if line.strip()}
    return parse_associations(assoc.stdout), names


def sync_slurm(
    contract: TenantContract,
    *,
    apply: bool = False,
    audit: AuditLog | None = None,
    runner: RemoteRunner | None = None,
    env: dict[str, str] | None = None,
    cluster: str | None = None,
) -> SyncReport:
    """Report drift; with ``apply`` run the fixes (each audited) and report again.

    ``runner`` starts sacctmgr (default: here); ``env`` adds variables (e.g. SLURM_CONF).
    """
    slurm = SlurmCommands(runner=runner, env=env)
    associations, qos_names = read_slurm_state(slurm)
    drift = diff(contract, associations, qos_names, cluster=cluster)
    report = SyncReport(contract.name, drift)
    if not apply or not drift:
        return report
    failed = False
    for item in drift:
        for cmd in item.fix:
            result = slurm.run(list(cmd))
            ok = result.returncode == 0
            entry = {
                "command": " ".join(cmd),
                "ok": ok,
                "message": "" if ok else first_line(result.stderr, result.stdout),
            }
            report.applied.append(entry)
            if audit is not None:
                audit.record(
                    "tenant.sync.slurm",
                    f"tenant:{contract.name}",
                    outcome="ok" if ok else "failed",
                    evidence={"drift": item.to_dict(), **entry},
                )
            failed = failed or not ok
    associations, qos_names = read_slurm_state(slurm)
    report.drift = diff(contract, associations, qos_names, cluster=cluster)
    if failed:
        bad = next(a for a in report.applied if not a["ok"])
        raise SchedulerError(f"tenant sync: {bad['command']} failed: {bad['message']}")
    return report
