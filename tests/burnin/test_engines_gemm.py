"""TorchGemmEngine on CPU (torch + 2 shared cores): speed, checksums, reference, faults."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
from typing import Any

import pytest

from dcops.errors import BackendError, CommandTimeout, UnknownNameError, UnknownNodeError
from dcops.measurements import GpuRef
from dcops.ports import GemmEngine

torch = pytest.importorskip("torch", reason="torch is not installed (pip install dcops[torch])")

from burnin.engines.gemm import TorchGemmEngine  # noqa: E402

pytestmark = pytest.mark.torch

HOST = socket.gethostname()
SIZE = 128
DURATION_S = 0.15


def _gpus(n: int) -> list[GpuRef]:
    return [GpuRef(HOST, i) for i in range(n)]


def _engine(**kw: Any) -> TorchGemmEngine:
    return TorchGemmEngine(device="cpu", size=SIZE, **kw)


def test_engine_is_a_gemm_engine() -> None:
    assert isinstance(_engine(), GemmEngine)


def test_importing_the_engines_does_not_import_torch() -> None:
    code = (
        "import sys, burnin.engines.gemm, burnin.engines.collectives; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_fp32_burn_is_fast_same_everywhere_and_accurate() -> None:
    results = _engine().run(_gpus(2), dtype="fp32", duration_s=DURATION_S, seed=7)
    assert [r.gpu for r in results] == _gpus(2)
    for r in results:
        assert r.tflops > 0 and r.iterations >= 1
        assert (r.m, r.n, r.k) == (SIZE, SIZE, SIZE)
        assert r.duration_s >= DURATION_S * 0.9
        assert r.rel_error < 1e-5  # fp32: well under 1e-3
        assert not r.has_nan
        assert r.device == "cpu" and r.dtype == "fp32"
    assert results[0].checksum == results[1].checksum
    assert len(results[0].checksum) == 64


def test_another_seed_gives_another_checksum() -> None:
    a = _engine().run(_gpus(1), dtype="fp32", duration_s=0.05, seed=1)[0]
    b = _engine().run(_gpus(1), dtype="fp32", duration_s=0.05, seed=2)[0]
    c = _engine().run(_gpus(1), dtype="fp32", duration_s=0.05, seed=1)[0]
    assert a.checksum != b.checksum
    assert a.checksum == c.checksum


def test_corrupt_result_is_the_odd_checksum_out() -> None:
    def corrupt(gpu: GpuRef, out: Any) -> None:
        if gpu.index == 1:
            out.view(-1)[17] += 1e-3

    results = _engine(corrupt=corrupt).run(_gpus(3), dtype="fp32", duration_s=0.05, seed=3)
    sums = [r.checksum for r in results]
    assert sums[0] == sums[2] != sums[1]
    assert not results[1].has_nan


def test_result_that_changes_mid_burn_is_caught() -> None:
    calls = {"n": 0}

    def flaky(gpu: GpuRef, out: Any) -> None:
        if gpu.index == 0:
            calls["n"] += 1
            if calls["n"] > 1:  # the warm-up result is fine; later ones are not
                out.view(-1)[3] = 0.0

    eng = _engine(corrupt=flaky, check_interval_s=0.02)
    results = eng.run(_gpus(2), dtype="fp32", duration_s=0.1, seed=4)
    assert results[0].checksum != results[1].checksum


def test_nan_in_the_result_is_reported() -> None:
    def nan(gpu: GpuRef, out: Any) -> None:
        out.view(-1)[0] = float("nan")

    r = _engine(corrupt=nan).run(_gpus(1), dtype="fp32", duration_s=0.05, seed=5)[0]
    assert r.has_nan
    assert math.isnan(r.rel_error)


@pytest.mark.parametrize(("dtype", "bound"), [("bf16", 1e-2), ("fp8", 1e-2)])
def test_low_precision_on_cpu_within_bounds(dtype: str, bound: float) -> None:
    eng = _engine()
    if eng.supported_dtypes()[dtype] != "ok":
        pytest.skip(f"{dtype} here: {eng.supported_dtypes()[dtype]}")
    results = eng.run(_gpus(2), dtype=dtype, duration_s=0.05, seed=6)
    assert results[0].checksum == results[1].checksum
    assert 0 < results[0].rel_error < bound


def test_cpu_size_is_calibrated_when_not_given() -> None:
    eng = TorchGemmEngine(device="cpu", cpu_iter_s=0.01)
    r = eng.run(_gpus(1), dtype="fp32", duration_s=0.1, seed=1)[0]
    assert 64 <= r.m <= 4096 and r.m % 64 == 0
    assert r.tflops > 0


def test_unsupported_and_unknown_inputs_are_clear_errors() -> None:
    eng = _engine()
    with pytest.raises(BackendError, match="tf32"):
        eng.run(_gpus(1), dtype="tf32", duration_s=0.05, seed=1)
    with pytest.raises(UnknownNameError, match="fp64"):
        eng.run(_gpus(1), dtype="fp64", duration_s=0.05, seed=1)
    with pytest.raises(UnknownNodeError, match="not this node"):
        eng.run([GpuRef("elsewhere", 0)], dtype="fp32", duration_s=0.05, seed=1)
    with pytest.raises(CommandTimeout):
        eng.run(_gpus(1), dtype="fp32", duration_s=2.0, seed=1, timeout_s=1.0)
    assert eng.run([], dtype="fp32", duration_s=0.05, seed=1) == []


def test_local_gpus_in_cpu_mode_are_ranks() -> None:
    assert TorchGemmEngine(device="cpu", cpu_ranks=3).local_gpus() == _gpus(3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", ["fp32", "tf32", "bf16", "fp16", "fp8"])
def test_cuda_burn(dtype: str) -> None:
    eng = TorchGemmEngine(device="cuda", cuda_size=4096)
    why = eng.supported_dtypes()[dtype]
    if why != "ok":
        pytest.skip(why)
    gpus = eng.local_gpus()
    results = eng.run(gpus, dtype=dtype, duration_s=1.0, seed=11)
    bounds = {"fp32": 1e-5, "tf32": 2e-3, "fp16": 5e-3, "bf16": 1e-2, "fp8": 1e-2}
    for r in results:
        assert r.device.startswith("cuda") and r.tflops > 1.0
        assert r.rel_error < bounds[dtype] and not r.has_nan
    assert len({r.checksum for r in results}) == 1
