"""The lifecycle benchmarks run at tiny sizes and report every figure they promise.
Correctness only: no figure is compared with a time."""

from __future__ import annotations

import math
import os

import pytest

from benchmarks import lifecycle


def _finite(value: float) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


def test_backup_benchmark_reports_ratios() -> None:
    result = lifecycle.bench_backup(2)
    for key in ("backup_mibps", "incremental_mibps", "tar_mibps", "restore_mibps",
                "ratio_backup", "ratio_incremental", "ratio_restore"):  # fmt: skip
        assert _finite(result[key]), key
    assert "| restore |" in lifecycle.markdown({"backup": result})


@pytest.mark.docker
def test_io_benchmark_reports_ratios(base_image: str) -> None:
    if os.geteuid() != 0:
        message = "loop devices need root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    result = lifecycle.bench_io(2, base_image)
    for mode in ("seq-write", "seq-read", "rand-write", "rand-read"):
        assert _finite(result[mode]["ratio"]), mode
    assert result["kernel_xts_aes"] != "unknown"
