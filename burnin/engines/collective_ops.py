"""The collectives a worker runs: buffers, the call, and the exact expected result.

Every rank fills its input from :func:`pattern`: small integers (-48..48) that
depend on the rank and the element index, so sums over thousands of ranks stay
exact in fp32 and any misplaced, dropped or corrupted element is caught by an
exact comparison. Outputs are poisoned with NaN before the checked call, so an
element never written counts as wrong too. ``wrong`` counts mismatching
elements on this rank, like nccl-tests' ``#wrong``.

Sizes follow nccl-tests: ``size_bytes`` is the whole buffer (all_gather: the
gathered output; reduce_scatter: the input; alltoall: either), and counts are
rounded down to a multiple of the ranks where the op splits the buffer.
torch.distributed has no out-of-place all_reduce, broadcast or reduce, so those
run in place (one sample per size).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: The collectives the torch engine runs (nccl-tests names).
OPS = ("all_reduce", "all_gather", "reduce_scatter", "alltoall", "broadcast", "reduce")
REDOP = {"all_reduce": "sum", "reduce_scatter": "sum", "reduce": "sum"}
ROOT = 0
ROOTED = ("broadcast", "reduce")
SPLIT = ("all_gather", "reduce_scatter", "alltoall")
DTYPE = "float"
ELEMENT_BYTES = 4
#: Elements compared per step when checking, to bound the memory the check needs.
CHECK_CHUNK = 1 << 22


def element_count(op: str, size_bytes: int, ranks: int) -> int:
    """Elements in the nccl-tests-sized buffer of ``op`` for ``size_bytes``."""
    count = max(1, size_bytes // ELEMENT_BYTES)
    if op in SPLIT:
        count = max(ranks, count // ranks * ranks)
    return count


def pattern(torch: Any, rank: int, start: int, length: int, device: Any) -> Any:
    """The deterministic input of ``rank`` at elements ``start .. start+length``."""
    idx = torch.arange(start, start + length, dtype=torch.int64, device=device)
    return ((idx * 7 + (rank + 1) * 31) % 97 - 48).to(torch.float32)


def fill_pattern(torch: Any, buf: Any, rank: int, offset: int = 0) -> None:
    """Write ``pattern(rank, offset ..)`` into ``buf`` chunk by chunk (bounded temporaries)."""
    flat = buf.reshape(-1)
    for start in range(0, flat.numel(), CHECK_CHUNK):
        length = min(CHECK_CHUNK, flat.numel() - start)
        flat[start : start + length].copy_(pattern(torch, rank, offset + start, length, buf.device))


def _sum_pattern(torch: Any, ranks: int, start: int, length: int, device: Any) -> Any:
    total = pattern(torch, 0, start, length, device)
    for q in range(1, ranks):
        total += pattern(torch, q, start, length, device)
    return total


@dataclass
class OpBuffers:
    """One rank's buffers for one op and size, with the call and its checker."""

    op: str
    count: int
    fill: Callable[[], None]  # (re)write inputs, poison outputs
    call: Callable[[], None]  # the collective, once
    checked: Any  # the tensor holding this rank's result (None: nothing to check)
    expected: Callable[[int, int], Any]  # (start, length) -> expected chunk of `checked`

    def count_wrong(self, torch: Any) -> int:
        """Elements of ``checked`` that differ from the expected result (NaN counts)."""
        if self.checked is None:
            return 0
        flat = self.checked.reshape(-1)
        wrong = 0
        for start in range(0, flat.numel(), CHECK_CHUNK):
            length = min(CHECK_CHUNK, flat.numel() - start)
            got = flat[start : start + length]
            wrong += int((got != self.expected(start, length)).sum())
        return wrong


def make_buffers(
    torch: Any, dist: Any, op: str, size_bytes: int, rank: int, ranks: int, device: Any
) -> OpBuffers:
    """Allocate this rank's buffers for ``op`` at ``size_bytes``."""
    count = element_count(op, size_bytes, ranks)
    if op in ("all_reduce", "reduce"):
        return _reducing(torch, dist, op, count, rank, ranks, device)
    if op == "broadcast":
        return _broadcast(torch, dist, count, rank, device)
    if op in SPLIT:
        return _split(torch, dist, op, count, rank, ranks, device)
    raise ValueError(f"unknown collective {op!r}")


def _reducing(
    torch: Any, dist: Any, op: str, count: int, rank: int, ranks: int, device: Any
) -> OpBuffers:
    buf = torch.empty(count, dtype=torch.float32, device=device)

    def fill() -> None:
        fill_pattern(torch, buf, rank)

    def call() -> None:
        if op == "all_reduce":
            dist.all_reduce(buf)
        else:
            dist.reduce(buf, dst=ROOT)

    # reduce: only the root's buffer holds a result (nccl-tests checks the root alone).
    checked = buf if op == "all_reduce" or rank == ROOT else None
    return OpBuffers(
        op, count, fill, call, checked, lambda s, n: _sum_pattern(torch, ranks, s, n, device)
    )


def _broadcast(torch: Any, dist: Any, count: int, rank: int, device: Any) -> OpBuffers:
    buf = torch.empty(count, dtype=torch.float32, device=device)

    def fill() -> None:
        if rank == ROOT:
            fill_pattern(torch, buf, ROOT)
        else:
            buf.fill_(float("nan"))

    def call() -> None:
        dist.broadcast(buf, src=ROOT)

    return OpBuffers(
        "broadcast", count, fill, call, buf, lambda s, n: pattern(torch, ROOT, s, n, device)
    )


def _split(
    torch: Any, dist: Any, op: str, count: int, rank: int, ranks: int, device: Any
) -> OpBuffers:
    chunk = count // ranks
    inp = torch.empty(chunk if op == "all_gather" else count, dtype=torch.float32, device=device)
    out = torch.empty(
        chunk if op == "reduce_scatter" else count, dtype=torch.float32, device=device
    )
    # torch 2.13 renamed the tensor forms; older torch has only the *_tensor names.
    gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    scatter = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor

    def fill() -> None:
        fill_pattern(torch, inp, rank)
        out.fill_(float("nan"))

    def call() -> None:
        if op == "all_gather":
            gather(out, inp)
        elif op == "reduce_scatter":
            scatter(out, inp)
        else:
            dist.all_to_all_single(out, inp)

    def expected(s: int, n: int) -> Any:
        if op == "reduce_scatter":  # this rank's chunk of the sum
            return _sum_pattern(torch, ranks, rank * chunk + s, n, device)
        if op == "all_gather":  # block j is rank j's input
            return _blockwise(torch, s, n, chunk, lambda j, o, ln: pattern(torch, j, o, ln, device))
        # alltoall: block j is rank j's block for this rank
        return _blockwise(
            torch, s, n, chunk, lambda j, o, ln: pattern(torch, j, rank * chunk + o, ln, device)
        )

    return OpBuffers(op, count, fill, call, out, expected)


def _blockwise(
    torch: Any, start: int, length: int, chunk: int, block: Callable[[int, int, int], Any]
) -> Any:
    """Expected values of elements ``start..start+length`` of an output made of
    per-rank blocks of ``chunk`` elements; ``block(j, offset, length)`` gives rank j's."""
    parts = []
    pos, end = start, start + length
    while pos < end:
        j, off = divmod(pos, chunk)
        ln = min(chunk - off, end - pos)
        parts.append(block(j, off, ln))
        pos += ln
    return torch.cat(parts)
