"""The opt-in pytorch-cuda image: its definition, its wheels, its build step.

CI never builds it (6.6 GB from 2.9 GB of local wheels). Its definition is checked
here on every run; the build itself runs when CLEANROOM_TEST_CUDA_BUILD=1 asks for it,
and a missing torch wheel is then a skip that says so, never a silent pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
from cleanroom.images import build as images
from cleanroom.images import wheels
from cleanroom.workspace import quotas

CUDA = "pytorch-cuda"
FOLDER = images.repo_root() / "images" / CUDA
TORCH_WHEEL = "torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl"


def _fake_wheel(path: Path, body: bytes = b"x = 1\n") -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pkg/__init__.py", body)
    return path


def test_cuda_image_is_known_but_built_only_when_named() -> None:
    assert CUDA in images.IMAGE_NAMES
    assert images.PARENTS[CUDA] == "notebook"
    assert CUDA in images.OPT_IN_IMAGES
    assert CUDA not in images.DEFAULT_IMAGES
    assert set(images.DEFAULT_IMAGES) == {"base", "notebook", "pytorch"}
    assert images._with_parents(images.DEFAULT_IMAGES) == ["base", "notebook", "pytorch"]
    assert images._with_parents([CUDA]) == ["base", "notebook", CUDA]


def test_cuda_requirements_are_pinned_to_the_cuda_build() -> None:
    pins = dict(wheels.pinned_requirements((FOLDER / "requirements.txt").read_text()))
    # No local version: 2.14.1 is the CUDA build; "+cpu" would be the CPU one.
    assert pins["torch"] == "2.14.1"
    assert pins["torchvision"] == "0.29.1"
    assert "safetensors" in pins
    assert any(name.startswith("nvidia-") for name in pins)
    notebook = {}
    for line in (FOLDER.parent / "notebook" / "requirements.txt").read_text().splitlines():
        name, sep, version = line.split("#", 1)[0].strip().partition("==")
        if sep:
            notebook[name] = version
    clash = {n: (v, notebook[n]) for n, v in pins.items() if n in notebook and notebook[n] != v}
    assert clash == {}, "pins that differ from the notebook image's lock"


def test_unpinned_requirement_is_refused() -> None:
    with pytest.raises(ValueError, match=r"line 2: 'torch>=2' is not pinned"):
        wheels.pinned_requirements("safetensors==0.8.0\ntorch>=2\n")


def test_cuda_image_config_labels_the_accelerator_and_leaves_devices_to_the_tier() -> None:
    lines = [
        line.strip()
        for line in (FOLDER / "image.config").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert f"LABEL {quotas.ACCELERATOR_LABEL}=cuda" in lines
    assert "ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility" in lines
    # Which GPUs a workspace gets is the tier's device request, never the image's.
    assert not any("NVIDIA_VISIBLE_DEVICES" in line for line in lines)
    assert "USER 1000:1000" in lines
    assert 'CMD ["jupyterhub-singleuser"]' in lines
    script = (FOLDER / "install.sh").read_text()
    assert '--find-links "$BUILD/wheels"' in script
    assert "torch.version.cuda" in script
    assert script.rstrip().endswith("/opt/cleanroom/verify_image.py")


def test_missing_torch_wheel_is_recorded_in_the_plan(tmp_path: Path) -> None:
    plan = images._Planner(images.repo_root(), lambda _l: None, tmp_path).plan(CUDA)
    assert plan.missing == ["torch==2.14.1"]
    assert plan.hashed["looked_in"] == str(tmp_path)
    # The hash still exists (tests and listings ask for it), and is not the found one's.
    _fake_wheel(tmp_path / TORCH_WHEEL)
    found = images._Planner(images.repo_root(), lambda _l: None, tmp_path).plan(CUDA)
    assert found.missing == []
    assert found.files[f"wheels/{TORCH_WHEEL}"] == tmp_path / TORCH_WHEEL
    assert found.inputs_hash != plan.inputs_hash


def test_torch_wheel_bytes_count_in_the_hash(tmp_path: Path) -> None:
    _fake_wheel(tmp_path / TORCH_WHEEL, b"x = 1\n")
    first = images.inputs_hash(CUDA, wheel_dir=tmp_path)
    _fake_wheel(tmp_path / TORCH_WHEEL, b"x = 2\n")
    images._FILE_DIGESTS.clear()
    assert images.inputs_hash(CUDA, wheel_dir=tmp_path) != first


@pytest.mark.docker
def test_build_without_the_torch_wheel_refuses_before_building(tmp_path: Path) -> None:
    lines: list[str] = []
    with pytest.raises(images.WheelMissing) as refused:
        images.build_images((CUDA,), wheel_dir=tmp_path, progress=lines.append)
    message = str(refused.value)
    assert "torch==2.14.1" in message and str(tmp_path) in message
    assert "--wheel-dir" in message and "nothing was built" in message
    assert not any("building" in line for line in lines), lines
    assert images.main(["build", CUDA, "--wheel-dir", str(tmp_path)]) == 1


def test_find_wheel_matches_version_and_the_images_python(tmp_path: Path) -> None:
    for name in (
        "torch-2.14.1+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
        "torch-2.14.1-cp312-cp312-manylinux_2_28_x86_64.whl",
        "torch-2.14.1-cp311-cp311-macosx_11_0_arm64.whl",
    ):
        _fake_wheel(tmp_path / name)
    sources = wheels.local_sources(tmp_path)
    assert wheels.find_wheel("torch", "2.14.1", sources) is None
    _fake_wheel(tmp_path / TORCH_WHEEL)
    found = wheels.find_wheel("torch", "2.14.1", sources)
    assert found is not None and found.path.name == TORCH_WHEEL and found.sha256 is None
    cpu = wheels.find_wheel("torch", "2.14.1+cpu", sources)
    assert cpu is not None and "+cpu" in cpu.path.name


def test_find_wheel_reads_a_local_simple_index(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    _fake_wheel(files / "nvidia_nvtx-13.0.85-py3-none-manylinux1_x86_64.whl")
    page = tmp_path / "simple" / "nvidia-nvtx"
    page.mkdir(parents=True)
    (page / "index.html").write_text(
        '<html><body><a href="../../files/nvidia_nvtx-13.0.85-py3-none-manylinux1_x86_64.whl'
        '#sha256=abc123">nvidia_nvtx</a></body></html>'
    )
    sources = [wheels.Source("index", (tmp_path / "simple").as_uri() + "/")]
    found = wheels.find_wheel("nvidia_nvtx", "13.0.85", sources)
    assert found is not None
    assert found.path == files / "nvidia_nvtx-13.0.85-py3-none-manylinux1_x86_64.whl"
    assert found.sha256 == "abc123"
    assert wheels.find_wheel("nvidia-nvtx", "13.0.86", sources) is None


@pytest.mark.docker
@pytest.mark.skipif(
    os.environ.get("CLEANROOM_TEST_CUDA_BUILD") != "1",
    reason="the pytorch-cuda image (6.6 GB) is built only when asked: CLEANROOM_TEST_CUDA_BUILD=1",
)
def test_cuda_image_builds_and_reports_its_cuda_build() -> None:
    try:
        built = images.build_images((CUDA,), progress=lambda line: print(line, flush=True))
    except images.WheelMissing as exc:
        pytest.skip(f"asked to build pytorch-cuda, but: {exc}")
    tag = built[-1].tag
    labels = json.loads(
        subprocess.run(
            ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", tag],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert quotas.can_image_use_gpu(labels)
    done = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            "--user",
            "1000:1000",
            tag,
            "python",
            "-c",
            "import torch, safetensors; print(torch.__version__, torch.version.cuda)",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    version, cuda = done.stdout.split()
    # The wheel's own version carries its CUDA build: 2.14.1+cu130.
    assert version.startswith("2.14.1+cu") and cuda.startswith("13.")
