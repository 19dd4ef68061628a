"""Refuse to finish an image build that breaks the workspace contract.

Run as root inside the image being built (by notebook/install.sh, and again by every
image built on top of it). Exits non-zero with the reasons when a check fails.
"""

from __future__ import annotations

import importlib.util
import os
import re
import stat
import subprocess
import sys
from importlib import metadata

# Distributions that would let the researcher reach in-container ports (or serve an
# editor) through the Jupyter server: each one is a route around the extension's wall.
FORBIDDEN_DISTRIBUTIONS = {
    "jupyter-server-proxy",
    "jupyterlab-server-proxy",
    "nbserverproxy",
    "jupyter-vscode-proxy",
    "jupyter-codeserver-proxy",
    "jupyter-rsession-proxy",
    "jupyter-remote-desktop-proxy",
    "jupyter-desktop-server",
    "code-server",
}
FORBIDDEN_MODULES = ("jupyter_server_proxy", "nbserverproxy")
FORBIDDEN_PROGRAMS = ("code-server", "sudo")
# Modules every workspace would import at start-up for nothing: rfc3987_syntax (pulled in
# by jsonschema's format extras) spends about 1.2 s and 15 MiB building parsers at import;
# the extras' other checkers about 0.1 s more (see install.sh).
SLOW_STARTUP_MODULES = (
    "rfc3987_syntax",
    "isoduration",
    "arrow",
    "fqdn",
    "uri_template",
    "webcolors",
    "jsonpointer",
)
# Modules researchers rely on for disclosure control (issue #12): ACRO's wrappers make
# tables whose results.json the airlock shows officers beside its own checks.
REQUIRED_MODULES = ("acro",)
VENV = "/opt/cleanroom/venv"
# The entry point and the launcher decide who runs what: root-owned, root-only writable.
LAUNCHERS = ("/opt/cleanroom/bin/cleanroom-entrypoint", "/opt/cleanroom/bin/as-researcher")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def problems() -> list[str]:
    """Return every broken rule, empty when the image is fine."""
    found: list[str] = []
    installed = {_normalise(d.metadata["Name"]) for d in metadata.distributions()}
    found += [f"forbidden distribution installed: {n}" for n in installed & FORBIDDEN_DISTRIBUTIONS]
    found += [
        f"forbidden module importable: {m}"
        for m in FORBIDDEN_MODULES
        if importlib.util.find_spec(m)
    ]
    found += [
        f"required module missing: {m}" for m in REQUIRED_MODULES if not importlib.util.find_spec(m)
    ]
    found += [
        f"module that slows every workspace start importable: {m}"
        for m in SLOW_STARTUP_MODULES
        if importlib.util.find_spec(m)
    ]
    for folder in os.environ.get("PATH", "").split(":"):
        found += [
            f"forbidden program on PATH: {folder}/{p}"
            for p in FORBIDDEN_PROGRAMS
            if os.path.exists(os.path.join(folder, p))
        ]
    for top in ("/usr", "/bin", "/sbin", "/opt", "/etc", "/home", "/var"):
        for folder, _dirs, files in os.walk(top):
            for name in files:
                path = os.path.join(folder, name)
                mode = os.lstat(path).st_mode
                if stat.S_ISREG(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
                    found.append(f"setuid/setgid file: {path}")
    for folder, dirs, files in os.walk(VENV):
        for name in [".", *dirs, *files]:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                continue
            if info.st_uid != 0 or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                found.append(f"not root-owned and root-only writable: {path}")
    for path in (os.path.dirname(LAUNCHERS[0]), *LAUNCHERS):
        try:
            info = os.stat(path)
        except OSError as exc:
            found.append(f"missing: {path} ({exc.strerror})")
            continue
        if info.st_uid != 0 or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            found.append(f"not root-owned and root-only writable: {path}")
    try:
        import pwd

        server = pwd.getpwuid(1001)
        if server.pw_gid != 1000:
            found.append("the server's user (uid 1001) must have the researcher's group 1000")
    except KeyError:
        found.append("no user with uid 1001 (the Jupyter server's user)")
    return found


# Run apart, so a torch that crashes at import (a missing CUDA library) is reported, not fatal
# to this script. CUDA availability is not asked: the build has no GPU, only the build.
_TORCH_REPORT = """
import torch
cuda = torch.version.cuda
build = f"CUDA {cuda} build, cuDNN {torch.backends.cudnn.version()}" if cuda else "CPU build"
print(f"torch {torch.__version__}, {build}")
"""


def torch_report() -> tuple[str | None, str | None]:
    """``(report, problem)`` for torch: None, None when it is not installed.

    When torch is installed it must import; the report says which build it is (CPU, or
    the CUDA version it was built for), which the build log then shows.
    """
    try:
        metadata.distribution("torch")
    except metadata.PackageNotFoundError:
        return None, None
    done = subprocess.run(
        [sys.executable, "-c", _TORCH_REPORT], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return None, f"torch is installed but does not import: {done.stderr.strip()[-400:]}"
    return done.stdout.strip(), None


if __name__ == "__main__":
    bad = problems()
    report, problem = torch_report()
    if report:
        print(f"verify_image: {report}")
    if problem:
        bad.append(problem)
    for line in bad:
        print(f"verify_image: {line}", file=sys.stderr)
    print(f"verify_image: {'FAILED' if bad else 'ok'}")
    sys.exit(1 if bad else 0)
