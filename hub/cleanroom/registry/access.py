"""A project's access mode: how its workspaces reach the researcher.

- ``standard``: JupyterLab in the researcher's own browser, through the egress gateway
  (budget, route allowlist, kernel-message rules).
- ``restricted``: the researcher's browser never talks to JupyterLab. A viewer
  container on the project's side runs Chromium on a virtual display pointed at the
  workspace, and the gateway passes only its noVNC page and VNC stream; every other
  route answers 403 (docs/restricted-mode.md).

The operator sets a project's mode (``cleanroom projects mode NAME restricted``,
journaled as ``project.access_mode``). :func:`project_access_mode` is the one place the
spawner asks; a rule that makes a project restricted for another reason (its datasets'
classification) belongs there, so that every start sees it.
"""

from __future__ import annotations

from cleanroom.errors import InvalidInput
from cleanroom.registry.store import ProjectInfo, Registry

STANDARD = "standard"
RESTRICTED = "restricted"
ACCESS_MODES = (STANDARD, RESTRICTED)


def check_access_mode(mode: str) -> None:
    """Refuse a mode that is not one of :data:`ACCESS_MODES`, naming them."""
    if mode not in ACCESS_MODES:
        raise InvalidInput(f"unknown access mode {mode!r}; known: {', '.join(ACCESS_MODES)}")


def access_mode_of(project: ProjectInfo) -> str:
    """The mode a workspace of ``project`` (as the registry read it) runs in.

    The operator's setting; the stricter mode wins once other rules (dataset
    classification) add theirs here.
    """
    mode = project.access_mode or STANDARD
    return mode if mode in ACCESS_MODES else RESTRICTED  # unknown: fail closed


def project_access_mode(registry: Registry, project: str) -> str:
    """The access mode of ``project`` now (raises NotFound for an unknown project)."""
    return access_mode_of(registry.get_project(project))


def is_restricted(project: ProjectInfo) -> bool:
    """Whether workspaces of ``project`` reach the researcher only as pixels."""
    return access_mode_of(project) == RESTRICTED
