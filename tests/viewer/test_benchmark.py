"""The viewer's benchmark runs end to end at a tiny size and reports every figure.

Correctness only: no figure is compared with a time (benchmarks report, never fail)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.viewer import main

pytestmark = pytest.mark.docker


def test_the_viewer_benchmark_reports_every_figure(
    workspace_images: list[str], viewer_image: str, tmp_path: Path
) -> None:
    out = tmp_path / "viewer.json"
    assert main(["--sessions", "1", "--seconds", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    (row,) = result["sessions"]
    assert row["lab_ready_s"] > 0 and row["viewer_start_s"] > 0
    assert row["memory_mib"] > 50  # Chromium with JupyterLab on screen
    assert row["idle_bytes_per_min"] >= 0 and row["active_bytes_per_min"] > 0
    assert set(result["ratios"]) == {"viewer_start_over_lab_start", "active_over_idle_bytes"}
