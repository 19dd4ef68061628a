"""Quota tiers from ``policies/quotas.yaml``, validated at load with clear errors.

A tier sets per-workspace limits the container engine enforces (CPU, memory, processes,
GPUs), the size of each work folder and of the project's shared folder (filesystems of
that size, so a full folder refuses writes), the size of the home folder and of
``/tmp``/``/var/tmp`` (tmpfs mounts: the root filesystem is read-only), and how many
workspaces may run at once for the project and for one user.

A tier with GPUs accepts only images that can use one (:func:`check_image_fits_tier`):
a GPU handed to a CPU-only torch would sit idle while the tier's other limits are spent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cleanroom.errors import Forbidden, InvalidInput, NotFound
from cleanroom.policy_files import load_yaml, policy_path

# The image label that says an image can use a GPU, and the accelerators we know. The
# label is set by the image's definition (images/pytorch-cuda/image.config), which
# operators build; researchers cannot label images.
ACCELERATOR_LABEL = "cleanroom.accelerator"
GPU_ACCELERATORS = frozenset({"cuda"})

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(value: Any, key: str) -> int:
    """Bytes from ``512M``, ``2G``, ``2GiB`` or a plain integer."""
    if isinstance(value, int) and value > 0:
        return value
    match = _SIZE.match(str(value).strip())
    if not match:
        raise InvalidInput(f"{key}: {value!r} is not a size such as 512M or 2G")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


_KEYS = {
    "cpu",
    "memory",
    "pids",
    "gpus",
    "storage",
    "project_storage",
    "workspaces",
    "workspaces_per_user",
    "home",
    "tmp",
}
# Sizes of the tmpfs mounts when a tier does not name them: room for caches, IPython's
# history and matplotlib's fonts, and for ordinary temporary files; at most an eighth of
# the tier's memory each (they are held in memory).
DEFAULT_HOME_BYTES = 256 * 1024**2
DEFAULT_TMP_BYTES = 256 * 1024**2


@dataclass(frozen=True)
class QuotaTier:
    """Per-workspace limits, folder sizes and concurrency of one tier.

    ``storage_bytes``/``project_storage_bytes`` of None keep plain folders (no size
    limit); ``max_workspaces``/``max_workspaces_per_user`` of None mean no limit.
    """

    name: str
    cpu: float
    memory_bytes: int
    pids: int
    gpus: int = 0
    storage_bytes: int | None = None
    project_storage_bytes: int | None = None
    max_workspaces: int | None = None
    max_workspaces_per_user: int | None = None
    home_bytes: int = DEFAULT_HOME_BYTES
    tmp_bytes: int = DEFAULT_TMP_BYTES


def _count(spec: dict[str, Any], key: str, where: str, minimum: int) -> int | None:
    if key not in spec:
        return None
    value = spec[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(f"{where}.{key}: {value!r} must be a whole number >= {minimum}")
    return value


def _size(spec: dict[str, Any], key: str, where: str) -> int | None:
    if key not in spec:
        return None
    size = parse_size(spec[key], f"{where}.{key}")
    if size < 16 * 1024**2:
        raise InvalidInput(f"{where}.{key}: {spec[key]!r} is too small (at least 16M)")
    return size


def load_tiers(path: Path | None = None) -> dict[str, QuotaTier]:
    """Every tier in the quota policy, validated."""
    path = path or policy_path("quotas.yaml")
    data = load_yaml(path, what="quota policy", error=InvalidInput)
    tiers = (data or {}).get("tiers")
    if not isinstance(tiers, dict) or not tiers:
        raise InvalidInput(f"{path}: 'tiers' must map tier names to limits")
    loaded = {}
    for name, spec in tiers.items():
        where = f"{path}: tiers.{name}"
        if not isinstance(spec, dict):
            raise InvalidInput(f"{where} must be a mapping")
        unknown = set(spec) - _KEYS
        if unknown:
            raise InvalidInput(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        try:
            cpu = float(spec["cpu"])
            pids = int(spec["pids"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"{where}: cpu and pids are required numbers ({exc})") from exc
        if cpu <= 0 or pids < 16:
            raise InvalidInput(f"{where}: cpu must be > 0 and pids at least 16")
        memory = parse_size(spec.get("memory"), f"{where}.memory")
        home = _size(spec, "home", where) or min(DEFAULT_HOME_BYTES, memory // 8)
        tmp = _size(spec, "tmp", where) or min(DEFAULT_TMP_BYTES, memory // 8)
        # tmpfs pages count against the memory limit: a full tmpfs larger than the
        # memory would end in the OOM killer instead of "No space left on device".
        if home + 3 * tmp >= memory:
            raise InvalidInput(
                f"{where}: home ({home // 1024**2} MiB) plus three times tmp "
                f"({tmp // 1024**2} MiB, for /tmp, /var/tmp and /dev/shm) must stay below "
                f"memory ({memory // 1024**2} MiB): they are held in memory"
            )
        loaded[name] = QuotaTier(
            name,
            cpu,
            memory,
            pids,
            gpus=_count(spec, "gpus", where, 0) or 0,
            storage_bytes=_size(spec, "storage", where),
            project_storage_bytes=_size(spec, "project_storage", where),
            max_workspaces=_count(spec, "workspaces", where, 1),
            max_workspaces_per_user=_count(spec, "workspaces_per_user", where, 1),
            home_bytes=home,
            tmp_bytes=tmp,
        )
    return loaded


def tier(name: str, path: Path | None = None) -> QuotaTier:
    """One tier by name."""
    tiers = load_tiers(path)
    if name not in tiers:
        raise NotFound(f"there is no quota tier {name!r}; known: {', '.join(sorted(tiers))}")
    return tiers[name]


def can_image_use_gpu(labels: Mapping[str, str] | None) -> bool:
    """Whether an image with these labels can use a GPU (``cleanroom.accelerator=cuda``)."""
    return (labels or {}).get(ACCELERATOR_LABEL, "").strip().lower() in GPU_ACCELERATORS


def can_image_fit_tier(tier: QuotaTier, labels: Mapping[str, str] | None) -> bool:
    """Whether a workspace of ``tier`` may run an image with these labels."""
    return not tier.gpus or can_image_use_gpu(labels)


def check_image_fits_tier(tier: QuotaTier, image: str, labels: Mapping[str, str] | None) -> None:
    """Raise :class:`Forbidden` when ``tier`` attaches GPUs and ``image`` cannot use them.

    Tiers without GPUs accept every image (a CUDA image runs on the CPU too).
    """
    if can_image_fit_tier(tier, labels):
        return
    raise Forbidden(
        f"quota tier {tier.name!r} attaches {tier.gpus} GPU(s), but image {image!r} cannot "
        f"use a GPU (it has no {ACCELERATOR_LABEL}=cuda label); start the workspace with a "
        f"CUDA image such as pytorch-cuda, which an operator builds with "
        f"`cleanroom images build pytorch-cuda` and allows for the project"
    )
