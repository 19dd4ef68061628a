"""The gpu tier's image rule: a GPU goes only to an image that can use it."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import docker
import pytest
from cleanroom.errors import Forbidden, NotFound
from cleanroom.images.build import ensure_images
from cleanroom.workspace import quotas
from cleanroom.workspace.spawner import check_image_for_tier

CUDA_LABELS = {quotas.ACCELERATOR_LABEL: "cuda", "cleanroom.image": "pytorch-cuda"}
CPU_LABELS = {"cleanroom.image": "pytorch"}


def test_gpu_tier_refuses_an_image_without_the_accelerator_label() -> None:
    gpu = quotas.load_tiers()["gpu"]
    assert gpu.gpus == 1
    for labels in (CPU_LABELS, {}, None, {quotas.ACCELERATOR_LABEL: "rocm"}):
        assert not quotas.can_image_fit_tier(gpu, labels)
        with pytest.raises(Forbidden) as refused:
            quotas.check_image_fits_tier(gpu, "pytorch", labels)
        message = str(refused.value)
        assert "'gpu'" in message and "'pytorch'" in message
        assert "pytorch-cuda" in message and "cleanroom images build pytorch-cuda" in message


def test_gpu_tier_accepts_a_cuda_image() -> None:
    gpu = quotas.load_tiers()["gpu"]
    assert quotas.can_image_use_gpu(CUDA_LABELS)
    assert quotas.can_image_use_gpu({quotas.ACCELERATOR_LABEL: " CUDA "})
    quotas.check_image_fits_tier(gpu, "pytorch-cuda", CUDA_LABELS)


def test_tiers_without_gpus_take_any_image() -> None:
    for name, tier in quotas.load_tiers().items():
        if tier.gpus:
            continue
        for labels in (CPU_LABELS, CUDA_LABELS, None):
            assert quotas.can_image_fit_tier(tier, labels), name
            quotas.check_image_fits_tier(tier, "notebook", labels)


@pytest.fixture(scope="module")
def labelled_images() -> Iterator[dict[str, str]]:
    """The base image, and a copy of it labelled as able to use a GPU (same layers)."""
    base = ensure_images(("base",), progress=lambda _line: None)["base"]
    container = f"cleanroom-gpu-label-{uuid.uuid4().hex[:8]}"
    cuda = f"{base.rsplit(':', 1)[0]}-gpu-label-test:{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "create", "--name", container, base], check=True, capture_output=True)
    try:
        subprocess.run(
            [
                "docker",
                "commit",
                "--change",
                f"LABEL {quotas.ACCELERATOR_LABEL}=cuda",
                container,
                cuda,
            ],
            check=True,
            capture_output=True,
        )
    finally:
        subprocess.run(["docker", "rm", container], check=False, capture_output=True)
    try:
        yield {"cpu": base, "cuda": cuda}
    finally:
        subprocess.run(["docker", "rmi", cuda], check=False, capture_output=True)


@pytest.mark.docker
def test_spawner_reads_the_rule_from_the_image_labels(labelled_images: dict[str, str]) -> None:
    tiers = quotas.load_tiers()
    engine = docker.from_env()
    with pytest.raises(Forbidden, match="image 'pytorch' cannot use a GPU"):
        check_image_for_tier(engine, labelled_images["cpu"], "pytorch", tiers["gpu"])
    check_image_for_tier(engine, labelled_images["cpu"], "pytorch", tiers["standard"])
    check_image_for_tier(engine, labelled_images["cuda"], "pytorch-cuda", tiers["gpu"])
    missing = f"{labelled_images['cpu']}-not-built-{uuid.uuid4().hex[:6]}"
    with pytest.raises(NotFound, match="is not built on this host"):
        check_image_for_tier(engine, missing, "gone", tiers["gpu"])
    # Tiers without GPUs never ask the engine: a missing image is the engine's to report.
    check_image_for_tier(engine, missing, "gone", tiers["standard"])
