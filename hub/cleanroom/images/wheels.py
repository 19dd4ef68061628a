"""Find the wheels of pinned requirements on this machine, without downloading anything.

The big images (torch and, for ``pytorch-cuda``, its gigabytes of ``nvidia-*`` wheels)
are installed from wheels mounted into the build container, so they never land in a
layer of their own and are not fetched again. They are looked for in what pip itself
would read here: ``find-links`` folders (``pip config list``, ``$PIP_FIND_LINKS``) and
``file://`` simple indexes (``index-url``/``extra-index-url``, PEP 503 pages), or in one
folder the operator names (``--wheel-dir``).

Compatibility is decided with ``packaging``'s wheel tags for the images' interpreter
(CPython 3.11 on x86-64 glibc), not this host's.
"""

from __future__ import annotations

import functools
import html.parser
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urljoin, urlparse

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

# Debian bookworm's python3 and glibc 2.36: what a wheel for the images must fit.
PYTHON_VERSION = (3, 11)
_PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)] + [
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
    "linux_x86_64",
]
IMAGE_TAGS: frozenset[Tag] = frozenset(
    [
        *cpython_tags(PYTHON_VERSION, platforms=_PLATFORMS),
        *compatible_tags(PYTHON_VERSION, "cp311", platforms=_PLATFORMS),
    ]
)


@dataclass(frozen=True)
class LocalWheel:
    """A wheel file on this machine; ``sha256`` when its index page states it."""

    path: Path
    sha256: str | None = None


@functools.cache
def pip_config() -> dict[str, str]:
    """This machine's pip configuration (``pip config list``) as key -> value."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    )
    values: dict[str, str] = {}
    for line in done.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip("'\"")
    return values


def pip_setting(option: str) -> list[str]:
    """Every value of pip option ``option`` here: its environment variable, then config."""
    env = os.environ.get(f"PIP_{option.upper().replace('-', '_')}")
    found = [env] if env else []
    found += [v for k, v in pip_config().items() if k.endswith(f".{option}")]
    return [item for value in found for item in value.split()]


@dataclass(frozen=True)
class Source:
    """A place wheels are looked for: a folder, or a ``file://`` simple index."""

    kind: Literal["folder", "index"]
    location: str

    def __str__(self) -> str:
        return self.location


def _as_path(location: str) -> Path:
    if location.startswith("file:"):
        return Path(unquote(urlparse(location).path))
    return Path(location)


def local_sources(wheel_dir: Path | None = None) -> list[Source]:
    """Where wheels are looked for: ``wheel_dir`` alone, else pip's local places.

    Remote indexes and links are left out on purpose: this module never downloads.
    """
    if wheel_dir is not None:
        return [Source("folder", str(wheel_dir))]
    # pip's config lists a value once per scope that sets it: keep each place once.
    sources = [
        Source("folder", v)
        for v in pip_setting("find-links")
        if "://" not in v or v.startswith("file:")
    ]
    sources += [
        Source("index", v.rstrip("/") + "/")
        for v in pip_setting("index-url") + pip_setting("extra-index-url")
        if v.startswith("file:")
    ]
    return list(dict.fromkeys(sources))


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def _index_candidates(index: str, name: str) -> list[LocalWheel]:
    """Wheels a ``file://`` simple index lists for ``name`` (PEP 503)."""
    page_url = urljoin(index, f"{canonicalize_name(name)}/")
    page = Path(unquote(urlparse(page_url).path)) / "index.html"
    if not page.is_file():
        return []
    parser = _Links()
    parser.feed(page.read_text(errors="replace"))
    found = []
    for href in parser.hrefs:
        url, _, fragment = urljoin(page_url, href).partition("#")
        path = Path(unquote(urlparse(url).path))
        digest = fragment.removeprefix("sha256=") if fragment.startswith("sha256=") else None
        found.append(LocalWheel(path, digest))
    return found


def _folder_candidates(folder: str) -> list[LocalWheel]:
    path = _as_path(folder)
    return [LocalWheel(p) for p in sorted(path.glob("*.whl"))] if path.is_dir() else []


def find_wheel(name: str, version: str, sources: list[Source]) -> LocalWheel | None:
    """The local wheel of ``name==version`` that fits the images, or None.

    ``version`` is compared as a version (``2.14.1`` does not match ``2.14.1+cpu``). The
    first source that has one wins; within a source, the last by file name.
    """
    try:
        wanted = Version(version)
    except InvalidVersion:
        return None
    for source in sources:
        if source.kind == "index":
            candidates = _index_candidates(source.location, name)
        else:
            candidates = _folder_candidates(source.location)
        fitting = []
        for wheel in candidates:
            try:
                found_name, found_version, _build, tags = parse_wheel_filename(wheel.path.name)
            except InvalidWheelFilename:
                continue
            if (
                found_name == canonicalize_name(name)
                and found_version == wanted
                and tags & IMAGE_TAGS
                and wheel.path.is_file()
            ):
                fitting.append(wheel)
        if fitting:
            return sorted(fitting, key=lambda w: w.path.name)[-1]
    return None


def pinned_requirements(text: str) -> list[tuple[str, str]]:
    """``(name, version)`` of every ``name==version`` line of a requirements file.

    Raises ValueError naming the line when a requirement is not pinned exactly: the
    images' inputs hash is only honest when every package is.
    """
    pins = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not name.strip() or not version.strip() or ";" in line or "[" in name:
            raise ValueError(f"line {number}: {raw.strip()!r} is not pinned as name==version")
        pins.append((name.strip(), version.strip()))
    return pins
