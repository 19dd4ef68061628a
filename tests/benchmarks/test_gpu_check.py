"""The device check stays in step with the demo notebook and the CUDA image (no GPU here)."""

from __future__ import annotations

import shutil

import pytest

from benchmarks import gpu_check


def test_the_check_runs_the_notebooks_code_with_the_cuda_images_torch() -> None:
    code = gpu_check._code_cells()
    compile(code, "train-press-line", "exec")
    for setting in ("DEMO_DEVICE", "DEMO_STEPS", "DEMO_SKIP_RELEASE", "started_at"):
        assert setting in code
    pins = gpu_check._pins(gpu_check.CUDA_REQUIREMENTS)
    assert "torch==2.14.1" in pins and any(p.startswith("safetensors==") for p in pins)
    libraries = {
        p.split("==")[0]
        for p in gpu_check._pins(gpu_check.NOTEBOOK_LOCK, gpu_check.FROM_NOTEBOOK_LOCK)
    }
    assert {"numpy", "pandas", "pyarrow", "scikit-learn"} <= libraries


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a GPU")
def test_without_a_gpu_the_check_says_so() -> None:
    with pytest.raises(SystemExit, match="no GPU visible"):
        gpu_check._gpu_facts()
