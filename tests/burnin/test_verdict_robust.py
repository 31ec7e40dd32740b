"""Median / MAD outlier detection: properties and the detection-power arithmetic."""

from __future__ import annotations

import random

from hypothesis import assume, given
from hypothesis import strategies as st

from burnin.verdicts.robust import OutlierRule, low_outliers, spread

values = st.lists(st.floats(min_value=1.0, max_value=1e4, allow_nan=False), min_size=8, max_size=60)
RULE = OutlierRule(z_cut=3.5, min_deficit=0.03, min_peers=8)


@given(st.floats(min_value=1e-3, max_value=1e6), st.integers(min_value=1, max_value=80))
def test_equal_values_never_flag(value: float, n: int) -> None:
    assert low_outliers(dict.fromkeys(range(n), value), RULE) == {}


@given(values, st.floats(min_value=1e-3, max_value=1e3))
def test_scaling_all_values_keeps_the_verdicts(xs: list[float], c: float) -> None:
    base = set(low_outliers(dict(enumerate(xs)), RULE))
    scaled = set(low_outliers({i: x * c for i, x in enumerate(xs)}, RULE))
    # Borderline cases can flip by float rounding only; exclude them.
    ref = spread(xs)
    assume(all(abs((ref.median - x) / ref.median - RULE.min_deficit) > 1e-9 for x in xs))
    sigma = ref.sigma(RULE.min_scale_fraction)
    assume(all(abs((ref.median - x) / sigma - RULE.z_cut) > 1e-9 for x in xs))
    assert base == scaled


@given(values)
def test_only_values_below_the_median_flag(xs: list[float]) -> None:
    ref = spread(xs)
    for key, low in low_outliers(dict(enumerate(xs)), RULE).items():
        assert xs[key] < ref.median
        assert low.deficit >= RULE.min_deficit and low.z >= RULE.z_cut


@given(values)
def test_raising_a_value_never_makes_it_flag(xs: list[float]) -> None:
    flagged = low_outliers(dict(enumerate(xs)), RULE)
    top = max(range(len(xs)), key=lambda i: xs[i])
    assert top not in flagged


def test_too_few_peers_never_flag() -> None:
    assert low_outliers({0: 1.0, 1: 100.0, 2: 100.0}, RULE) == {}


def test_seeded_power_at_two_percent_noise_three_rounds() -> None:
    """The module docstring's arithmetic, on seeded draws: recall >= 95 %, FPR <= 0.5 %."""
    rng = random.Random(1)
    found = false_pos = healthy = slow = 0
    for _ in range(20):
        means = {}
        for gpu in range(144):
            factor = 0.93 if gpu < 4 else 1.0
            means[gpu] = sum(factor * (1 + 0.02 * rng.gauss(0, 1)) for _ in range(3)) / 3
        flagged = low_outliers(means, RULE)
        found += sum(1 for g in flagged if g < 4)
        false_pos += sum(1 for g in flagged if g >= 4)
        slow += 4
        healthy += 140
    assert found / slow >= 0.95
    assert false_pos / healthy <= 0.005
