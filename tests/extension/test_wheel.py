"""build-wheel.sh makes one wheel that installs everything the image needs, without node."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from cleanroom_workspace import _jupyter_labextension_paths, _jupyter_server_extension_points

from tests.ci import skip_or_fail

EXTENSIONS = Path(__file__).parents[2] / "extensions"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("npm") is None:
        skip_or_fail("npm is not installed: the front end cannot be built")
    out = tmp_path_factory.mktemp("wheels")
    (out / "cleanroom_workspace-0.0.1-py3-none-any.whl").write_bytes(b"stale")
    subprocess.run(
        [str(EXTENSIONS / "build-wheel.sh"), str(out)],
        check=True,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        timeout=900,
    )
    (built,) = out.glob("*.whl")  # exactly one wheel: the stale one is gone
    return built


def test_wheel_holds_what_the_image_needs(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    data = "cleanroom_workspace-0.1.0.data/data/"
    assert f"{data}etc/jupyter/jupyter_server_config.d/cleanroom_workspace.json" in names
    assert f"{data}etc/jupyter/labconfig/page_config.d/cleanroom_workspace.json" in names
    labext = f"{data}share/jupyter/labextensions/cleanroom-workspace/"
    assert f"{labext}package.json" in names
    assert [n for n in names if n.startswith(f"{labext}static/remoteEntry.")]
    assert "cleanroom_workspace/workspace.yaml" in names
    package = json.loads(zipfile.ZipFile(wheel).read(f"{labext}package.json"))
    assert package["name"] == "cleanroom-workspace"
    assert package["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")


def test_wheel_installs_into_a_prefix(wheel: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            # Without it pip would uninstall the package from the running venv.
            "--ignore-installed",
            "--prefix",
            str(prefix),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    config = prefix / "etc" / "jupyter" / "jupyter_server_config.d" / "cleanroom_workspace.json"
    assert json.loads(config.read_text())["ServerApp"]["jpserver_extensions"] == {
        "cleanroom_workspace": True
    }
    labext = prefix / "share" / "jupyter" / "labextensions" / "cleanroom-workspace"
    assert (labext / "package.json").exists()
    assert list((labext / "static").glob("remoteEntry.*.js"))


def test_extension_points() -> None:
    assert _jupyter_server_extension_points() == [{"module": "cleanroom_workspace"}]
    assert _jupyter_labextension_paths() == [{"src": "labextension", "dest": "cleanroom-workspace"}]
