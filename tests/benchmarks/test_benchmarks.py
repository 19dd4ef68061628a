"""The benchmarks run end to end at tiny sizes and write what they promise.

Correctness only: every spawn succeeds and every table is there. No number is compared
with a time; benchmarks report, they never fail on a slow machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from benchmarks import report
from benchmarks.__main__ import main
from benchmarks.stats import percentile, summary
from tests.ci import skip_or_fail


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    assert summary([])["n"] == 0


def test_report_replaces_only_the_marked_block(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    report.write(doc, "first tables\n")
    text = doc.read_text()
    assert report.START in text and "first tables" in text
    doc.write_text("# Notes above\n\n" + text + "\n## Notes below\n")
    report.write(doc, "second tables\n")
    text = doc.read_text()
    assert "second tables" in text and "first tables" not in text
    assert text.startswith("# Notes above") and text.rstrip().endswith("## Notes below")


def test_the_kubernetes_block_is_written_beside_the_docker_tables(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Notes\n")
    report.write(doc, "docker tables\n")
    report.write(doc, "k8s tables\n", report.K8S_START, report.K8S_END)
    report.write(doc, "new docker tables\n")
    text = doc.read_text()
    assert text.startswith("# Notes")
    assert "k8s tables" in text and "new docker tables" in text
    assert "-->\ndocker tables" not in text


def test_kubernetes_phases_and_spawner_steps_are_read_from_a_hub_log() -> None:
    from benchmarks.k8s_spawns import _CREATE_POD, step_times
    from benchmarks.phases import spawn_phases

    log = "\n".join(
        [
            "[I 2026-12-02 13:00:43.700 JupyterHub provider:661] Creating oauth client "
            "jupyterhub-user-kc1-bench-kc1",
            "[I 2026-12-02 13:00:44.100 JupyterHub spawner:3001] Attempting to create pod "
            "jupyter-kc1--bench-kc1, with timeout 3",
            "[I 2026-12-02 13:00:46.100 JupyterHub log:192] 200 POST "
            "/hub/api/users/kc1/activity (kc1@10.77.0.2) 30.26ms",
            "[I 2026-12-02 13:00:46.200 JupyterHub spawner:264] Workspace kc1/bench-kc1 start "
            'steps: {"registry": 0.05, "pod": 1.5, "gateway": 0.4}',
            "[I 2026-12-02 13:00:46.300 JupyterHub base:1143] User kc1:bench-kc1 took 2.6 "
            "seconds to start",
        ]
    )
    found = spawn_phases(log, start=_CREATE_POD)
    assert [round(v, 3) for v in found[0].values()] == [0.4, 2.0, 0.2]
    assert step_times(log) == [{"registry": 0.05, "pod": 1.5, "gateway": 0.4}]


def _require_root() -> None:
    if os.geteuid() != 0:
        skip_or_fail("the cleanroom hub installs firewall rules and needs root")


@pytest.mark.docker
def test_every_part_runs_at_tiny_sizes(tmp_path: Path) -> None:
    _require_root()
    out = tmp_path / "result.json"
    args = [
        # The Kubernetes part has its own test cluster (tests/k8s/test_k8s_benchmark.py runs it).
        "--parts", "spawn,memory,concurrency,gateway,airlock,library,checks",
        "--spawns", "1",
        "--concurrency", "2",
        "--idle-seconds", "1",
        "--airlock-requests", "20",
        "--airlock-sizes-mb", "1",
        "--page-loads", "1",
        "--gateway-loads", "1",
        "--gateway-workspaces", "2",
        "--gateway-active-seconds", "3",
        "--check-rows", "2000",
        "--library-items", "30",
        "--no-docs",
        "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    result = json.loads(out.read_text())
    for part in ("spawn", "memory", "concurrency", "gateway", "airlock", "library", "checks"):
        assert "error" not in result[part], result[part]

    for phase in ("cold", "warm"):
        for kind in ("cleanroom", "plain"):
            found = result["spawn"][phase][kind]
            assert found["count"] == 1 and found["failures"] == 0, found["errors"]
    for kind in ("cleanroom", "plain"):
        assert result["memory"][kind]["workspace"]["used_mib"] > 0
        assert {"hub", "proxy"} <= result["memory"][kind]["processes"].keys()
        level = result["concurrency"]["2"][kind]
        assert level["count"] == 2 and level["failures"] == 0, level["errors"]
    gateway = result["gateway"]
    for kind in ("cleanroom", "plain"):
        for action in ("contents", "roundtrip", "page"):
            assert gateway[kind][action]["n"] == 1, (kind, action)
        assert gateway[kind]["throughput"]["p50"] > 0
    assert set(gateway["ratios"]) == {"contents", "roundtrip", "page", "throughput"}
    load = gateway["load"]
    assert load["workspaces_active"] == 2 and not load["errors"], load
    assert load["actions"] >= 4 and load["gateway_rss_peak_mib"] > 0
    assert result["airlock"]["submit"]["1"]["n"] > 0
    pages = result["airlock"]["pages"]
    assert pages["queue (first)"]["n"] == pages["queue (last)"]["n"] == 1
    # The queue's header counts the whole store; the page shows at most 50 of it.
    assert result["airlock"]["queue_total"] >= result["airlock"]["requests_in_store"]
    assert 0 < result["airlock"]["queue_rows"] <= 50
    assert "missing" not in result["checks"], result["checks"].get("missing")
    library = result["library"]["pages"]
    assert library["catalogue"]["store_ms"]["n"] == library["catalogue"]["baseline_ms"]["n"] == 1
    assert {"your datasets (provider)", "console: projects"} <= library.keys()
    tables = report.markdown(result)
    headings = ("Spawn latency", "Memory", "Concurrent spawns", "Airlock", "Data library", "checks")
    for heading in headings:
        assert heading in tables
