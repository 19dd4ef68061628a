"""The images as workspaces run them: hardened, as uid 1000, without a network."""

from __future__ import annotations

import json
import re
import tomllib

import pytest
from cleanroom.images import build as images

from .conftest import run_in

pytestmark = pytest.mark.docker

# Printed as JSON by a script run inside the container.
PROBE = r"""
import importlib.util, json, os, sys
from importlib import metadata
import pandas, pyarrow, sklearn, matplotlib, ipykernel, jupyterlab
home = os.path.expanduser("~")
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "home": home,
    "executable": sys.executable,
    "versions": {m.__name__: m.__version__ for m in (pandas, pyarrow, sklearn)},
    "venv_writable": os.access("/opt/cleanroom/venv", os.W_OK)
        or os.access("/opt/cleanroom/venv/lib/python3.11/site-packages", os.W_OK),
    "config_writable": os.access("/etc/cleanroom/jupyter", os.W_OK),
    "proxy_importable": importlib.util.find_spec("jupyter_server_proxy") is not None,
    "distributions": sorted(d.metadata["Name"] for d in metadata.distributions()),
    "work_writable": os.access(home + "/work", os.W_OK),
    "data_link": os.readlink(home + "/data"),
    "project_link": os.readlink(home + "/project"),
    "mount_points": [os.path.isdir(p) for p in ("/data", "/project")],
    "user_site": __import__("site").ENABLE_USER_SITE,
    "system_site": open(sys.prefix + "/pyvenv.cfg").read(),
}))
"""


def _hub_jupyterhub_version() -> str:
    pyproject = tomllib.loads((images.repo_root() / "pyproject.toml").read_text())
    pin = next(d for d in pyproject["project"]["dependencies"] if d.startswith("jupyterhub=="))
    return pin.split("==", 1)[1]


@pytest.fixture(scope="module")
def probe(workspace_images: dict[str, str]) -> dict:
    done = run_in(workspace_images["notebook"], "python", "-c", PROBE)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_runs_as_the_researcher_from_the_venv(probe: dict) -> None:
    assert (probe["uid"], probe["gid"]) == (1000, 1000)
    assert probe["home"] == "/home/researcher"
    assert probe["executable"] == "/opt/cleanroom/venv/bin/python"


def test_data_libraries_import(probe: dict) -> None:
    assert set(probe["versions"]) == {"pandas", "pyarrow", "sklearn"}


def test_venv_and_jupyter_config_are_not_writable(probe: dict) -> None:
    assert probe["venv_writable"] is False
    assert probe["config_writable"] is False


def test_home_layout(probe: dict) -> None:
    assert probe["work_writable"] is True
    assert probe["data_link"] == "/data"
    assert probe["project_link"] == "/project"
    assert probe["mount_points"] == [True, True]


def test_no_user_or_system_site_packages(probe: dict) -> None:
    # Python's user site would make ~/.local a place for code and Jupyter config.
    assert probe["user_site"] is False
    assert "include-system-site-packages = false" in probe["system_site"]


def test_no_language_server_is_installed(probe: dict) -> None:
    names = {re.sub(r"[-_.]+", "-", name).lower() for name in probe["distributions"]}
    assert not names & {"python-lsp-server", "jedi-language-server", "pyright", "pylsp"}


def test_no_port_proxy_is_installed(probe: dict) -> None:
    assert probe["proxy_importable"] is False
    names = {re.sub(r"[-_.]+", "-", name).lower() for name in probe["distributions"]}
    assert "jupyter-server-proxy" not in names
    assert not any("proxy" in name and name.startswith("jupyter") for name in names)


def test_singleuser_matches_the_hub_version(workspace_images: dict[str, str]) -> None:
    done = run_in(workspace_images["notebook"], "jupyterhub-singleuser", "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == _hub_jupyterhub_version()


def test_no_setuid_programs_and_no_sudo(workspace_images: dict[str, str]) -> None:
    done = run_in(
        workspace_images["notebook"],
        "sh",
        "-c",
        "find / -xdev -type f -perm /6000 2>/dev/null; command -v sudo su code-server || true",
    )
    assert done.stdout.split() == []


def test_user_config_in_home_is_not_read(workspace_images: dict[str, str]) -> None:
    done = run_in(workspace_images["notebook"], "jupyter", "--config-dir")
    assert done.stdout.strip() == "/etc/cleanroom/jupyter"
    done = run_in(workspace_images["notebook"], "jupyter", "--paths", "--json")
    config_paths = json.loads(done.stdout)["config"]
    assert not any(path.startswith("/home/") for path in config_paths), config_paths


def test_pytorch_image_has_the_cpu_torch(pytorch_image: str) -> None:
    script = (
        "import json, torch, pandas, sklearn; from importlib import metadata;"
        "print(json.dumps({'version': torch.__version__, 'cuda': torch.version.cuda,"
        "'sum': float(torch.ones(3).sum()),"
        "'nvidia': [d.metadata['Name'] for d in metadata.distributions()"
        " if d.metadata['Name'].lower().startswith('nvidia')]}))"
    )
    done = run_in(pytorch_image, "python", "-c", script)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result == {"version": "2.13.0+cpu", "cuda": None, "sum": 3.0, "nvidia": []}


# Starts JupyterLab inside the container, waits for it, starts a kernel, and prints
# what it saw: the image must run a server under the hardened settings.
SERVER_SMOKE = r"""
import json, subprocess, sys, time, urllib.request
server = subprocess.Popen(
    ["jupyter", "lab", "--no-browser", "--ip=127.0.0.1", "--port=8888",
     "--IdentityProvider.token=smoke", "--ServerApp.root_dir=/home/researcher"],
    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
)
def call(path, method="GET"):
    request = urllib.request.Request(
        "http://127.0.0.1:8888" + path, method=method, data=b"{}" if method == "POST" else None,
        headers={"Authorization": "token smoke"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()
for _ in range(120):
    try:
        call("/api/status")
        break
    except OSError:
        if server.poll() is not None:
            sys.exit("server exited: " + server.stderr.read()[-3000:])
        time.sleep(0.5)
else:
    sys.exit("server did not answer")
lab, _ = call("/lab")
kernel, body = call("/api/kernels", "POST")
server.terminate()
print(json.dumps({"lab": lab, "kernel": kernel, "kernel_name": json.loads(body)["name"]}))
"""


def test_jupyterlab_serves_and_starts_a_kernel(workspace_images: dict[str, str]) -> None:
    done = run_in(workspace_images["notebook"], "python", "-c", SERVER_SMOKE)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {"lab": 200, "kernel": 201, "kernel_name": "python3"}


def test_workspace_extension_is_installed(workspace_images: dict[str, str]) -> None:
    done = run_in(workspace_images["notebook"], "jupyter", "server", "extension", "list")
    output = done.stdout + done.stderr
    assert "cleanroom_workspace" in output and "enabled" in output, output
    done = run_in(workspace_images["notebook"], "jupyter", "labextension", "list")
    assert "cleanroom-workspace" in done.stdout + done.stderr
