"""The build library: content hashes, labels, tags and skipped rebuilds."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from cleanroom.images import build as images
from cleanroom.settings import image_repository


def _inspect(tag: str) -> dict:
    out = subprocess.run(
        ["docker", "image", "inspect", tag], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)[0]


@pytest.fixture
def scratch_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of images/ in a scratch checkout, so inputs can be changed safely."""
    shutil.copytree(images.repo_root() / "images", tmp_path / "images")
    monkeypatch.setenv("CLEANROOM_ROOT", str(tmp_path))
    return tmp_path


def test_changed_input_changes_the_hash_of_the_image_and_its_children(scratch_root: Path) -> None:
    before = {name: images.inputs_hash(name) for name in images.IMAGE_NAMES}
    requirements = scratch_root / "images" / "notebook" / "requirements.txt"
    requirements.write_text(requirements.read_text() + "# a changed input\n")
    after = {name: images.inputs_hash(name) for name in images.IMAGE_NAMES}
    assert after["base"] == before["base"]
    assert after["notebook"] != before["notebook"]
    assert after["pytorch"] != before["pytorch"]


def test_base_change_reaches_every_image(scratch_root: Path) -> None:
    before = {name: images.inputs_hash(name) for name in images.IMAGE_NAMES}
    packages = scratch_root / "images" / "base" / "packages.txt"
    packages.write_text(packages.read_text() + "# another comment\n")
    after = {name: images.inputs_hash(name) for name in images.IMAGE_NAMES}
    assert all(after[name] != before[name] for name in images.IMAGE_NAMES)


def test_hash_is_stable(scratch_root: Path) -> None:
    assert images.inputs_hash("notebook") == images.inputs_hash("notebook")


def test_unknown_image_is_refused() -> None:
    with pytest.raises(images.UnknownImage, match="unknown image 'gpu'"):
        images.inputs_hash("gpu")
    assert images.main(["build", "gpu"]) == 1


def test_wheel_hash_ignores_zip_timestamps(tmp_path: Path) -> None:
    def wheel(path: Path, when: tuple[int, int, int, int, int, int], body: bytes) -> Path:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(zipfile.ZipInfo("pkg/__init__.py", when), body)
        return path

    first = wheel(tmp_path / "a.whl", (2020, 1, 1, 0, 0, 0), b"x = 1\n")
    second = wheel(tmp_path / "b.whl", (2024, 6, 1, 12, 0, 0), b"x = 1\n")
    changed = wheel(tmp_path / "c.whl", (2020, 1, 1, 0, 0, 0), b"x = 2\n")
    assert images._wheel_digest(first) == images._wheel_digest(second)
    assert images._wheel_digest(first) != images._wheel_digest(changed)


@pytest.mark.docker
def test_images_carry_their_labels_and_tags(workspace_images: dict[str, str]) -> None:
    for name, tag in workspace_images.items():
        labels = _inspect(tag)["Config"]["Labels"]
        assert labels["cleanroom.image"] == name
        assert tag == f"{image_repository()}/{name}:{labels['cleanroom.inputs-hash'][:12]}"
        assert len(labels["cleanroom.inputs-hash"]) == 64
    listed = {info.tag for info in images.list_images()}
    assert set(workspace_images.values()) <= listed


@pytest.mark.docker
def test_second_build_is_skipped_and_labels_hold_the_inputs_hash(
    workspace_images: dict[str, str],
) -> None:
    # Built twice here, not against the session fixture: others may edit the extension
    # (an input of the notebook image) while the suite runs.
    first = images.build_images(("notebook",), progress=lambda _line: None)
    lines: list[str] = []
    second = images.build_images(("notebook",), progress=lines.append)
    assert [image.name for image in second] == ["base", "notebook"]
    assert all(image.skipped for image in second)
    assert [image.tag for image in second] == [image.tag for image in first]
    assert any("build skipped" in line for line in lines)
    for image in second:
        assert image.inputs_hash == images.inputs_hash(image.name)
        config = _inspect(image.tag)
        assert config["Config"]["Labels"]["cleanroom.inputs-hash"] == image.inputs_hash
        assert config["Id"] == _inspect(f"{image_repository()}/{image.name}:latest")["Id"]


@pytest.mark.docker
def test_notebook_image_contract(workspace_images: dict[str, str]) -> None:
    config = _inspect(workspace_images["notebook"])["Config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    # Run plainly, the image runs as the researcher; the spawner starts it as root for
    # the entry point, which drops the server to uid 1001 (tests/images/test_wall.py).
    assert config["User"] == "1000:1000"
    assert config["Entrypoint"] == ["tini", "--", "/opt/cleanroom/bin/cleanroom-entrypoint"]
    assert config["Cmd"] == ["jupyterhub-singleuser"]
    assert "8888/tcp" in config["ExposedPorts"]
    assert env["PATH"].startswith("/opt/cleanroom/venv/bin:")
    assert env["JUPYTER_CONFIG_DIR"] == "/etc/cleanroom/jupyter"
    assert env["JUPYTER_PREFER_ENV_PATH"] == "1"
    lab_state = "/home/researcher/.local/share/cleanroom/lab/"
    assert env["JUPYTERLAB_SETTINGS_DIR"] == lab_state + "user-settings"
    assert env["JUPYTERLAB_WORKSPACES_DIR"] == lab_state + "workspaces"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_notebook_lock_holds_the_direct_requirements_and_the_hub_version() -> None:
    folder = images.repo_root() / "images" / "notebook"
    direct, locked = _pins(folder / "requirements.in"), _pins(folder / "requirements.txt")
    assert {name: locked.get(name) for name in direct} == direct
    pyproject = (images.repo_root() / "pyproject.toml").read_text()
    assert f'"jupyterhub=={locked["jupyterhub"]}"' in pyproject


WHEEL_SCRIPT = """#!/bin/sh
# Stand-in for the extension's build-wheel.sh: one wheel made from source.txt.
set -e
echo run >> "$(dirname "$0")/runs.log"
cd "$(dirname "$0")"
python3 -c "$MAKE_WHEEL" "$1/cleanroom_workspace-0.1.0-py3-none-any.whl" source.txt
"""
MAKE_WHEEL = (
    "import sys, zipfile; "
    "zipfile.ZipFile(sys.argv[1], 'w').writestr('ext/data.txt', open(sys.argv[2]).read())"
)


def test_extension_wheel_counts_in_the_hash(
    scratch_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAKE_WHEEL", MAKE_WHEEL)
    without = images.inputs_hash("notebook")
    extensions = scratch_root / "extensions"
    extensions.mkdir()
    (extensions / "build-wheel.sh").write_text(WHEEL_SCRIPT)
    (extensions / "source.txt").write_text("first")
    with_wheel = images.inputs_hash("notebook")
    assert with_wheel != without
    # The script runs every time (it caches on its own); the same wheel, the same hash.
    assert images.inputs_hash("notebook") == with_wheel
    assert (extensions / "runs.log").read_text() == "run\nrun\n"
    (extensions / "source.txt").write_text("second")
    assert images.inputs_hash("notebook") not in {with_wheel, without}


def test_extension_script_must_leave_one_wheel(scratch_root: Path) -> None:
    extensions = scratch_root / "extensions"
    extensions.mkdir()
    (extensions / "build-wheel.sh").write_text("#!/bin/sh\necho built nothing\n")
    with pytest.raises(images.ImageBuildFailed, match="exactly one wheel"):
        images.inputs_hash("notebook")


def test_missing_extension_script_warns(scratch_root: Path) -> None:
    lines: list[str] = []
    images._Planner(scratch_root, lines.append, None).plan("notebook")
    assert any("WARNING" in line and "build-wheel.sh" in line for line in lines)


def test_debootstrap_progress_shows_each_phase_once(tmp_path: Path) -> None:
    lines = [
        "I: Retrieving InRelease",
        "I: Retrieving adduser 3.134",
        "I: Validating adduser 3.134",
        "I: Retrieving apt 2.6.1",
        "I: Validating apt 2.6.1",
        "I: Extracting adduser...",
        "I: Extracting apt...",
        "I: Base system installed successfully.",
    ]
    (tmp_path / "out.txt").write_text("\n".join(lines) + "\n")
    log = tmp_path / "build.log"
    shown: list[str] = []
    images._stream(
        "base",
        "debootstrap",
        ["cat", str(tmp_path / "out.txt")],
        shown.append,
        log=log,
        collapse=images._DEBOOTSTRAP_PACKAGE_LINE,
    )
    assert shown == [
        "[base] I: Retrieving InRelease",
        "[base] I: Retrieving adduser 3.134 [...]",
        "[base] I: Extracting adduser... [...]",
        "[base] I: Base system installed successfully.",
    ]
    assert log.read_text().splitlines() == lines


def test_failed_step_reports_the_last_lines(tmp_path: Path) -> None:
    with pytest.raises(images.ImageBuildFailed) as failure:
        images._stream(
            "notebook", "install.sh", ["sh", "-c", "seq 100; exit 3"], lambda _: None, log=None
        )
    assert failure.value.log_tail == [str(n) for n in range(61, 101)]
    assert "building notebook failed at install.sh" in str(failure.value)
