"""The Kubernetes spawn benchmark runs end to end on the test cluster at tiny sizes.

Correctness only (as tests/benchmarks): every spawn of both hubs and both concurrent
starts succeed, and the tables are there. No figure is compared with a time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import report
from benchmarks.__main__ import main

pytestmark = pytest.mark.k8s


def test_the_kubernetes_spawn_benchmark_runs_at_tiny_sizes(
    cluster: Path, k8s_images: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "result.json"
    args = ["--parts", "k8s-spawn", "--k8s-spawns", "1", "--k8s-concurrency", "2",
            "--skip-build", "--no-docs", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    result = json.loads(out.read_text())
    k8s = result["k8s"]
    assert "error" not in k8s, k8s.get("error")
    for phase in ("cold", "warm"):
        for kind in ("cleanroom", "plain"):
            found = k8s["sequential"][phase][kind]
            assert found["count"] == 1 and found["failures"] == 0, found["errors"]
        steps = k8s["sequential"]["phases"][phase]["cleanroom"]["steps"]
        assert {"registry", "storage", "policies", "pod", "gateway"} <= steps.keys()
    burst = k8s["concurrent"]
    assert burst["count"] == 2 and burst["failures"] == 0, burst["errors"]
    tables = report.k8s_markdown(result)
    assert "Spawn latency on the cluster" in tables and "Concurrent spawns" in tables
