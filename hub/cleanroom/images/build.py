"""Build and list the workspace images: ``base``, ``notebook``, ``pytorch``, ``pytorch-cuda``.

``base`` is made from Debian packages (``debootstrap`` then ``docker import``), because
no container registry is reachable. Every other image is built on its parent by running
``images/<name>/install.sh`` as root in a throwaway container of the parent, with the
build inputs mounted read-only, then ``docker commit`` with ``images/<name>/image.config``.
(Debian's Docker 20.10 has no BuildKit without buildx, and a classic ``COPY`` would leave
the 183 MiB torch wheel in a layer of its own.)

Every image is tagged ``cleanroom/<name>:<hash12>`` and ``cleanroom/<name>:latest`` and
labelled with ``cleanroom.image`` and ``cleanroom.inputs-hash``: the sha256 of all its
inputs (its folder under ``images/``, its build arguments, its parent's hash, the wheels
it installs). A build whose hash matches an existing image is skipped.

``pytorch-cuda`` (torch with CUDA, 6.6 GB) is built only when named: a plain
``build`` makes :data:`DEFAULT_IMAGES`.

Command line: ``python -m cleanroom.images.build build [NAMES] [--force]`` and ``... list``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import weakref
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from cleanroom import paths
from cleanroom.images import wheels
from cleanroom.settings import image_repository

IMAGE_NAMES = ("base", "notebook", "pytorch", "pytorch-cuda", "viewer")
PARENTS: dict[str, str | None] = {
    "base": None,
    "notebook": "base",
    "pytorch": "notebook",
    # Not on pytorch: its CPU torch would stay in a layer below the CUDA one for good.
    "pytorch-cuda": "notebook",
    # The restricted mode's viewer (Chromium, Xvfb, x11vnc, noVNC: docs/restricted-mode.md).
    "viewer": "base",
}
# Built only when named: pytorch-cuda is 6.6 GB and installs 2.9 GB of wheels that
# only some machines hold; the viewer (about 500 MB of Debian packages) only where a
# project runs in restricted mode. CI and `make up` build the others.
OPT_IN_IMAGES = frozenset({"pytorch-cuda", "viewer"})
DEFAULT_IMAGES = tuple(name for name in IMAGE_NAMES if name not in OPT_IN_IMAGES)
# Images that are not workspaces: no project may allow them as its workspace image.
SERVICE_IMAGES = frozenset({"viewer"})
WORKSPACE_IMAGES = tuple(name for name in IMAGE_NAMES if name not in SERVICE_IMAGES)
# Wheels an image must find on disk: without them the build refuses to start rather
# than let pip fetch gigabytes from an index (the others may come from the index).
REQUIRED_LOCAL_WHEELS: dict[str, frozenset[str]] = {"pytorch-cuda": frozenset({"torch"})}
LABEL_IMAGE = "cleanroom.image"
LABEL_HASH = "cleanroom.inputs-hash"

# Bump when this module changes what ends up in an image, so every image is rebuilt.
RECIPE_VERSION = "1"
DEBIAN_SUITE = "bookworm"
DEBIAN_VARIANT = "minbase"
DEFAULT_DEBIAN_MIRROR = "http://deb.debian.org/debian"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# Debian bookworm's python3: the only interpreter a wheel for the images must fit.
PYTHON_TAG = "cp311"
BUILD_MOUNT = "/run/cleanroom-build"
LOG_TAIL_LINES = 40
# debootstrap prints a line (or two) per package and phase; progress shows each phase
# once. The first group is the phase: Retrieving and Validating alternate per package.
_DEBOOTSTRAP_PACKAGE_LINE = re.compile(
    r"I: (?:(?:Retrieving|Validating) (?!InRelease|Packages)\S+ \S+"
    r"|(Extracting|Unpacking|Configuring) \S+\.\.\.)$"
)
_LOCK_PATH = Path(tempfile.gettempdir()) / "cleanroom-image-build.lock"
_IGNORED_NAMES = {"__pycache__", ".DS_Store", ".mypy_cache", ".ruff_cache"}

Progress = Callable[[str], None]


class ImageError(Exception):
    """Base class of every error raised while building or listing images."""


class UnknownImage(ImageError):
    """A name that is not one of :data:`IMAGE_NAMES`."""


class DockerUnavailable(ImageError):
    """No Docker engine answers (the CLI is missing or ``docker info`` fails)."""


class DebootstrapUnavailable(ImageError):
    """``debootstrap`` is missing, or the build does not run as root."""


class WheelMissing(ImageError):
    """A wheel that an image installs from disk is not on this machine."""


class ImageBuildFailed(ImageError):
    """A build step failed; ``log_tail`` holds the last lines of its output."""

    def __init__(self, name: str, step: str, log_tail: Sequence[str], log_path: Path | None):
        self.name = name
        self.step = step
        self.log_tail = list(log_tail)
        self.log_path = log_path
        where = f" (full log: {log_path})" if log_path else ""
        tail = "\n".join(f"  | {line}" for line in self.log_tail)
        super().__init__(f"building {name} failed at {step}{where}; last lines:\n{tail}")


@dataclass(frozen=True)
class BuiltImage:
    """The outcome of building (or reusing) one image."""

    name: str
    tag: str
    inputs_hash: str
    image_id: str
    skipped: bool
    seconds: float


@dataclass(frozen=True)
class ImageInfo:
    """One cleanroom image present in the Docker engine."""

    name: str
    inputs_hash: str
    image_id: str
    tags: tuple[str, ...]
    created: str
    size_bytes: int

    @property
    def tag(self) -> str:
        """The immutable tag ``cleanroom/<name>:<hash12>``."""
        return image_tag(self.name, self.inputs_hash)

    @property
    def latest(self) -> bool:
        """Whether ``cleanroom/<name>:latest`` points at this image."""
        return f"{image_repository()}/{self.name}:latest" in self.tags


def image_tag(name: str, inputs_hash: str) -> str:
    """The immutable tag of image ``name`` built from inputs with hash ``inputs_hash``."""
    return f"{image_repository()}/{name}:{inputs_hash[:12]}"


def repo_root() -> Path:
    """The checkout holding ``images/``: ``$CLEANROOM_ROOT`` or this package's checkout."""
    root = paths.repo_root()
    if not (root / "images" / "base").is_dir():
        raise ImageError(f"{root} holds no images/base folder; set CLEANROOM_ROOT to the checkout")
    return root


# ---------------------------------------------------------------------------- inputs


# (path, size, mtime_ns) -> sha256: the torch wheel is hashed once per process.
_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def _sha256_file(path: Path) -> str:
    info = path.stat()
    key = (str(path.resolve()), info.st_size, info.st_mtime_ns)
    if key not in _FILE_DIGESTS:
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        _FILE_DIGESTS[key] = digest.hexdigest()
    return _FILE_DIGESTS[key]


def _wheel_digest(path: Path) -> str:
    """Hash a wheel by its members' names and bytes, not its zip metadata.

    Wheel builders stamp file times into the archive; hashing the members keeps an
    unchanged extension from forcing a rebuild of every image on top of it.
    """
    digest = hashlib.sha256()
    with zipfile.ZipFile(path) as wheel:
        for member in sorted(wheel.namelist()):
            digest.update(member.encode() + b"\0")
            digest.update(hashlib.sha256(wheel.read(member)).digest())
    return digest.hexdigest()


def _folder_files(folder: Path) -> dict[str, Path]:
    """Every file below ``folder`` by relative path, skipping caches."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part in _IGNORED_NAMES or part.endswith("~") for part in relative.parts):
            continue
        if path.is_file():
            found[relative.as_posix()] = path
    return found


@dataclass
class _Plan:
    """What one image is built from, and the hash of it all."""

    name: str
    parent_hash: str | None
    # Files placed in the build folder: name there -> file here.
    files: dict[str, Path]
    # Build settings: those in ``hashed`` change the image, the others only the way
    # its inputs are fetched (a mirror, a CA bundle).
    hashed: dict[str, str]
    transport: dict[str, str] = field(default_factory=dict)
    # Files in ``files`` that only carry transport (the CA bundle): not hashed.
    unhashed: set[str] = field(default_factory=set)
    # sha256 of files whose index page states it (spares reading gigabytes of wheels).
    known_digests: dict[str, str] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    # Wheels that must be on disk and are not: the build refuses (WheelMissing).
    missing: list[str] = field(default_factory=list)

    @property
    def inputs_hash(self) -> str:
        manifest = {
            "recipe": RECIPE_VERSION,
            "name": self.name,
            "parent": self.parent_hash,
            "settings": self.hashed,
            "files": self.digests,
        }
        return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()

    @property
    def tag(self) -> str:
        return image_tag(self.name, self.inputs_hash)


class _Planner:
    """Works out each image's inputs once per build (wheels are found or built once)."""

    def __init__(self, root: Path, progress: Progress, wheel_dir: Path | None):
        self.root = root
        self.progress = progress
        self.wheel_dir = wheel_dir
        self._plans: dict[str, _Plan] = {}
        self._extension_wheel: Path | None = None
        self._extension_looked_for = False

    def plan(self, name: str) -> _Plan:
        if name not in PARENTS:
            raise UnknownImage(f"unknown image {name!r}; known: {', '.join(IMAGE_NAMES)}")
        if name in self._plans:
            return self._plans[name]
        parent = PARENTS[name]
        parent_hash = self.plan(parent).inputs_hash if parent else None
        folder = self.root / "images" / name
        plan = _Plan(name, parent_hash, _folder_files(folder), {})
        if parent:
            plan.hashed["parent_tag"] = image_tag(parent, parent_hash or "")
        getattr(self, f"_add_{name.replace('-', '_')}_inputs")(plan)
        plan.digests = {
            key: plan.known_digests.get(key)
            or (_wheel_digest(path) if key.startswith("extension/") else _sha256_file(path))
            for key, path in plan.files.items()
            if key not in plan.unhashed
        }
        self._plans[name] = plan
        return plan

    def _add_base_inputs(self, plan: _Plan) -> None:
        plan.hashed.update(suite=DEBIAN_SUITE, variant=DEBIAN_VARIANT)
        plan.transport["mirror"] = os.environ.get("CLEANROOM_DEBIAN_MIRROR", DEFAULT_DEBIAN_MIRROR)

    def _add_notebook_inputs(self, plan: _Plan) -> None:
        self._add_pip_ca(plan)
        wheel = self.extension_wheel()
        if wheel is not None:
            plan.files[f"extension/{wheel.name}"] = wheel

    def _add_pytorch_inputs(self, plan: _Plan) -> None:
        self._add_pip_ca(plan)
        requirement = plan.files["requirements.txt"].read_text()
        spec = next(
            line.split("==", 1)[1].strip()
            for line in requirement.splitlines()
            if line.strip().startswith("torch==")
        )
        wheel = _find_torch_wheel(spec, self.wheel_dir)
        # install.sh reads the index only when no local wheel was mounted.
        plan.hashed["torch_index_url"] = ""
        if wheel is None:
            self.progress(
                f"[pytorch] no torch-{spec} wheel for {PYTHON_TAG} in the local wheel folder; "
                f"pip will fetch it from {TORCH_CPU_INDEX}"
            )
            plan.hashed["torch_index_url"] = TORCH_CPU_INDEX
        else:
            plan.files[f"wheels/{wheel.name}"] = wheel

    def _add_pytorch_cuda_inputs(self, plan: _Plan) -> None:
        """Every pinned wheel found on disk is mounted; torch itself must be."""
        self._add_pip_ca(plan)
        try:
            pins = wheels.pinned_requirements(plan.files["requirements.txt"].read_text())
        except ValueError as exc:
            raise ImageError(f"images/{plan.name}/requirements.txt: {exc}") from exc
        sources = wheels.local_sources(self.wheel_dir)
        required = REQUIRED_LOCAL_WHEELS.get(plan.name, frozenset())
        for name, version in pins:
            found = wheels.find_wheel(name, version, sources)
            if found is None:
                if canonicalize_name(name) in required:
                    plan.missing.append(f"{name}=={version}")
                continue
            key = f"wheels/{found.path.name}"
            plan.files[key] = found.path
            if found.sha256:
                plan.known_digests[key] = found.sha256
        if plan.missing:
            where = ", ".join(dict.fromkeys(str(s) for s in sources)) or "(no local folder)"
            plan.hashed["missing_wheels"] = " ".join(plan.missing)
            plan.hashed["looked_in"] = where

    def _add_viewer_inputs(self, plan: _Plan) -> None:
        """Only Debian packages and the files of ``images/viewer/``: nothing to add."""

    def _add_pip_ca(self, plan: _Plan) -> None:
        bundle = _pip_ca_bundle()
        if bundle is not None:
            plan.files["pip-ca.crt"] = bundle
            plan.unhashed.add("pip-ca.crt")

    def extension_wheel(self) -> Path | None:
        """The workspace extension's wheel, built by ``extensions/build-wheel.sh``.

        The script is run every time: it keeps its own cache (front end and wheel) and
        returns at once when nothing changed, so the extension can never be stale. The
        wheel lands in a folder of this planner's own, removed with the planner.
        """
        if not self._extension_looked_for:
            self._extension_wheel = self._build_extension_wheel()
            self._extension_looked_for = True
        return self._extension_wheel

    def _build_extension_wheel(self) -> Path | None:
        script = self.root / "extensions" / "build-wheel.sh"
        if not script.is_file():
            self.progress(
                "[notebook] WARNING: extensions/build-wheel.sh does not exist; building the "
                "notebook image WITHOUT the workspace extension (no download blocking)"
            )
            return None
        outdir = Path(tempfile.mkdtemp(prefix="cleanroom-extension-"))
        weakref.finalize(self, shutil.rmtree, outdir, ignore_errors=True)
        self.progress("[notebook] extensions/build-wheel.sh (the workspace extension's wheel)")
        _stream(
            "notebook",
            "extensions/build-wheel.sh",
            ["bash", str(script), str(outdir)],
            self.progress,
            cwd=self.root,
        )
        built = sorted(outdir.glob("*.whl"))
        if len(built) != 1:
            raise ImageBuildFailed(
                "notebook",
                "extensions/build-wheel.sh",
                [f"expected exactly one wheel in {outdir}, found {len(built)}"],
                None,
            )
        return built[0]


def _pip_setting(option: str) -> list[str]:
    return wheels.pip_setting(option)


def _pip_ca_bundle() -> Path | None:
    """The CA bundle pip uses here, so pip inside the build trusts the same servers."""
    for value in _pip_setting("cert"):
        if Path(value).is_file():
            return Path(value)
    return None


def _find_torch_wheel(spec: str, wheel_dir: Path | None) -> Path | None:
    """The local wheel for ``torch==spec`` fitting the images' Python, if any."""
    folders = [wheel_dir] if wheel_dir else [Path(v) for v in _pip_setting("find-links")]
    for folder in folders:
        if folder.is_dir():
            matches = sorted(folder.glob(f"torch-{spec}-{PYTHON_TAG}-{PYTHON_TAG}-*x86_64.whl"))
            if matches:
                return matches[-1]
    return None


# ---------------------------------------------------------------------------- docker


def _docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ImageError(f"docker {args[0]} failed: {done.stderr.strip()}")
    return done.stdout


def check_engine() -> None:
    """Raise :class:`DockerUnavailable` unless a Docker engine answers."""
    if shutil.which("docker") is None:
        raise DockerUnavailable("the docker command is not installed")
    done = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DockerUnavailable(f"no Docker engine answers: {done.stderr.strip()[-300:]}")


def _image_with_hash(name: str, inputs_hash: str) -> str | None:
    out = _docker(
        "image",
        "ls",
        "--quiet",
        "--no-trunc",
        "--filter",
        f"label={LABEL_IMAGE}={name}",
        "--filter",
        f"label={LABEL_HASH}={inputs_hash}",
    )
    ids = sorted(set(out.split()))
    return ids[0] if ids else None


def _stream(
    name: str,
    step: str,
    command: Sequence[str],
    progress: Progress,
    *,
    cwd: Path | None = None,
    stdin: int | None = None,
    log: Path | None = None,
    collapse: re.Pattern[str] | None = None,
) -> None:
    """Run ``command``, pass each output line to ``progress``, raise on failure.

    Lines matching ``collapse`` (its first group names the phase, "Retrieving" when it
    is empty) reach ``progress`` only when the phase changes; the log file and the error
    tail keep them all.
    """
    tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
    phase: str | None = None
    with contextlib.ExitStack() as stack:
        log_file = stack.enter_context(log.open("a")) if log else None
        process = subprocess.Popen(
            command,
            cwd=cwd,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip()
            tail.append(line)
            if log_file:
                log_file.write(line + "\n")
            match = collapse.match(line) if collapse else None
            key = (match.group(1) or "Retrieving") if match else None
            if key and key == phase:
                continue
            phase = key
            progress(f"[{name}] {line}" + (" [...]" if match else ""))
        code = process.wait()
    if code != 0:
        raise ImageBuildFailed(name, step, tail, log)


def _config_changes(config: Path) -> list[str]:
    """``--change`` arguments from an ``image.config`` file."""
    changes: list[str] = []
    for line in config.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            changes += ["--change", line.strip()]
    return changes


def _label_changes(plan: _Plan) -> list[str]:
    return [
        "--change",
        f"LABEL {LABEL_IMAGE}={plan.name}",
        "--change",
        f"LABEL {LABEL_HASH}={plan.inputs_hash}",
    ]


# ---------------------------------------------------------------------------- builds


def _build_base(plan: _Plan, workdir: Path, progress: Progress, log: Path) -> str:
    if shutil.which("debootstrap") is None:
        raise DebootstrapUnavailable(
            "debootstrap is not installed; the base image is built from Debian packages "
            "(apt-get install debootstrap)"
        )
    if os.geteuid() != 0:
        raise DebootstrapUnavailable("building the base image needs root (debootstrap, chroot)")
    packages = [
        line.split("#", 1)[0].strip()
        for line in plan.files["packages.txt"].read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    rootfs = workdir / "rootfs"
    progress(f"[base] debootstrap {DEBIAN_SUITE} ({DEBIAN_VARIANT} + {', '.join(packages)})")
    try:
        _stream(
            "base",
            "debootstrap",
            [
                "debootstrap",
                f"--variant={DEBIAN_VARIANT}",
                f"--include={','.join(packages)}",
                DEBIAN_SUITE,
                str(rootfs),
                plan.transport["mirror"],
            ],
            progress,
            log=log,
            collapse=_DEBOOTSTRAP_PACKAGE_LINE,
        )
        progress("[base] setup.sh in the new tree (user, mount points, no setuid, slimming)")
        with plan.files["setup.sh"].open("rb") as script:
            _stream(
                "base",
                "setup.sh",
                ["chroot", str(rootfs), "/bin/sh", "-s"],
                progress,
                stdin=script.fileno(),
                log=log,
            )
        progress(f"[base] docker import as {plan.tag}")
        # Device nodes are left out: Docker provides /dev at run time.
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "--exclude=./dev/*", "-C", str(rootfs), "-c", "."],
            stdout=subprocess.PIPE,
        )
        try:
            _stream(
                "base",
                "docker import",
                [
                    "docker",
                    "import",
                    *_config_changes(plan.files["image.config"]),
                    *_label_changes(plan),
                    "-",
                    plan.tag,
                ],
                progress,
                stdin=tar.stdout.fileno() if tar.stdout else None,
                log=log,
            )
        finally:
            if tar.stdout:
                tar.stdout.close()
            tar.wait()
    finally:
        _remove_tree(rootfs)
    return _docker("image", "inspect", "--format", "{{.Id}}", plan.tag).strip()


def _remove_tree(path: Path) -> None:
    """Remove a debootstrap tree, unmounting anything a failed run left mounted in it."""
    if not path.exists():
        return
    prefix = str(path.resolve()) + "/"
    mounts = [
        fields[1]
        for fields in (line.split() for line in Path("/proc/mounts").read_text().splitlines())
        if len(fields) > 1 and fields[1].startswith(prefix)
    ]
    for mount in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", mount], check=False)
    shutil.rmtree(path, ignore_errors=True)


def _build_child(plan: _Plan, workdir: Path, progress: Progress, log: Path) -> str:
    context = workdir / "context"
    for relative, source in plan.files.items():
        target = context / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        # Hard links spare copying the torch wheel; fall back to a copy across devices.
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
    (context / "wheels").mkdir(exist_ok=True)
    (context / "torch-index-url").write_text(plan.hashed.get("torch_index_url", "") + "\n")
    context.chmod(0o755)
    for path in context.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)

    container = f"cleanroom-build-{plan.name}-{uuid.uuid4().hex[:8]}"
    parent_tag = plan.hashed["parent_tag"]
    progress(f"[{plan.name}] install.sh in a container of {parent_tag}")
    try:
        _stream(
            plan.name,
            "install.sh",
            [
                "docker",
                "run",
                "--name",
                container,
                "--user",
                "0:0",
                "--entrypoint",
                "/bin/sh",
                "--volume",
                f"{context}:{BUILD_MOUNT}:ro",
                parent_tag,
                f"{BUILD_MOUNT}/install.sh",
            ],
            progress,
            log=log,
        )
        progress(f"[{plan.name}] docker commit as {plan.tag}")
        image_id = _docker(
            "commit",
            *_config_changes(plan.files["image.config"]),
            *_label_changes(plan),
            container,
            plan.tag,
        ).strip()
    finally:
        subprocess.run(["docker", "rm", "--force", container], capture_output=True, check=False)
    return image_id


@contextlib.contextmanager
def _build_lock(progress: Progress) -> Iterator[None]:
    """Serialise builds on this machine: the engine is shared by every checkout."""
    with _LOCK_PATH.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"waiting for another image build to finish ({_LOCK_PATH})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _with_parents(names: Sequence[str]) -> list[str]:
    wanted: set[str] = set()
    for name in names:
        if name not in PARENTS:
            raise UnknownImage(f"unknown image {name!r}; known: {', '.join(IMAGE_NAMES)}")
        current: str | None = name
        while current:
            wanted.add(current)
            current = PARENTS[current]
    return [name for name in IMAGE_NAMES if name in wanted]


def build_images(
    names: Sequence[str] = DEFAULT_IMAGES,
    *,
    force: bool = False,
    progress: Progress = print,
    wheel_dir: Path | None = None,
) -> list[BuiltImage]:
    """Build ``names`` (and the parents they need), skipping those already built.

    ``force`` rebuilds the named images even when their inputs are unchanged (parents
    are still reused). ``wheel_dir`` is a folder holding the CPU torch wheel; by default
    the ``find-links`` folders of this machine's pip configuration are searched
    (and, for ``pytorch-cuda``'s wheels, its ``file://`` indexes). An image that must
    install a wheel from disk which is not there raises :class:`WheelMissing` before
    anything is built. Returns one :class:`BuiltImage` per image, parents first.
    """
    wanted = _with_parents(names)
    check_engine()
    root = repo_root()
    planner = _Planner(root, progress, wheel_dir)
    logs = root / "build" / "images" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results: list[BuiltImage] = []
    # Refused before anything is built: a missing wheel is known from the plans alone.
    for name in wanted:
        plan = planner.plan(name)
        if plan.missing and not _image_with_hash(name, plan.inputs_hash):
            raise WheelMissing(
                f"{name} installs {', '.join(plan.missing)} from a wheel on this machine "
                f"(CPython 3.11, x86-64 Linux) and none was found in: "
                f"{plan.hashed['looked_in']}. Put the wheel in a folder and pass "
                f"--wheel-dir DIR, or add that folder to pip's find-links; nothing was built"
            )
    with _build_lock(progress):
        for name in wanted:
            started = time.monotonic()
            plan = planner.plan(name)
            existing = _image_with_hash(name, plan.inputs_hash)
            if existing and not (force and name in names):
                progress(f"[{name}] inputs unchanged ({plan.tag}): build skipped")
                # Found by its label, perhaps under another repository: children build
                # FROM plan.tag, so that tag must exist here too.
                _docker("tag", existing, plan.tag)
                _docker("tag", existing, f"{image_repository()}/{name}:latest")
                results.append(BuiltImage(name, plan.tag, plan.inputs_hash, existing, True, 0.0))
                continue
            log = logs / f"{name}-{plan.inputs_hash[:12]}.log"
            log.write_text("")
            progress(f"[{name}] building {plan.tag} (log: {log})")
            with tempfile.TemporaryDirectory(prefix=f"cleanroom-{name}-", dir="/var/tmp") as tmp:
                build = _build_base if name == "base" else _build_child
                image_id = build(plan, Path(tmp), progress, log)
            _docker("tag", plan.tag, f"{image_repository()}/{name}:latest")
            seconds = time.monotonic() - started
            progress(f"[{name}] built {plan.tag} in {seconds:.0f} s")
            results.append(BuiltImage(name, plan.tag, plan.inputs_hash, image_id, False, seconds))
    return results


def ensure_images(
    names: Sequence[str] = DEFAULT_IMAGES, *, progress: Progress = print
) -> dict[str, str]:
    """Build what is missing or stale and return ``{name: "cleanroom/<name>:<hash12>"}``.

    Meant for test fixtures and the hub's start-up: cheap when nothing changed.
    """
    return {image.name: image.tag for image in build_images(names, progress=progress)}


def inputs_hash(name: str, *, wheel_dir: Path | None = None) -> str:
    """The inputs hash image ``name`` would be built with now (may build the extension wheel)."""
    return _Planner(repo_root(), lambda _line: None, wheel_dir).plan(name).inputs_hash


def list_images() -> list[ImageInfo]:
    """Every cleanroom image in the engine, by name then newest first."""
    check_engine()
    ids = sorted(
        set(
            _docker(
                "image", "ls", "--quiet", "--no-trunc", "--filter", f"label={LABEL_IMAGE}"
            ).split()
        )
    )
    if not ids:
        return []
    found: list[ImageInfo] = []
    for item in json.loads(_docker("image", "inspect", *ids)):
        labels = (item.get("Config") or {}).get("Labels") or {}
        if labels.get(LABEL_IMAGE) not in PARENTS or LABEL_HASH not in labels:
            continue
        found.append(
            ImageInfo(
                name=labels[LABEL_IMAGE],
                inputs_hash=labels[LABEL_HASH],
                image_id=item["Id"],
                tags=tuple(sorted(item.get("RepoTags") or ())),
                created=item.get("Created", ""),
                size_bytes=int(item.get("Size", 0)),
            )
        )
    found.sort(key=lambda info: info.created, reverse=True)
    found.sort(key=lambda info: IMAGE_NAMES.index(info.name))
    return found


def prune_images(*, progress: Progress = print) -> list[str]:
    """Remove cleanroom images that ``:latest`` no longer points at and no container uses.

    Only images labelled ``cleanroom.image`` are considered; returns the removed tags
    (and the ids of removed untagged images).
    """
    with _build_lock(progress):
        in_use = set(_docker("ps", "--all", "--no-trunc", "--format", "{{.Image}}").split())
        used_ids = _image_ids(in_use)
        removed: list[str] = []
        for info in list_images():
            if info.latest or info.image_id in used_ids:
                continue
            for tag in info.tags:
                _docker("rmi", tag)
                removed.append(tag)
                progress(f"removed {tag}")
            if not info.tags:
                # Untagged (a forced rebuild took its tag): removable unless another
                # image still builds on it, which Docker refuses and we leave be.
                done = subprocess.run(
                    ["docker", "rmi", info.image_id], capture_output=True, check=False
                )
                if done.returncode == 0:
                    removed.append(info.image_id)
                    progress(f"removed untagged {info.name} image {info.image_id[7:19]}")
    return removed


def _image_ids(references: set[str]) -> set[str]:
    """Image ids of ``references``; those that no longer resolve are left out."""
    ids: set[str] = set()
    for reference in references:
        done = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Id}}", reference],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            ids.add(done.stdout.strip())
    return ids


# ---------------------------------------------------------------------------- command


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cleanroom.images.build build [NAMES] [--force]``, ``... list``, ``... prune``."""
    parser = argparse.ArgumentParser(
        prog="cleanroom images", description="Build and list the workspace images."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build images whose inputs changed")
    build.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"any of {', '.join(IMAGE_NAMES)} (default: {', '.join(DEFAULT_IMAGES)}; "
        f"{', '.join(sorted(OPT_IN_IMAGES))} only when named)",
    )
    build.add_argument("--force", action="store_true", help="rebuild even if unchanged")
    build.add_argument(
        "--wheel-dir", type=Path, help="folder holding the torch wheels (CPU, or CUDA's)"
    )
    commands.add_parser("list", help="list the images in the Docker engine")
    commands.add_parser(
        "prune", help="remove images that are not :latest and not used by any container"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            if not args.names:
                print(
                    f"building {', '.join(DEFAULT_IMAGES)}; {', '.join(sorted(OPT_IN_IMAGES))} "
                    "is built only when named"
                )
            for image in build_images(
                args.names or DEFAULT_IMAGES, force=args.force, wheel_dir=args.wheel_dir
            ):
                state = "unchanged" if image.skipped else f"built in {image.seconds:.0f} s"
                print(f"{image.tag}  {state}")
        elif args.command == "prune":
            removed = prune_images()
            print(f"removed {len(removed)} image tag(s)")
        else:
            for info in list_images():
                latest = "  latest" if info.latest else ""
                size = info.size_bytes / 2**20
                short_id = info.image_id.removeprefix("sha256:")[:12]
                print(f"{info.tag:<32} {short_id}  {size:7.0f} MiB  {info.created[:19]}{latest}")
    except ImageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
