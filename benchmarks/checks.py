"""Disclosure-check throughput, measured by the checks' own ``bench_checks.py``.

That benchmark belongs to the checks library; this module runs it (in its own process,
as it is meant to run) at the chosen size and reads back the JSON it writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "bench_checks.py"
RESULTS = HERE / "results"


def run(rows: int, repeat: int = 1) -> dict[str, Any]:
    """Check a ``rows``-row table against a ``rows``-row source; rows per second added."""
    if not SCRIPT.exists():
        return {"missing": "benchmarks/bench_checks.py is not there"}
    began = time.time()
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--rows", str(rows),
        "--source-rows", str(rows),
        "--small-source-rows", str(max(1_000, rows // 10)),
        "--repeat", str(repeat),
        "--work", str(RESULTS / "cache-benchmarks"),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"missing": f"bench_checks.py failed: {done.stderr.strip()[-500:]}"}
    written = [p for p in RESULTS.glob("bench_checks-*.json") if p.stat().st_mtime >= began - 1]
    if not written:
        return {"missing": "bench_checks.py wrote no result file"}
    result: dict[str, Any] = json.loads(max(written, key=lambda p: p.stat().st_mtime).read_text())
    for entry in (result.get("formats") or {}).values():
        seconds = entry.get("check_seconds") or 0
        entry["rows_per_second"] = rows / seconds if seconds else None
    return result
