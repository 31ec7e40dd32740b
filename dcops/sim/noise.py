"""Seeded, order-independent measurement noise.

Every random number the simulator draws is a pure function of
``(seed, stream, key, counter, lane)``:

- ``stream`` names the measurement kind (probe reading, GEMM, collective...);
- ``key`` is what is measured: a GPU's global index, or a hash of a collective's
  member set;
- ``counter`` is how many times that key has been measured in that stream
  before (its own call counter, so measuring node A then B, or B then A, or
  only B, gives B the same numbers);
- ``lane`` picks one of the values of one measurement (power, temperature...).

The function is a counter-based generator (the idea behind numpy's ``Philox``
and Random123): SplitMix64's finaliser chained over the five words, vectorised
over numpy ``uint64`` arrays. Creating one ``numpy.random.Generator`` per
(GPU, kind, call) would give the same property but costs ~10 µs a stream and
cannot be vectorised across 7,200 GPUs; hashing gives every GPU of a 100-rack
fleet its numbers in one array expression. Normals come from two uniforms by
Box-Muller.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from enum import IntEnum

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MASK64 = (1 << 64) - 1


class Stream(IntEnum):
    """Measurement kinds: each draws from its own streams."""

    STATIC = 1  # per-GPU facts fixed for the fleet's life (uptime at start...)
    PROBE = 2
    GEMM = 3
    COLLECTIVE = 4
    RUNNER = 5


def _mix(x: U64) -> U64:
    """SplitMix64 finaliser (Steele, Lea, Flood 2014), elementwise; wraps modulo 2**64."""
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def _words(seed: int, stream: int, keys: U64, counters: U64, lanes: int) -> U64:
    head = _mix(np.array([seed & _MASK64], dtype=np.uint64))
    head = _mix(head ^ np.uint64(stream))
    h = _mix(head ^ keys)
    h = _mix(h ^ counters)
    lane = np.arange(lanes, dtype=np.uint64)
    return _mix(h[:, None] ^ _mix(lane)[None, :])


def uniforms(seed: int, stream: int, keys: U64, counters: U64, lanes: int) -> F64:
    """Uniform draws in the open interval (0, 1), shape ``(len(keys), lanes)``."""
    bits = _words(seed, stream, keys, counters, lanes) >> np.uint64(11)
    return (bits.astype(np.float64) + 0.5) * (1.0 / (1 << 53))


def normals(seed: int, stream: int, keys: U64, counters: U64, lanes: int) -> F64:
    """Standard normal draws, shape ``(len(keys), lanes)``."""
    u = uniforms(seed, stream, keys, counters, 2 * lanes)
    radius = np.sqrt(-2.0 * np.log(u[:, :lanes]))
    result: F64 = radius * np.cos(2.0 * np.pi * u[:, lanes:])
    return result


def group_key(members: Sequence[int], salt: str) -> int:
    """A 64-bit key for a set of GPUs (order-free) and a salt such as the collective's name."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(salt.encode())
    digest.update(np.sort(np.asarray(members, dtype=np.int64)).tobytes())
    return int.from_bytes(digest.digest(), "little")


class CallCounters:
    """Per-(stream, key) call counters; ``take`` returns the current counts and bumps them."""

    def __init__(self, gpus: int) -> None:
        self._gpus = gpus
        self._lock = threading.Lock()
        self._per_gpu: dict[int, U64] = {}
        self._per_key: dict[tuple[int, int], int] = {}

    def take(self, stream: int, gpu_indexes: npt.NDArray[np.int64]) -> U64:
        with self._lock:
            table = self._per_gpu.get(stream)
            if table is None:
                table = self._per_gpu[stream] = np.zeros(self._gpus, dtype=np.uint64)
            current = table[gpu_indexes].copy()
            np.add.at(table, gpu_indexes, np.uint64(1))
        return current

    def take_key(self, stream: int, key: int) -> int:
        with self._lock:
            current = self._per_key.get((stream, key), 0)
            self._per_key[(stream, key)] = current + 1
        return current
