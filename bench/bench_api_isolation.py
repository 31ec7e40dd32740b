"""One tenant's worst-case bodies against another tenant's latency (issue 11, target < 2x p99).

A real uvicorn on 127.0.0.1 serves the tenant API over a real state store and
the in-memory RecordingBackend. Tenant ``victim`` lists its jobs
(``GET /v1/jobs``) ``--calls`` times, sequentially; its p50/p99 are measured

* **alone** -- the baseline, in the same run, same server;
* **under attack** -- while tenant ``attacker`` sends, from ``--attackers``
  concurrent connections, the worst bodies within the size limit: deep flow
  nesting, a billion-laughs alias bomb, an integer over 4,300 digits, a YAML
  mapping with thousands of keys, a maximal script, deep JSON.

Also measured per body: the server's time to refuse or accept it (target well
under 100 ms), next to the time PyYAML's pure-Python parser alone needs for the
same bytes (what the old decoder walked first; bounded by ``--old-max-s``).

    python bench/bench_api_isolation.py [--calls 300] [--attackers 8] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from _result import result  # noqa: E402

MAX_BODY = 256 * 1024
HEAD = "name: x\nresources: {time_limit: 1h}\ncommand: [a]\n"


def worst_bodies(limit: int) -> dict[str, tuple[bytes, str]]:
    room = limit - len(HEAD) - 64
    laughs = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
        f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    yaml_type = "application/yaml"
    return {
        "deep flow nesting": ((HEAD + "x: " + "[" * room).encode(), yaml_type),
        "deep flow, 10 KB": ((HEAD + "x: " + "[" * 10_000).encode(), yaml_type),
        "nesting at the limit": ((HEAD + "x: " + "[" * 60 + "]" * 60).encode(), yaml_type),
        "billion laughs": (laughs.encode(), yaml_type),
        "4,301+ digit int": ((HEAD + "n: " + "9" * (room // 2)).encode(), yaml_type),
        "20k keys": (
            (HEAD + "x: {" + ",".join(f"k{i}: {i}" for i in range(20_000)) + "}").encode()[:limit],
            yaml_type,
        ),
        "max script": (
            json.dumps(
                {
                    "name": "x",
                    "resources": {"time_limit": "1h", "gpus_per_node": 0},
                    "script": "echo hello world\n" * (room // 18),
                }
            ).encode()[:limit],
            "application/json",
        ),
        "deep JSON": (b"[" * room, "application/json"),
    }


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def setup(tmp: Path) -> tuple[Path, dict[str, str]]:
    from dcops.store import AuditLog, Store
    from scheduler.tenants.contract import TenantContract
    from scheduler.tenants.store import create_tenant
    from scheduler.tenants.tokens import issue_token

    db = tmp / "state.db"
    tokens = {}
    with Store(db) as store:
        audit = AuditLog(store, actor="bench")
        for name in ("victim", "attacker"):
            root = tmp / "out" / name
            root.mkdir(parents=True)
            contract = TenantContract(
                name=name,
                slurm_account=name,
                slurm_qos="normal",
                slurm_partitions=("batch",),
                unix_users=(f"{name}u",),
                k8s_namespace=f"tenant-{name}",
                k8s_local_queue=f"{name}-lq",
                gpu_quota=1_000_000,
                output_roots=(str(root.resolve()),),
                max_submissions_per_minute=1_000_000,
                max_pending_jobs=1_000_000,
            )
            create_tenant(store, contract, audit)
            tokens[name] = issue_token(store, name, audit).token
    return db, tokens


async def victim_calls(url: str, token: str, calls: int) -> list[float]:
    import httpx

    out = []
    async with httpx.AsyncClient(base_url=url, timeout=120.0) as client:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(calls):
            t0 = time.perf_counter()
            response = await client.get("/v1/jobs", headers=headers)
            out.append(time.perf_counter() - t0)
            if response.status_code != 200:
                raise SystemExit(f"bench: victim got HTTP {response.status_code}")
    return out


def attack(url: str, token: str, bodies: list[tuple[bytes, str]], stop: threading.Event) -> int:
    import httpx

    sent = 0
    with httpx.Client(base_url=url, timeout=120.0) as client:
        while not stop.is_set():
            for body, media in bodies:
                headers = {"Authorization": f"Bearer {token}", "Content-Type": media}
                response = client.post("/v1/jobs", content=body, headers=headers)
                if response.status_code >= 500:
                    raise SystemExit(f"bench: attacker got HTTP {response.status_code}")
                sent += 1
                if stop.is_set():
                    break
    return sent


def one_body(url: str, token: str, body: bytes, media: str) -> tuple[float, int]:
    import httpx

    with httpx.Client(base_url=url, timeout=120.0) as client:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": media}
        client.get("/healthz")
        t0 = time.perf_counter()
        response = client.post("/v1/jobs", content=body, headers=headers)
        return time.perf_counter() - t0, response.status_code


def old_parse_s(body: bytes, max_s: float) -> str:
    """Seconds PyYAML's pure-Python event parser takes on ``body`` (the old pre-scan)."""
    import yaml

    t0 = time.perf_counter()
    try:
        for _ in yaml.parse(body.decode(), Loader=yaml.SafeLoader):
            if time.perf_counter() - t0 > max_s:
                return f">{max_s:g}"
    except (yaml.YAMLError, RecursionError):
        pass
    return f"{time.perf_counter() - t0:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--attackers", type=int, default=8)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--old-max-s", type=float, default=5.0)
    parser.add_argument("--per-tenant", type=int, default=None, help="max_concurrent_per_tenant")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="60 victim calls, 2 attackers")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.attackers = 60, 2
    if not 10 <= args.calls <= 5000 or not 1 <= args.attackers <= 64:
        raise SystemExit("bench: --calls 10..5000, --attackers 1..64 (bounded load)")

    from dcops.store import AuditLog, Store
    from scheduler.api.app import ApiSettings, TenantApi
    from scheduler.api.direct import BackendJobService
    from scheduler.api.ports import ApiContext
    from scheduler.api.server import running_server, tune_interpreter
    from scheduler.backends.recording import RecordingBackend
    from scheduler.tenants.tokens import authenticate

    tune_interpreter()  # as `dcops serve` does
    bodies = worst_bodies(MAX_BODY)
    with tempfile.TemporaryDirectory(prefix="dcops-bench-iso-") as tmp_name:
        db, tokens = setup(Path(tmp_name))
        backend = RecordingBackend()

        def factory() -> ApiContext:
            store = Store(db)
            return ApiContext(
                authenticate=lambda token: authenticate(store, token),
                service=BackendJobService(backend),
                audit=AuditLog(store, actor="dcops-api"),
                close=store.close,
            )

        settings = ApiSettings(
            workers=args.workers, requests_per_minute=1e9, max_body_bytes=MAX_BODY
        )
        if args.per_tenant is not None:
            settings = dataclasses.replace(settings, max_concurrent_per_tenant=args.per_tenant)
        api = TenantApi(factory, settings)
        with running_server(api.app) as url:
            # warm up (lazy imports, schema compilation) before measuring anything
            warm = json.dumps({"name": "w", "resources": {"time_limit": "1h"}, "command": ["a"]})
            one_body(url, tokens["victim"], warm.encode(), "application/json")
            per_body = {
                label: one_body(url, tokens["attacker"], body, media)
                for label, (body, media) in bodies.items()
            }
            alone = asyncio.run(victim_calls(url, tokens["victim"], args.calls))
            stop = threading.Event()
            sent: list[int] = []
            threads = [
                threading.Thread(
                    target=lambda: sent.append(
                        attack(url, tokens["attacker"], list(bodies.values()), stop)
                    )
                )
                for _ in range(args.attackers)
            ]
            for thread in threads:
                thread.start()
            time.sleep(0.5)
            t0 = time.perf_counter()
            attacked = asyncio.run(victim_calls(url, tokens["victim"], args.calls))
            attack_s = time.perf_counter() - t0
            stop.set()
            for thread in threads:
                thread.join(120)
        api.close()

    old = {
        label: old_parse_s(body, args.old_max_s)
        for label, (body, media) in bodies.items()
        if media == "application/yaml"
    }
    summary: dict[str, Any] = {
        "calls": args.calls,
        "attackers": args.attackers,
        "workers": args.workers,
        "max_body_bytes": MAX_BODY,
        "victim_alone_p50_ms": statistics.median(alone) * 1000,
        "victim_alone_p99_ms": percentile(alone, 99) * 1000,
        "victim_attacked_p50_ms": statistics.median(attacked) * 1000,
        "victim_attacked_p99_ms": percentile(attacked, 99) * 1000,
        "p99_ratio": percentile(attacked, 99) / percentile(alone, 99),
        "attack_bodies_sent": sum(sent),
        "attack_bodies_per_s": sum(sent) / attack_s,
        "per_body": {
            label: {
                "bytes": len(bodies[label][0]),
                "server_ms": round(ms * 1000, 1),
                "status": status,
                "pure_python_parse_s": old.get(label, "n/a (JSON)"),
            }
            for label, (ms, status) in per_body.items()
        },
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(
        f"tenant isolation: victim GET /v1/jobs x {args.calls}, alone vs while the attacker "
        f"POSTs worst-case bodies from {args.attackers} connections ({args.workers} workers, "
        f"body limit {MAX_BODY // 1024} KiB)"
    )
    print(f"{'victim':<14} {'p50 ms':>9} {'p99 ms':>9}")
    alone_p50, alone_p99 = summary["victim_alone_p50_ms"], summary["victim_alone_p99_ms"]
    print(f"{'alone':<14} {alone_p50:>9.2f} {alone_p99:>9.2f}")
    print(
        f"{'under attack':<14} {summary['victim_attacked_p50_ms']:>9.2f} "
        f"{summary['victim_attacked_p99_ms']:>9.2f}"
    )
    print(
        f"p99 under attack / alone: {summary['p99_ratio']:.2f}x (target < 2x); attacker sent "
        f"{summary['attack_bodies_sent']} bodies ({summary['attack_bodies_per_s']:.0f}/s)"
    )
    print(f"{'body':<22} {'bytes':>8} {'status':>6} {'server ms':>10} {'pure-Python parse s':>20}")
    for label, row in summary["per_body"].items():
        print(
            f"{label:<22} {row['bytes']:>8} {row['status']:>6} {row['server_ms']:>10.1f} "
            f"{row['pure_python_parse_s']:>20}"
        )

    result(
        "api_isolation_victim_p99",
        summary["victim_attacked_p99_ms"],
        summary["victim_alone_p99_ms"],
        "ms",
        "lower",
    )


if __name__ == "__main__":
    main()
