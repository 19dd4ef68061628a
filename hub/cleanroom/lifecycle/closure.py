"""Closing a project, and tearing the deployment down.

``close_project`` stops the project's workspaces, archives what the retention policy keeps
(an encrypted backup of its folders and blobs), releases its filesystems (volumes, loop
devices, unlocked mounts), removes its network and writes the record; then the retention
round deletes at once whatever the policy keeps for no time. Each step is idempotent:
closing again finishes a closure that was interrupted.

``teardown`` removes everything the deployment made on this host, found by its instance
label (containers, volumes, networks, the firewall chain, loop devices and unlocked
mounts of its filesystems; its images on request), and reports what it left: the state
folder, backups and the key file are data, never removed here.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cleanroom import paths
from cleanroom.errors import CleanroomError
from cleanroom.registry.events import ProjectClosed


@dataclass
class ClosureReport:
    """What closing one project did."""

    project: str
    stopped: list[str] = field(default_factory=list)
    archive: str | None = None
    released: int = 0
    network_removed: bool = False
    deleted: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One paragraph for the operator."""
        parts = [
            f"project {self.project} is closed",
            f"stopped {len(self.stopped)} workspace(s)",
            f"archive {self.archive}" if self.archive else "no archive (policy)",
            f"released {self.released} filesystem(s)",
            "network removed" if self.network_removed else "no network to remove",
        ]
        if self.deleted:
            parts.append("deleted now: " + ", ".join(self.deleted))
        return "; ".join(parts)


def project_paths(state: Path, project: str) -> list[Path]:
    """The state folder's paths that hold a project's data (for its archive)."""
    return [state / "workspaces" / project, state / "airlock" / "blobs" / project]


def close_project(
    registry: Any,
    project: str,
    *,
    actor: str,
    instance: str,
    state: Path | None = None,
    repository: Path | None = None,
    now: datetime | None = None,
    stop_through_hub: bool = True,
    blobs: Any = None,
    airlock: Any = None,
    keyring: Any = None,
) -> ClosureReport:
    """Close ``project`` (see the module docstring); the report of what was done.
    ``actor`` is the authenticated person: an operator in standing, else Forbidden."""
    import docker

    from cleanroom.isolation.networks import ProjectNetworks
    from cleanroom.lifecycle import backup, retention
    from cleanroom.registry.governance import Governance
    from cleanroom.workspace import storage_quota
    from cleanroom.workspace.containers import workspace_containers
    from cleanroom.workspace.labels import LABEL_USER

    state = Path(state or paths.state_dir())
    policy = retention.load_policy()  # a broken policy stops the closure before any change
    info = registry.get_project(project)
    # A decision: an operator in standing, the authenticated person, before any change.
    Governance(registry).people.check_may_act(actor, "operator", what="close projects")
    report = ClosureReport(project)
    Governance(registry).set_project_status(project, "closed", actor=actor)
    client = docker.from_env()
    for container in workspace_containers(project=project, instance=instance, client=client):
        user = container.labels.get(LABEL_USER, "")
        if stop_through_hub:
            from cleanroom.hub.api import HubAPI

            # The hub may be down: the container is stopped below either way.
            with contextlib.suppress(CleanroomError):
                HubAPI().stop_server(user, project)
        with contextlib.suppress(docker.errors.NotFound):
            container.stop(timeout=5)
        report.stopped.append(user)
    if policy.archive:
        included = [p for p in project_paths(state, project) if p.exists()]
        if included:
            snap, _ = backup.create(state, repository, only=included, label=f"project:{project}")
            report.archive = snap.id
    folder = state / "workspaces" / project
    if folder.is_dir():
        for image_file in sorted(folder.rglob("*.ext4")):
            report.released += storage_quota.release_folder(client, instance, image_file)
    # Dataset versions no workspace uses any more are locked again (its workspaces were
    # stopped here, perhaps not through the hub): cleanroom.library.at_rest.
    from cleanroom.library import at_rest

    at_rest.lock_unused(state / "library")
    report.network_removed = ProjectNetworks(client, instance=instance).remove(project)
    Governance(registry).record(
        ProjectClosed(
            actor=actor, project=project, stopped=tuple(report.stopped), archive=report.archive,
            released=report.released, network_removed=report.network_removed, was=info.status,
        ),
        actor=actor,
    )  # fmt: skip
    for done in retention.enforce_retention(
        registry, instance=instance, now=now or datetime.now(UTC), policy=policy,
        workspaces=state / "workspaces", blobs=blobs, airlock=airlock, keyring=keyring,
        only=project, log=lambda _: None,
    ):  # fmt: skip
        report.deleted.append(f"{done.kind} ({done.items})")
    return report


@dataclass
class TeardownReport:
    """What a teardown removed and what it left on the host."""

    removed: dict[str, list[str]] = field(default_factory=dict)
    left: list[str] = field(default_factory=list)

    def add(self, kind: str, name: str) -> None:
        """Note one removed thing."""
        self.removed.setdefault(kind, []).append(name)


def teardown(instance: str, *, state: Path | None = None, images: bool = False) -> TeardownReport:
    """Remove what deployment ``instance`` made on this host; report what is left."""
    import docker

    from cleanroom.isolation.firewall import HostFirewall
    from cleanroom.settings import Settings, image_repository
    from cleanroom.workspace import encrypted_fs, storage_quota

    state = Path(state or paths.state_dir())
    client = docker.from_env()
    report = TeardownReport()
    label = {"label": f"cleanroom.instance={instance}"}
    for container in client.containers.list(all=True, filters=label):
        container.remove(force=True)
        report.add("containers", container.name)
    # Filesystems first (their volumes name them), then the remaining volumes.
    # The library's dataset versions are filesystems too (cleanroom.library.at_rest).
    for image_file in sorted(
        f for folder in (state / "workspaces", state / "library") if folder.is_dir()
        for f in folder.rglob("*.ext4")
    ):  # fmt: skip
        name = storage_quota.volume_name(instance, image_file)
        if storage_quota.release_folder(client, instance, image_file):
            report.add("filesystems released", str(image_file.relative_to(state)))
        else:
            report.left.append(f"filesystem {image_file} (still mounted: {name})")
    for volume in client.volumes.list(filters=label):
        volume.remove(force=True)
        report.add("volumes", volume.name)
    for network in client.networks.list(filters=label):
        try:
            network.remove()
            report.add("networks", network.name)
        except docker.errors.APIError as exc:
            report.left.append(f"network {network.name}: {exc}")
    settings = Settings.from_env()
    firewall = HostFirewall(settings.firewall_ports, instance)
    if firewall.is_installed():
        firewall.remove()
        report.add("firewall chains", f"CLEANROOM-{instance.upper()}")
    if images:
        for image in client.images.list(name=f"{image_repository()}/*"):
            for tag in image.tags:
                client.images.remove(tag, force=True)
                report.add("images", tag)
    else:
        kept = [t for i in client.images.list(name=f"{image_repository()}/*") for t in i.tags]
        if kept:
            report.left.append(f"images (remove with --images): {', '.join(sorted(kept))}")
    if encrypted_fs.MOUNT_ROOT.is_dir():
        for mnt in sorted(encrypted_fs.MOUNT_ROOT.iterdir()):
            report.left.append(f"an unlocked folder of another deployment at {mnt}")
    for what, path in (
        ("the state folder (data: registry, library, folders, blobs)", state),
        ("backups", state.parent / "backups"),
    ):
        if path.exists():
            size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            report.left.append(f"{what}: {path} ({size / 2**20:.1f} MiB); remove by hand")
    shutil.rmtree(state / "run", ignore_errors=True)
    return report
