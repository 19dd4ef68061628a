"""Idle culling policy (``policies/culling.yaml``): idle workspaces and idle kernels.

Workspaces are stopped by ``jupyterhub-idle-culler``, a hub-managed service; kernels are
shut down by each workspace's own server (``MappingKernelManager.cull_*``), so a kernel
that sits idle gives its memory back while the workspace stays. Environment variables
override the policy for tests and demonstrations (seconds):
``CLEANROOM_CULL_IDLE_TIMEOUT``, ``CLEANROOM_CULL_EVERY``, ``CLEANROOM_KERNEL_CULL_TIMEOUT``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cleanroom.errors import InvalidInput
from cleanroom.policy_files import load_yaml, policy_path

CULLER_SERVICE = "idle-culler"


@dataclass(frozen=True)
class CullingPolicy:
    """Timeouts in seconds; 0 switches that culling off."""

    server_idle_timeout: int = 14400
    server_check_every: int = 300
    kernel_idle_timeout: int = 7200
    kernel_check_every: int = 300
    cull_connected: bool = False
    cull_busy: bool = False


def _seconds(section: dict[str, Any], key: str, where: str, default: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{where}.{key}: {value!r} must be a whole number of seconds >= 0")
    return value


def _flag(section: dict[str, Any], key: str, where: str) -> bool:
    value = section.get(key, False)
    if not isinstance(value, bool):
        raise InvalidInput(f"{where}.{key}: {value!r} must be true or false")
    return value


def _env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    if not raw.isdigit():
        raise InvalidInput(f"{name}={raw!r} must be a whole number of seconds")
    return int(raw)


def load_policy(path: Path | None = None) -> CullingPolicy:
    """The culling policy, validated, with environment overrides applied."""
    path = path or policy_path("culling.yaml")
    # No file: the defaults below are a complete policy.
    data = load_yaml(path, what="culling policy", error=InvalidInput, missing_ok=True) or {}
    if not isinstance(data, dict) or set(data) - {"servers", "kernels"}:
        raise InvalidInput(f"{path}: only 'servers' and 'kernels' sections are known")
    servers, kernels = data.get("servers") or {}, data.get("kernels") or {}
    for name, section, known in [
        ("servers", servers, {"idle_timeout", "check_every"}),
        ("kernels", kernels, {"idle_timeout", "check_every", "cull_connected", "cull_busy"}),
    ]:
        if not isinstance(section, dict):
            raise InvalidInput(f"{path}: {name} must be a mapping")
        unknown = set(section) - known
        if unknown:
            raise InvalidInput(f"{path}: {name}: unknown key(s) {', '.join(sorted(unknown))}")
    d = CullingPolicy()
    return CullingPolicy(
        server_idle_timeout=_env(
            "CLEANROOM_CULL_IDLE_TIMEOUT",
            _seconds(servers, "idle_timeout", f"{path}: servers", d.server_idle_timeout),
        ),
        server_check_every=_env(
            "CLEANROOM_CULL_EVERY",
            _seconds(servers, "check_every", f"{path}: servers", d.server_check_every),
        ),
        kernel_idle_timeout=_env(
            "CLEANROOM_KERNEL_CULL_TIMEOUT",
            _seconds(kernels, "idle_timeout", f"{path}: kernels", d.kernel_idle_timeout),
        ),
        kernel_check_every=_seconds(kernels, "check_every", f"{path}: kernels", 300),
        cull_connected=_flag(kernels, "cull_connected", f"{path}: kernels"),
        cull_busy=_flag(kernels, "cull_busy", f"{path}: kernels"),
    )


def kernel_args(policy: CullingPolicy) -> list[str]:
    """Arguments for the workspace's Jupyter server that make it cull idle kernels."""
    if not policy.kernel_idle_timeout:
        return []
    return [
        f"--MappingKernelManager.cull_idle_timeout={policy.kernel_idle_timeout}",
        f"--MappingKernelManager.cull_interval={max(1, policy.kernel_check_every)}",
        f"--MappingKernelManager.cull_connected={policy.cull_connected}",
        f"--MappingKernelManager.cull_busy={policy.cull_busy}",
    ]


def culler_service(policy: CullingPolicy) -> dict[str, Any] | None:
    """The hub-managed ``jupyterhub-idle-culler`` service (None when culling is off)."""
    if not policy.server_idle_timeout:
        return None
    return {
        "name": CULLER_SERVICE,
        "command": [
            # jupyterhub-idle-culler is not ours: started so that it ends with the hub.
            *(sys.executable, "-m", "cleanroom.hub.lifeline", "--"),
            sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            f"--timeout={policy.server_idle_timeout}",
            f"--cull-every={max(1, policy.server_check_every)}",
            # Named servers are what we cull; user records stay (they are the registry's).
            "--cull-users=false",
        ],
    }


def culler_role() -> dict[str, Any]:
    """The scopes jupyterhub-idle-culler documents for culling servers (not users)."""
    return {
        "name": CULLER_SERVICE,
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": [CULLER_SERVICE],
    }
