"""Health-sweep fan-out over real SSH, side by side with ClusterShell's ``clush``.

A private sshd on 127.0.0.1 stands in for every node: an ssh_config maps
``bench-NNNN`` to it (and ``hang-NNNN`` to a loopback port that accepts TCP and
never speaks SSH: a wedged node). Both tools run the same cheap command
(``true``) on the same targets with the same fan-out, the same ssh_config and
known_hosts, one SSH connection per target:

* ``dcops``: the whole :func:`health.sweep.run_sweep` (plan, paramiko
  fan-out, judging, store writes) with a one-command check;
* ``clush -f FANOUT -o "-F cfg" -t T -u T -w NODESET true`` (OpenSSH processes).

Prints wall seconds for 64, 256 and 1,024 targets and the ratio dcops/clush
(< 1: dcops faster), then the same with 10% of the targets hanging. Both tools
get the same limits there: a per-node timeout of ``HANG_TIMEOUT_S`` (dcops's
connect/command timeout; clush's ``-t``/``-u``) and no whole-run deadline
(clush has none, so dcops's ``deadline_s`` is left unset).
Run: ``python bench/bench_sweep.py [--sizes 64,256,1024] [--fanout 64]`` (as a
user sshd lets log in with a key; ~2-3 min on 2 cores).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _result import result  # noqa: E402

from dcops.inventory import Rack, Site  # noqa: E402
from dcops.measurements import CommandResult  # noqa: E402
from dcops.remote.ssh import SshRunner  # noqa: E402
from dcops.remote.ssh_settings import SshSettings  # noqa: E402
from dcops.store import AuditLog, Store  # noqa: E402
from health.base import CheckResult, CheckStatus, NodeFacts  # noqa: E402
from health.sweep import SweepOptions, SweepPorts, run_sweep  # noqa: E402
from tests.rig.ssh import (  # noqa: E402
    _check_config,
    _find_sshd,
    _free_port,
    _keygen,
    _stop,
    _wait_ready,
)

TIMEOUT_S = 60.0  # throughput runs: long enough that no target times out on a busy box
HANG_TIMEOUT_S = 5.0  # the hang run: per-node (connect/command) timeout of both tools


class TrueCheck:
    name = "true"
    description = "bench: runs true"

    def commands(self, facts: NodeFacts) -> Sequence[Sequence[str]]:
        return [["true"]]

    def judge(self, results: Sequence[CommandResult], facts: NodeFacts) -> list[CheckResult]:
        status = CheckStatus.OK if results[0].ok else CheckStatus.FAIL
        return [CheckResult("true", facts.node, status)]


def start_sshd(work: Path) -> tuple[subprocess.Popen[bytes], int, str]:
    sshd = _find_sshd()
    if sshd is None:
        raise SystemExit("sshd not found (package openssh-server)")
    host_pub = _keygen(work / "ssh_host_ed25519_key", "bench-host")
    user_pub = _keygen(work / "id_ed25519", "bench-user")
    (work / "authorized_keys").write_text(user_pub + "\n")
    port = _free_port()
    config = work / "sshd_config"
    problem = _check_config(sshd, config, work, port)
    if problem:
        raise SystemExit(f"sshd rejects the config: {problem}")
    text = config.read_text()
    text = text.replace("MaxStartups 200:30:400", "MaxStartups 2048:100:4096")
    text = text.replace("MaxSessions 64", "MaxSessions 256").replace(
        "LogLevel VERBOSE", "LogLevel ERROR"
    )
    config.write_text(text)
    log = (work / "sshd.log").open("wb")
    proc = subprocess.Popen(
        [sshd, "-D", "-e", "-f", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    if not _wait_ready(proc, port):
        raise SystemExit("sshd did not start")
    return proc, port, host_pub


def client_files(work: Path, port: int, silent_port: int, host_pub: str) -> Path:
    (work / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    cfg = work / "ssh_config"
    cfg.write_text(
        f"Host bench-*\n    HostName 127.0.0.1\n    Port {port}\n\n"
        f"Host hang-*\n    HostName 127.0.0.1\n    Port {silent_port}\n\n"
        f"Host *\n    User {getpass.getuser()}\n    IdentityFile {work / 'id_ed25519'}\n"
        f"    UserKnownHostsFile {work / 'known_hosts'}\n    StrictHostKeyChecking yes\n"
        "    BatchMode yes\n    IdentitiesOnly yes\n    LogLevel ERROR\n"
    )
    return cfg


def targets(n: int, hang_share: float) -> list[str]:
    hung = int(n * hang_share)
    return [f"hang-{i:04d}" for i in range(hung)] + [f"bench-{i:04d}" for i in range(n - hung)]


def nodeset(nodes: list[str]) -> str:
    from dcops.hostlist import compress

    return compress(nodes)


def time_dcops(
    work: Path, nodes: list[str], fanout: int, deadline_s: float | None, timeout_s: float
) -> tuple[float, int]:
    settings = SshSettings(
        identity_files=(str(work / "id_ed25519"),),
        known_hosts=str(work / "known_hosts"),
        ssh_config=str(work / "ssh_config"),
        connect_timeout_s=timeout_s,
        max_connections=max(fanout, 1),
    )
    site = Site("bench", "cpu", (Rack("bench", "cpu", tuple(nodes), 1),))
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.db") as store:
        runner = SshRunner(settings)
        ports = SweepPorts(
            runner=runner, site=site, checks=[TrueCheck()], store=store, audit=AuditLog(store)
        )
        options = SweepOptions(concurrency=fanout, timeout_s=timeout_s, deadline_s=deadline_s)
        start = time.perf_counter()
        report = run_sweep(ports, nodes, options)
        elapsed = time.perf_counter() - start
        runner.close()
    return elapsed, report["summary"]["ok"]


def time_clush(cfg: Path, nodes: list[str], fanout: int, timeout_s: float) -> tuple[float, int]:
    clush = shutil.which("clush")
    if clush is None:
        raise SystemExit("clush not found (package clustershell)")
    argv = [
        clush, "-f", str(fanout), "-o", f"-F {cfg}", "-t", str(timeout_s), "-u", str(timeout_s),
        "-q", "-S", "-w", nodeset(nodes), "echo ok",
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    elapsed = time.perf_counter() - start
    return elapsed, done.stdout.count(": ok")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="64,256,1024")
    parser.add_argument("--fanout", type=int, default=64)
    parser.add_argument("--hang-size", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="16 targets, 20 with hangs")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.hang_size = "16", 20
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="dcops-bench-sweep-") as tmp:
        work = Path(tmp)
        proc, port, host_pub = start_sshd(work)
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(4096)
            cfg = client_files(work, port, silent.getsockname()[1], host_pub)
            try:
                print(f"fan-out {args.fanout}, command `true`, one SSH connection per target")
                print(
                    f"{'targets':>8} {'dcops s':>9} {'clush s':>9} {'ratio':>7}  ok (dcops/clush)"
                )
                results: list[tuple[str, float, float]] = []
                for n in sizes:
                    nodes = targets(n, 0.0)
                    ours, ok_ours = time_dcops(work, nodes, args.fanout, None, TIMEOUT_S)
                    theirs, ok_theirs = time_clush(cfg, nodes, args.fanout, TIMEOUT_S)
                    results.append((f"sweep_{n}", ours, theirs))
                    print(
                        f"{n:>8} {ours:>9.2f} {theirs:>9.2f} {ours / theirs:>7.2f}  "
                        f"{ok_ours}/{ok_theirs}"
                    )
                n = args.hang_size
                nodes = targets(n, 0.10)
                ours, ok_ours = time_dcops(work, nodes, args.fanout, None, HANG_TIMEOUT_S)
                theirs, ok_theirs = time_clush(cfg, nodes, args.fanout, HANG_TIMEOUT_S)
                print(
                    f"\n10% of {n} targets hang (both: per-node timeout {HANG_TIMEOUT_S:g} s, "
                    "no whole-run deadline):"
                )
                print(
                    f"{n:>8} {ours:>9.2f} {theirs:>9.2f} {ours / theirs:>7.2f}  "
                    f"{ok_ours}/{ok_theirs} of {n - int(n * 0.1)} reachable"
                )
                results.append((f"sweep_hang_{n}", ours, theirs))
                for name, o, t in results:
                    result(name, o, t, "s", "lower")
            finally:
                _stop(proc)


if __name__ == "__main__":
    main()
