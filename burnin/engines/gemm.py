"""TorchGemmEngine: a timed, seeded GEMM burn on this node's GPUs (the GemmEngine port).

Per GPU, in parallel (one thread per device; CUDA kernels release the GIL):

1. **Same problem everywhere.** ``A`` (m x k) and ``B`` (k x n) are drawn once on
   the CPU from ``torch.Generator().manual_seed(seed)`` (standard normal, never
   zeros), cast to the burn dtype there, and copied to every device, so every
   device multiplies bit-identical inputs.
2. **Poisoned output.** The output buffer is filled with NaN before the burn, so
   a kernel that leaves part of it unwritten shows up as ``has_nan``.
3. **Checksum.** One untimed warm-up GEMM; ``checksum`` is the sha256 of the
   bytes of that result. GPUs of one SKU/driver/cuBLAS that agree produce the
   same value; a corrupt one differs (compare across the domain, majority wins).
4. **Timed burn** for ``duration_s``: GEMMs in batches, the device synchronized
   after each batch; ``tflops = 2*m*n*k*iterations / time`` counts only the
   batches. Every ``check_interval_s`` (and at the end) the live output is
   compared bit for bit with the warm-up result; a GPU whose result changed
   mid-burn gets a checksum of its own (it never matches its peers).
5. **Reference.** A few seeded sample rows are recomputed in fp64 on the CPU
   from the very same (low-precision) inputs: ``rel_error = ||out-ref||/||ref||``
   over those rows. ``has_nan`` is true when the output holds NaN or inf.

dtypes: ``fp32``, ``tf32``, ``fp16``, ``bf16``, ``fp8`` (e4m3 inputs, bf16 output,
through ``torch._scaled_mm``; CUDA needs compute capability >= 8.9). On CPU:
fp32, fp16 and bf16 (slow), fp8 when this torch's ``_scaled_mm`` runs on CPU;
never tf32. :meth:`TorchGemmEngine.supported_dtypes` declares what this node can
do; asking for anything else is a :class:`~dcops.errors.BackendError` that says
why. Sizes: ``cuda_size`` (8192) square on CUDA; on CPU sized from a quick
probe so one iteration takes about ``cpu_iter_s`` (or ``size`` when given).

Errors: CUDA OOM, a lost device and other torch failures become one-line
:class:`~dcops.errors.BackendError` naming the GPU; a burn that cannot end
within ``timeout_s`` is a :class:`~dcops.errors.CommandTimeout`.

Self-test hook: ``corrupt(gpu, out)`` is called on every result the engine
checks (warm-up, checkpoints, final) and may alter ``out`` in place; it lets a
test (or an operator's self-check) prove that corruption is caught.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from burnin.engines._torch import (
    import_torch,
    local_hostname,
    resolve_device_kind,
    wrap_torch_error,
)
from dcops.errors import (
    BackendError,
    CommandTimeout,
    DcopsError,
    UnknownNameError,
    UnknownNodeError,
)
from dcops.measurements import GemmResult, GpuRef

#: Every dtype name the engine knows (the same names as the simulator's).
DTYPES = ("fp32", "tf32", "fp16", "bf16", "fp8")
DEFAULT_CUDA_SIZE = 8192
#: fp8 GEMMs (cuBLASLt) want every dimension a multiple of 16.
_FP8_ALIGN = 16
_CPU_ALIGN = 64
_CPU_SIZE_RANGE = (64, 4096)

#: Called on each checked result: (gpu, output tensor) -> None, may alter the tensor.
CorruptHook = Callable[[GpuRef, Any], None]


@dataclass(frozen=True)
class _Problem:
    """The seeded common problem, on the CPU, ready to copy to each device."""

    a: Any  # m x k, burn dtype
    b: Any  # k x n, burn dtype (fp8: stored n x k, used transposed = column-major)
    rows: Any  # int64 indices of the reference rows
    ref: Any  # len(rows) x n, fp64
    m: int
    n: int
    k: int


class TorchGemmEngine:
    """GemmEngine on this node's CUDA GPUs (or CPU "GPUs", one per rank)."""

    def __init__(
        self,
        *,
        device: str = "auto",
        size: int | None = None,
        cuda_size: int = DEFAULT_CUDA_SIZE,
        cpu_iter_s: float = 0.25,
        cpu_ranks: int = 1,
        sample_rows: int = 4,
        check_interval_s: float = 1.0,
        hostname: str | None = None,
        corrupt: CorruptHook | None = None,
    ) -> None:
        if size is not None and size < 1:
            raise ValueError("GEMM size must be positive")
        if cuda_size < 1 or cpu_iter_s <= 0 or cpu_ranks < 1 or sample_rows < 1:
            raise ValueError("cuda_size, cpu_iter_s, cpu_ranks and sample_rows must be positive")
        self.device = device
        self.size = size
        self.cuda_size = cuda_size
        self.cpu_iter_s = cpu_iter_s
        self.cpu_ranks = cpu_ranks
        self.sample_rows = sample_rows
        self.check_interval_s = check_interval_s
        self.hostname = hostname or local_hostname()
        self.corrupt = corrupt

    # -- capabilities ---------------------------------------------------------------

    def device_kind(self) -> str:
        """``cuda`` or ``cpu``: where this engine burns on this node."""
        return resolve_device_kind(import_torch(), self.device)

    def local_gpus(self) -> list[GpuRef]:
        """This node's GPUs (CUDA devices), or ``cpu_ranks`` CPU "GPUs"."""
        torch = import_torch()
        kind = resolve_device_kind(torch, self.device)
        count = int(torch.cuda.device_count()) if kind == "cuda" else self.cpu_ranks
        return [GpuRef(self.hostname, i) for i in range(count)]

    def supported_dtypes(self) -> dict[str, str]:
        """Every known dtype -> ``"ok"`` or why this node cannot burn it."""
        torch = import_torch()
        kind = resolve_device_kind(torch, self.device)
        indexes = list(range(int(torch.cuda.device_count()))) if kind == "cuda" else [0]
        return {d: _unsupported(torch, kind, d, indexes) or "ok" for d in DTYPES}

    # -- the port -------------------------------------------------------------------

    def run(
        self,
        gpus: Sequence[GpuRef],
        *,
        dtype: str,
        duration_s: float,
        seed: int,
        timeout_s: float | None = None,
    ) -> list[GemmResult]:
        if dtype not in DTYPES:
            raise UnknownNameError("dtype", dtype, DTYPES)
        if duration_s <= 0:
            raise ValueError("duration_s must be positive")
        if timeout_s is not None and duration_s >= timeout_s:
            raise CommandTimeout(
                self.hostname,
                f"GEMM burn of {duration_s:g} s cannot finish within {timeout_s:g} s",
            )
        if not gpus:
            return []
        started = time.monotonic()
        torch = import_torch()
        kind = resolve_device_kind(torch, self.device)
        self._check_gpus(torch, kind, gpus)
        why = _unsupported(torch, kind, dtype, [g.index for g in gpus])
        if why:
            raise BackendError(f"{self.hostname}: {dtype} GEMM not supported: {why}")
        size = self._size(torch, kind, dtype, duration_s, len(gpus))
        try:
            problem = _make_problem(torch, dtype, size, seed, self.sample_rows)
        except RuntimeError as exc:
            msg = f"{self.hostname}: preparing a {size}^3 {dtype} GEMM"
            raise wrap_torch_error(msg, exc) from exc
        deadline = None if timeout_s is None else started + timeout_s
        return self._run_threads(torch, kind, gpus, dtype, duration_s, problem, deadline)

    # -- internals ------------------------------------------------------------------

    def _check_gpus(self, torch: Any, kind: str, gpus: Sequence[GpuRef]) -> None:
        if len(set(gpus)) != len(gpus):
            raise ValueError("a GEMM burn's GPUs must be distinct")
        foreign = sorted({g.node for g in gpus if g.node != self.hostname})
        if foreign:
            raise UnknownNodeError(
                f"{', '.join(foreign)}: not this node ({self.hostname}); "
                "TorchGemmEngine burns only local GPUs"
            )
        if kind == "cuda":
            count = int(torch.cuda.device_count())
            known = [str(GpuRef(self.hostname, i)) for i in range(count)]
            for g in gpus:
                if not 0 <= g.index < count:
                    raise UnknownNameError("GPU", str(g), known)

    def _size(self, torch: Any, kind: str, dtype: str, duration_s: float, parallel: int) -> int:
        if self.size is not None:
            size = self.size
        elif kind == "cuda":
            size = self.cuda_size
        else:
            size = _cpu_size(torch, dtype, min(self.cpu_iter_s, duration_s / 4), parallel)
        if dtype == "fp8":
            size = -(-size // _FP8_ALIGN) * _FP8_ALIGN
        return size

    def _run_threads(
        self,
        torch: Any,
        kind: str,
        gpus: Sequence[GpuRef],
        dtype: str,
        duration_s: float,
        problem: _Problem,
        deadline: float | None,
    ) -> list[GemmResult]:
        results: dict[GpuRef, GemmResult] = {}
        errors: dict[GpuRef, BaseException] = {}
        stop = threading.Event()

        def work(gpu: GpuRef) -> None:
            try:
                results[gpu] = _Burn(self, torch, kind, gpu, dtype, problem).run(
                    duration_s, deadline, stop
                )
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                errors[gpu] = exc

        threads = [
            threading.Thread(target=work, args=(g,), name=f"gemm-{g}", daemon=True) for g in gpus
        ]
        prev_tf32 = _set_tf32(torch, kind, dtype == "tf32")
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
                if t.is_alive():
                    stop.set()
                    raise CommandTimeout(
                        self.hostname,
                        f"GEMM burn on {t.name.removeprefix('gemm-')} did not finish in time",
                    )
        finally:
            stop.set()
            _set_tf32(torch, kind, prev_tf32)
        for gpu in gpus:
            if gpu in errors:
                exc = errors[gpu]
                if isinstance(exc, DcopsError):
                    raise exc
                raise wrap_torch_error(f"{gpu}: {dtype} GEMM", exc) from exc
        return [results[g] for g in gpus]


class _Burn:
    """One GPU's burn: copy the problem, warm up, checksum, timed loop, checks."""

    def __init__(
        self,
        engine: TorchGemmEngine,
        torch: Any,
        kind: str,
        gpu: GpuRef,
        dtype: str,
        problem: _Problem,
    ) -> None:
        self.engine = engine
        self.torch = torch
        self.gpu = gpu
        self.dtype = dtype
        self.problem = problem
        self.device = torch.device("cuda", gpu.index) if kind == "cuda" else torch.device("cpu")
        self.cuda = kind == "cuda"

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize(self.device)

    def run(self, duration_s: float, deadline: float | None, stop: threading.Event) -> GemmResult:
        torch, p = self.torch, self.problem
        if self.cuda:
            torch.cuda.set_device(self.device)
        a = p.a.to(self.device)
        b = p.b.to(self.device)
        if self.dtype == "fp8":
            b = b.t()  # column-major, as _scaled_mm wants
            one = torch.ones((), dtype=torch.float32, device=self.device)
            out = torch.empty((p.m, p.n), dtype=torch.bfloat16, device=self.device)

            def gemm() -> None:
                torch._scaled_mm(a, b, one, one, out_dtype=torch.bfloat16, out=out)
        else:
            out = torch.empty((p.m, p.n), dtype=a.dtype, device=self.device)

            def gemm() -> None:
                torch.matmul(a, b, out=out)

        out.fill_(float("nan"))
        t0 = time.perf_counter()
        gemm()
        self.sync()
        first_s = time.perf_counter() - t0
        self._observe(out)
        first = out.clone()
        nonfinite = not bool(torch.isfinite(first).all())
        digest = _sha256(torch, first)
        rel_error = _rel_error(torch, out.index_select(0, p.rows.to(self.device)), p.ref)

        # Timed burn: batches of ~0.1 s (or a fifth of the burn), synchronized after each;
        # the batch is re-sized from the last one (the warm-up time includes start-up costs).
        target_s = min(0.1, duration_s / 5)
        batch = max(1, int(target_s / max(first_s, 1e-9)))
        iterations, busy_s, mismatch = 0, 0.0, None
        next_check = self.engine.check_interval_s
        while busy_s < duration_s and not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            t0 = time.perf_counter()
            for _ in range(batch):
                gemm()
            self.sync()
            took_s = time.perf_counter() - t0
            busy_s += took_s
            iterations += batch
            per_s = max(took_s / batch, 1e-9)
            left = math.ceil((duration_s - busy_s) / per_s)
            batch = max(1, min(batch * 4, int(target_s / per_s), left))
            if busy_s >= next_check and busy_s < duration_s:
                next_check += self.engine.check_interval_s
                mismatch = mismatch or self._check(out, first)
        mismatch = mismatch or self._check(out, first)
        nonfinite = nonfinite or not bool(torch.isfinite(out).all())
        if mismatch is not None:
            # The result changed during the burn: a checksum no healthy peer can have.
            digest = hashlib.sha256(f"{digest}:unstable:{mismatch}".encode()).hexdigest()
        tflops = 2.0 * p.m * p.n * p.k * iterations / busy_s / 1e12 if busy_s > 0 else 0.0
        return GemmResult(
            gpu=self.gpu,
            dtype=self.dtype,
            m=p.m,
            n=p.n,
            k=p.k,
            iterations=iterations,
            duration_s=busy_s,
            tflops=tflops,
            checksum=digest,
            rel_error=math.nan if nonfinite else rel_error,
            has_nan=nonfinite,
            device=str(self.device),
        )

    def _observe(self, out: Any) -> None:
        hook = self.engine.corrupt
        if hook is not None:
            hook(self.gpu, out)
            self.sync()

    def _check(self, out: Any, first: Any) -> str | None:
        """None when ``out`` equals the warm-up result bit for bit, else its digest."""
        self._observe(out)
        torch = self.torch
        same = bool(torch.equal(out.view(torch.uint8), first.view(torch.uint8)))
        return None if same else _sha256(torch, out)


def _set_tf32(torch: Any, kind: str, allow: bool) -> bool:
    """Set cuBLAS's TF32 switch (fp32 burns must be true fp32); return the old value."""
    if kind != "cuda":
        return allow
    prev = bool(torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = allow
    return prev


def _unsupported(torch: Any, kind: str, dtype: str, indexes: Sequence[int]) -> str | None:
    """Why ``dtype`` cannot burn here, or None when it can."""
    if dtype == "tf32" and kind == "cpu":
        return "tf32 is a CUDA tensor-core mode; use fp32 on CPU"
    if dtype != "fp8":
        return None
    if not hasattr(torch, "_scaled_mm") or not hasattr(torch, "float8_e4m3fn"):
        return f"torch {torch.__version__} has no torch._scaled_mm / float8_e4m3fn"
    if kind == "cuda":
        for i in indexes:
            cap = tuple(torch.cuda.get_device_capability(i))
            if cap < (8, 9):
                return f"cuda:{i} has compute capability {cap[0]}.{cap[1]}; fp8 needs >= 8.9"
        return None
    try:
        a = torch.ones((_FP8_ALIGN, _FP8_ALIGN)).to(torch.float8_e4m3fn)
        one = torch.ones((), dtype=torch.float32)
        torch._scaled_mm(a, a.t(), one, one, out_dtype=torch.bfloat16)
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        return f"torch._scaled_mm does not run on CPU in torch {torch.__version__} ({exc})"
    return None


def _torch_dtype(torch: Any, dtype: str) -> Any:
    return {
        "fp32": torch.float32,
        "tf32": torch.float32,
        "fp16": torch.float16,
        "bf16": torch.bfloat16,
        "fp8": getattr(torch, "float8_e4m3fn", None),
    }[dtype]


def _make_problem(torch: Any, dtype: str, size: int, seed: int, sample_rows: int) -> _Problem:
    m = n = k = size
    gen = torch.Generator(device="cpu").manual_seed(seed)
    dt = _torch_dtype(torch, dtype)
    a = torch.randn((m, k), generator=gen, dtype=torch.float32).to(dt)
    b32 = torch.randn((k, n), generator=gen, dtype=torch.float32)
    b = b32.t().contiguous().to(dt) if dtype == "fp8" else b32.to(dt)
    del b32
    rows = torch.randperm(m, generator=gen)[: min(sample_rows, m)].sort().values
    b64 = b.to(torch.float64)
    ref = a.index_select(0, rows).to(torch.float64) @ (b64.t() if dtype == "fp8" else b64)
    return _Problem(a=a, b=b, rows=rows, ref=ref, m=m, n=n, k=k)


def _cpu_size(torch: Any, dtype: str, iter_s: float, parallel: int) -> int:
    """A square size whose GEMM takes about ``iter_s`` on this CPU, shared ``parallel`` ways."""
    dt = _torch_dtype(torch, "fp32" if dtype == "fp8" else dtype)
    probe = 256
    a = torch.ones((probe, probe), dtype=dt)
    torch.matmul(a, a)
    t0 = time.perf_counter()
    reps = 3
    for _ in range(reps):
        torch.matmul(a, a)
    rate = 2.0 * probe**3 * reps / max(time.perf_counter() - t0, 1e-9) / parallel
    size = int((rate * iter_s / 2.0) ** (1.0 / 3.0)) // _CPU_ALIGN * _CPU_ALIGN
    return max(_CPU_SIZE_RANGE[0], min(_CPU_SIZE_RANGE[1], size))


def _sha256(torch: Any, t: Any) -> str:
    host = t.detach().contiguous().cpu().view(torch.uint8).numpy()
    return hashlib.sha256(host).hexdigest()


def _rel_error(torch: Any, sample: Any, ref: Any) -> float:
    got = sample.detach().cpu().to(torch.float64)
    denom = float(torch.linalg.vector_norm(ref))
    num = float(torch.linalg.vector_norm(got - ref))
    return num / denom if denom > 0 else num
