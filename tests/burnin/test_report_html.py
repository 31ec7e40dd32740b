"""The HTML burn-in report: one self-contained file, units, no None, a per-GPU grid,
actions and run parameters; rendered by a real headless Chromium without console errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.burnin.test_burnin_run import DEMO, dcops

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    pytest.importorskip("matplotlib")
    tmp = tmp_path_factory.mktemp("html")
    out = tmp / "report"
    proc = dcops(
        tmp,
        "burnin",
        "run",
        "--sim",
        str(DEMO),
        "--probe-timeout",
        "0.2",
        "--apply",
        "--report",
        str(out),
        "--json",
    )
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    path = Path(report["report_file"])
    assert [p.name for p in out.iterdir()] == [path.name]  # one file, nothing beside it
    return report, path.read_text(encoding="utf-8")


def test_self_contained_no_none_units(run: tuple[dict[str, Any], str]) -> None:
    _, page = run
    words = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert "None" not in words and not re.search(r"\bnan\b", words, re.IGNORECASE)
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<script" not in page
    assert "TFLOPS" in page and "GB/s" in page and "°C" in page
    # a finding's value carries its unit: t14's slow GPU
    assert re.search(r"<td>1,7\d\d\.\d TFLOPS</td>", page), "TFLOPS value with unit"
    # node names never break inside a cell
    assert '<span class="node">sim-r01-t05</span>' in page and ".node{white-space:nowrap}" in page


def test_gpu_grid_72_cells_per_rack_colour_by_status(run: tuple[dict[str, Any], str]) -> None:
    _, page = run
    racks = page.split('<div class="rack">')[1:]
    assert len(racks) == 2
    for rack in racks:
        assert len(re.findall(r'<span class="gpu ', rack.split("</section>")[0])) == 72
        assert "72 GPUs" in rack
    # the SDC GPU (t09 GPU 0) and the fallen-off GPU are red cells, the hung node's GPUs unknown
    assert re.search(r'class="gpu fail" title="sim-r01-t09 GPU 0: fail', page)
    assert re.search(r'class="gpu fail" title="sim-r02-t03 GPU 1: fail', page)
    assert len(re.findall(r'class="gpu unknown" title="sim-r02-t18 GPU', page)) == 4
    assert re.search(r'title="sim-r01-t05 GPU 0: pass, 2,\d{3}\.\d TFLOPS"', page)


def test_legend_actions_parameters(run: tuple[dict[str, Any], str]) -> None:
    report, page = run
    assert "Outline: the tray" in page and "border:3px solid #cf222e" in page
    actions = page.split("<h2>Actions</h2>")[1].split("<h2>Run parameters</h2>")[0]
    assert "<h3>Planned</h3>" in actions and "<h3>Done</h3>" in actions
    assert "<h3>Refused or failed</h3>" in actions
    done = actions.split("<h3>Done</h3>")[1].split("<h3>")[0]
    drained = [a["nodes"] for a in report["actions"] if a["outcome"] == "ok"]
    assert drained and all(n in done for n in drained)
    params = page.split("<h2>Run parameters</h2>")[1]
    for text in ("bf16", "GEMM rounds", "60 s", "sim", "4 GiB · 8 GiB · 16 GiB", "GPU-s"):
        assert text in params, text
    assert "{" not in params  # nested parameters (GPU-time by phase) are not Python reprs
    # localization: its cost in stages, tests and GPU-seconds; never all-pairs arithmetic
    loc = page.split("<h2>Localization</h2>")[1].split("<h2>")[0]
    assert re.search(r"sim-r02-t11</span> \(domain r02\): [1-4] stages, \d+ collective tests", loc)
    assert "GPU-s" in loc and "all-pairs" not in page


CONSOLE_ERROR = re.compile(r"CONSOLE.*(Uncaught|Failed to load|Error|Refused)", re.IGNORECASE)


def _chromium(page: Path, shot: Path) -> str:
    assert CHROMIUM is not None
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={shot.parent / 'profile'}",
            "--window-size=1400,1800",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_renders_in_headless_chromium_without_console_errors(
    run: tuple[dict[str, Any], str], tmp_path: Path
) -> None:
    from PIL import Image

    _, page = run
    html_file = tmp_path / "report.html"
    html_file.write_text(page, encoding="utf-8")
    shot = tmp_path / "shot.png"
    log = _chromium(html_file, shot)
    assert not CONSOLE_ERROR.search(log), log[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1400, 1800)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 50  # text, cells, heatmaps: not blank
        # the red of failing GPU cells is on screen
        assert any(rgb == (0xCF, 0x22, 0x2E) for _, rgb in colours)
    # The check would catch errors: a page with a missing image and a script error.
    broken = tmp_path / "broken.html"
    broken.write_text('<img src="missing.png"><script>undefined_function()</script>')
    assert CONSOLE_ERROR.search(_chromium(broken, tmp_path / "broken.png"))
