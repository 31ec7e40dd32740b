"""Tenant API latency: 50 concurrent tenants submitting and listing, against the framework floor.

A real uvicorn on 127.0.0.1 (ephemeral port) serves the API over a real state
store (tenants, hashed tokens, audit chain) and the in-memory RecordingBackend.
Each tenant (own token) runs ``--rounds`` x (POST /v1/jobs, GET /v1/jobs)
concurrently with the others. The baseline, measured in the same run with the
same concurrency and request count, is ``GET /healthz``: the HTTP stack alone
(uvicorn + Starlette + the client), no auth, no store, no audit. Figures are
printed side by side as p50/p99 and as ratios to the baseline.

Bounded: at most tenants x rounds x 2 requests per phase, and ``--max-s`` per phase.

    python bench/bench_api.py [--tenants 50] [--rounds 4] [--workers 8] [--max-s 60] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from _result import result  # noqa: E402

SPEC = {
    "name": "bench",
    "resources": {"nodes": 1, "gpus_per_node": 4, "time_limit": "1h"},
    "command": ["python", "train.py"],
}


def setup(tmp: Path, tenants: int) -> tuple[Path, dict[str, str]]:
    from dcops.store import AuditLog, Store
    from scheduler.tenants.contract import TenantContract
    from scheduler.tenants.store import create_tenant
    from scheduler.tenants.tokens import issue_token

    db = tmp / "state.db"
    tokens: dict[str, str] = {}
    with Store(db) as store:
        audit = AuditLog(store, actor="bench")
        for i in range(tenants):
            name = f"t{i:03d}"
            root = tmp / "out" / name
            root.mkdir(parents=True)
            contract = TenantContract(
                name=name,
                slurm_account=f"{name}-acct",
                slurm_qos="normal",
                slurm_partitions=("batch",),
                unix_users=(f"{name}u",),
                k8s_namespace=f"tenant-{name}",
                k8s_local_queue=f"{name}-lq",
                gpu_quota=1_000_000,
                output_roots=(str(root.resolve()),),
                max_submissions_per_minute=100_000,
            )
            create_tenant(store, contract, audit)
            tokens[name] = issue_token(store, name, audit).token
    return db, tokens


class Row(TypedDict):
    """One line of the latency table: a call, its sample count, p50/p99 and their ratios."""

    call: str
    n: int
    p50_ms: float
    p99_ms: float
    p50_x_floor: float
    p99_x_floor: float


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


async def phase(
    url: str, tokens: dict[str, str], rounds: int, max_s: float, kind: str
) -> dict[str, list[float]]:
    import httpx

    lat: dict[str, list[float]] = {}
    errors: list[int] = []
    deadline = time.monotonic() + max_s
    limits = httpx.Limits(max_connections=len(tokens) + 4, max_keepalive_connections=len(tokens))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0) as client:

        async def one(label: str, method: str, path: str, **kw: Any) -> None:
            t0 = time.perf_counter()
            response = await client.request(method, path, **kw)
            lat.setdefault(label, []).append(time.perf_counter() - t0)
            if response.status_code >= 300:
                errors.append(response.status_code)

        async def tenant(token: str) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            for _ in range(rounds):
                if time.monotonic() > deadline:
                    return
                if kind == "api":
                    await one("submit", "POST", "/v1/jobs", json=SPEC, headers=headers)
                    await one("list", "GET", "/v1/jobs", headers=headers)
                else:
                    await one("healthz", "GET", "/healthz")
                    await one("healthz", "GET", "/healthz")

        await asyncio.gather(*(tenant(tok) for tok in tokens.values()))
    if errors:
        raise SystemExit(f"bench: {len(errors)} failed requests, e.g. HTTP {errors[0]}")
    return lat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--max-s", type=float, default=60.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="5 tenants x 1 round")
    args = parser.parse_args()
    if args.quick:
        args.tenants, args.rounds = 5, 1
    if not 1 <= args.tenants <= 200 or not 1 <= args.rounds <= 50:
        raise SystemExit("bench: --tenants 1..200, --rounds 1..50 (bounded load)")

    from dcops.store import AuditLog, Store
    from scheduler.api.app import ApiSettings, TenantApi
    from scheduler.api.direct import BackendJobService
    from scheduler.api.ports import ApiContext
    from scheduler.api.server import running_server
    from scheduler.backends.recording import RecordingBackend
    from scheduler.tenants.tokens import authenticate

    with tempfile.TemporaryDirectory(prefix="dcops-bench-api-") as tmp_name:
        db, tokens = setup(Path(tmp_name), args.tenants)
        backend = RecordingBackend()

        def factory() -> ApiContext:
            store = Store(db)
            return ApiContext(
                authenticate=lambda token: authenticate(store, token),
                service=BackendJobService(backend),
                audit=AuditLog(store, actor="dcops-api"),
                close=store.close,
            )

        settings = ApiSettings(workers=args.workers, requests_per_minute=1e9)
        api = TenantApi(factory, settings)
        with running_server(api.app) as url:
            t0 = time.perf_counter()
            floor = asyncio.run(phase(url, tokens, args.rounds, args.max_s, "healthz"))
            floor_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            real = asyncio.run(phase(url, tokens, args.rounds, args.max_s, "api"))
            real_s = time.perf_counter() - t0
        with Store(db) as store:
            audit_ok = AuditLog(store).verify().ok

    base = floor["healthz"]
    rows: list[Row] = []
    for label, samples in (("healthz (floor)", base), *sorted(real.items())):
        rows.append(
            {
                "call": label,
                "n": len(samples),
                "p50_ms": statistics.median(samples) * 1000,
                "p99_ms": percentile(samples, 99) * 1000,
                "p50_x_floor": statistics.median(samples) / statistics.median(base),
                "p99_x_floor": percentile(samples, 99) / percentile(base, 99),
            }
        )
    summary = {
        "tenants": args.tenants,
        "rounds": args.rounds,
        "workers": args.workers,
        "floor_phase_s": round(floor_s, 3),
        "api_phase_s": round(real_s, 3),
        "api_requests_per_s": round(sum(len(v) for v in real.values()) / real_s, 1),
        "floor_requests_per_s": round(len(base) / floor_s, 1),
        "submitted": len(backend.submissions),
        "audit_chain_ok": audit_ok,
        "rows": rows,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(
        f"tenant API, {args.tenants} concurrent tenants x {args.rounds} rounds, "
        f"{args.workers} API workers, real uvicorn on loopback, RecordingBackend"
    )
    print(
        f"{'call':<16} {'n':>5} {'p50 ms':>9} {'p99 ms':>9} {'p50 x floor':>12} {'p99 x floor':>12}"
    )
    for r in rows:
        print(
            f"{r['call']:<16} {r['n']:>5} {r['p50_ms']:>9.2f} {r['p99_ms']:>9.2f} "
            f"{r['p50_x_floor']:>12.2f} {r['p99_x_floor']:>12.2f}"
        )
    print(
        f"throughput: api {summary['api_requests_per_s']} req/s vs floor "
        f"{summary['floor_requests_per_s']} req/s; submitted {summary['submitted']}; "
        f"audit chain ok: {audit_ok}"
    )
    for r in rows[1:]:
        key = "".join(c if c.isalnum() else "_" for c in r["call"]).strip("_")
        result(f"api_p99_{key}", r["p99_ms"], rows[0]["p99_ms"], "ms", "lower")
    result(
        "api_throughput",
        summary["api_requests_per_s"],
        summary["floor_requests_per_s"],
        "req/s",
        "higher",
    )


if __name__ == "__main__":
    main()
