"""Per-SKU threshold profiles: packaged data, site overrides, located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from burnin.profiles import PROFILE_VERSION, known_profiles, load_thresholds
from dcops.errors import InputError, LocatedInputError, UnknownNameError
from dcops.skus import get_sku


def test_every_sku_has_a_valid_profile() -> None:
    assert set(known_profiles()) >= {"gb200-nvl72", "b200", "h100", "h200", "cpu"}
    for sku in known_profiles():
        th = load_thresholds(sku)
        assert th.version == PROFILE_VERSION
        assert th.gemm.rounds >= 1
        for floor in th.collectives.busbw_gbps.values():
            assert floor.fail <= floor.warn <= floor.expected
        for dtype, warn in th.gemm.floor_warn_tflops.items():
            assert th.gemm.floor_fail_tflops[dtype] <= warn


def test_gb200_seeds_match_the_facts() -> None:
    th = load_thresholds("gb200-nvl72")
    assert th.collectives.busbw_gbps["node"].fail == 432  # Azure tray check
    domain = th.collectives.busbw_gbps["domain"]
    assert 835 <= domain.expected <= 847  # CoreWeave one rack
    nominal = get_sku("gb200-nvl72").gpu.tflops["bf16"]
    assert th.gemm.floor_fail_tflops["bf16"] == pytest.approx(0.45 * nominal)
    assert th.sources == ("burnin/profiles/gb200-nvl72.yaml",)


def test_site_override_merges_deeply(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(
        "version: 1\n"
        "profiles:\n"
        "  gb200-nvl72:\n"
        "    collectives:\n"
        "      busbw_gbps:\n"
        "        domain: {warn: 820}\n"
        "    gemm: {rounds: 5}\n"
    )
    th = load_thresholds("gb200-nvl72", override=path)
    assert th.collectives.busbw_gbps["domain"].warn == 820
    assert th.collectives.busbw_gbps["domain"].fail == 745  # kept
    assert th.gemm.rounds == 5
    assert th.sources[-1] == str(path)
    # An override that names another SKU leaves this one alone.
    assert load_thresholds("h100", override=path).gemm.rounds == 3


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("version: 1\nprofiles:\n  h100:\n    gemm:\n      roundz: 5\n")
    with pytest.raises(LocatedInputError) as err:
        load_thresholds("h100", override=path)
    msg = str(err.value)
    assert str(path) in msg and ":5" in msg and "roundz" in msg and "unknown key" in msg


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("version: 2\nprofiles: {}\n", "version 2"),
        ("profiles: {}\n", "version None"),
        ("version: 1\nprofiles:\n  h100:\n    gemm: {rounds: many}\n", "expected int"),
        ("version: 1\nprofiles:\n  h100:\n    gemm: {rounds: -1}\n", "negative"),
        ("version: 1\nprofiles:\n  h100: {localize: 3}\n", "expected a mapping"),
        ("version: 1\nextra: 1\n", "unknown key"),
        ("version: 1\nprofiles: [\n", "invalid YAML"),
    ],
)
def test_bad_overrides_are_input_errors(text: str, needle: str) -> None:
    with pytest.raises(InputError) as err:
        load_thresholds("h100", override_text=text)
    assert needle in str(err.value)
    assert "<override>" in str(err.value)


def test_unknown_sku_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNameError) as err:
        load_thresholds("a100")
    assert "gb200-nvl72" in str(err.value)
    with pytest.raises(UnknownNameError):
        load_thresholds("h100", override_text="version: 1\nprofiles:\n  a100: {}\n")


def test_missing_override_file(tmp_path: Path) -> None:
    with pytest.raises(LocatedInputError, match="no such file"):
        load_thresholds("h100", override=tmp_path / "nope.yaml")
