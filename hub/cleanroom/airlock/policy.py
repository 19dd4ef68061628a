"""The airlock policy: approval quorum and submission limits, loaded from YAML.

The policy is data (``policies/airlock.yaml``). Loading validates every key, so a typo
or a bad value stops the service at start with a message that names the key and the fix,
rather than silently falling back to a default.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cleanroom.policy_files import load_yaml, policy_path

from .exceptions import PolicyError

_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3}
_UNITS |= {"kib": 1024, "mib": 1024**2, "gib": 1024**3}
_SIZE = re.compile(r"^\s*(\d+)\s*([a-z]*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Limits:
    """What one submission may hold and how often a user may submit."""

    files_per_request: int = 20
    bytes_per_file: int = 50 * 1024**2
    bytes_per_request: int = 200 * 1024**2
    requests_per_user_per_day: int = 20
    # The justification and each file's description: free text that reaches officers
    # (and, after review, its author), so it is bounded and checked like a file.
    text_characters: int = 2000


@dataclass(frozen=True)
class Policy:
    """The whole airlock policy."""

    approvals_required: int = 2
    # A byte-identical repeat of a submission inside this window returns the first one.
    duplicate_window_seconds: int = 600
    limits: Limits = Limits()


def parse_size(value: Any, key: str) -> int:
    """A byte count from an int or a string such as ``"50 MiB"``; refuse anything else."""
    if isinstance(value, bool):
        raise PolicyError(f"{key}: expected a size such as 1048576 or '50 MiB', got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and (m := _SIZE.match(value)) and m[2].lower() in _UNITS:
        number = int(m[1]) * _UNITS[m[2].lower()]
    else:
        raise PolicyError(
            f"{key}: expected a size such as 1048576 or '50 MiB' (units B, KB, MB, GB, KiB, "
            f"MiB, GiB), got {value!r}"
        )
    if number <= 0:
        raise PolicyError(f"{key}: must be greater than zero, got {value!r}")
    return number


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise PolicyError(f"{key}: expected a whole number greater than zero, got {value!r}")
    return value


def _check_keys(data: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise PolicyError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def policy_from_dict(data: Any, source: str = "policy") -> Policy:
    """Validate a parsed policy document; every refusal names the key at fault."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    _check_keys(data, {"approvals_required", "duplicate_window_seconds", "limits"}, source)
    defaults = Policy()
    limits_data = data.get("limits")
    if limits_data is None:
        limits_data = {}
    if not isinstance(limits_data, dict):
        raise PolicyError(f"{source}: limits: expected a mapping")
    limit_keys = {
        "files_per_request",
        "bytes_per_file",
        "bytes_per_request",
        "requests_per_user_per_day",
        "text_characters",
    }
    _check_keys(limits_data, limit_keys, f"{source}: limits")
    d = Limits()
    limits = Limits(
        files_per_request=_positive_int(
            limits_data.get("files_per_request", d.files_per_request), "limits.files_per_request"
        ),
        bytes_per_file=parse_size(
            limits_data.get("bytes_per_file", d.bytes_per_file), "limits.bytes_per_file"
        ),
        bytes_per_request=parse_size(
            limits_data.get("bytes_per_request", d.bytes_per_request), "limits.bytes_per_request"
        ),
        requests_per_user_per_day=_positive_int(
            limits_data.get("requests_per_user_per_day", d.requests_per_user_per_day),
            "limits.requests_per_user_per_day",
        ),
        text_characters=_positive_int(
            limits_data.get("text_characters", d.text_characters), "limits.text_characters"
        ),
    )
    if limits.bytes_per_file > limits.bytes_per_request:
        raise PolicyError(
            f"{source}: limits.bytes_per_file ({limits.bytes_per_file}) exceeds "
            f"limits.bytes_per_request ({limits.bytes_per_request}); lower the first or raise "
            "the second"
        )
    return Policy(
        approvals_required=_positive_int(
            data.get("approvals_required", defaults.approvals_required), "approvals_required"
        ),
        duplicate_window_seconds=_positive_int(
            data.get("duplicate_window_seconds", defaults.duplicate_window_seconds),
            "duplicate_window_seconds",
        ),
        limits=limits,
    )


def default_policy_path() -> Path:
    """``$CLEANROOM_AIRLOCK_POLICY``, else ``airlock.yaml`` in the policies folder."""
    env = os.environ.get("CLEANROOM_AIRLOCK_POLICY")
    if env:
        return Path(env)
    return policy_path("airlock.yaml")


def load_policy(path: Path | None = None) -> Policy:
    """Read and validate the policy file; a missing or broken file is a clear error."""
    path = path or default_policy_path()
    data = load_yaml(path, what="airlock policy", error=PolicyError)
    return policy_from_dict(data, str(path))
