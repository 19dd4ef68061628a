"""What a workspace pod is, as pure functions of a plan (no cluster, no hub).

The Kubernetes twin of :mod:`cleanroom.workspace.spec`: the same workspace policy (the
project's allowed image only, datasets read-only at ``/data/<name>``, the work folder and
the project folder as claims of the quota tier's size, CPU, memory and GPUs from the tier,
a read-only root with size-limited scratch folders) expressed as pod settings that
:class:`cleanroom.kubernetes.spawner.CleanroomKubeSpawner` hands to KubeSpawner, and
:func:`check_pod`, which refuses any pod manifest that would not hold the wall.

Where the two backends differ, and why:

- **uids**: the Docker wall starts the entry point as root with five capabilities to split
  the server (uid 1001) from kernels (uid 1000). A pod here runs as non-root with every
  capability dropped and no privilege escalation, as the issue asks and as Pod Security
  "restricted" requires, so the server and its kernels share uid 1000. The egress
  gateway's per-start server secret is in the pod's environment as on Docker, but kernel
  code (same uid) can read it: the gateway's proof then does not tell the real server
  from another process of the pod; its route, budget and content rules hold whatever
  answers (docs/kubernetes.md).
- **seccomp**: ``RuntimeDefault`` (the container runtime's own profile). Our own profile
  would have to be installed on every node as a file (``Localhost``), which an operator's
  cluster may not allow; RuntimeDefault is what the restricted profile asks for.
- **folders**: PersistentVolumeClaims of the tier's size, provisioned by the operator's
  storage class; datasets are read-only claims of PersistentVolumes made from the data
  library's folders. Size limits are the storage class's to enforce (hostPath, used on the
  one-node test cluster, enforces none: docs/kubernetes.md).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from cleanroom.errors import CleanroomError
from cleanroom.registry import ProjectInfo
from cleanroom.workspace.folders import WORKSPACE_HOME
from cleanroom.workspace.labels import (
    LABEL_IMAGE,
    LABEL_INSTANCE,
    LABEL_KIND,
    LABEL_PROJECT,
    LABEL_USER,
)
from cleanroom.workspace.quotas import QuotaTier
from cleanroom.workspace.spec import RESEARCHER_UID, SERVER_RUN_DIR

SERVER_PORT = 8888
GPU_RESOURCE = "nvidia.com/gpu"
# Annotations carry the exact values (labels are limited to 63 safe characters).
ANNOTATION_PREFIX = "cleanroom/"
LABEL_DATASETS = "cleanroom.datasets"
# Labels of our own objects besides pods (claims, volumes, policies).
LABEL_COMPONENT = "cleanroom.component"

_LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$")


class PodSpecError(CleanroomError):
    """A pod manifest that would not hold the wall; nothing is created."""

    status = 500


def label_value(value: str) -> str:
    """``value`` as a valid label value: itself when it is one, else a readable prefix and
    a hash (the exact value is in the matching annotation)."""
    if _LABEL_VALUE.match(value):
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:10]
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", value)[:40].strip("-_.")
    return f"{safe}-{digest}" if safe else f"x-{digest}"


def dns_name(*parts: str) -> str:
    """An object name (DNS-1123 label, 63 characters at most) made of ``parts``: readable
    where it fits, with a hash of the exact parts so two different inputs never meet."""
    raw = "-".join(parts)
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]
    safe = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    return f"{safe[: 63 - 9].rstrip('-')}-{digest}"


@dataclass(frozen=True)
class PodPlan:
    """Everything the pod of one workspace is decided from."""

    user: str
    project: ProjectInfo
    tier: QuotaTier
    image: str  # the name people know (``notebook``)
    image_ref: str  # what the cluster runs (``cleanroom/notebook:latest``)
    instance: str


def selector_labels(instance: str, project: str) -> dict[str, str]:
    """The labels every workspace pod of ``project`` carries: what policies select."""
    return {
        LABEL_KIND: "workspace",
        LABEL_INSTANCE: label_value(instance),
        LABEL_PROJECT: label_value(project),
    }


def labels(plan: PodPlan) -> dict[str, str]:
    """The pod's labels: user, project, image, instance, kind (never a secret)."""
    return {
        **selector_labels(plan.instance, plan.project.name),
        LABEL_USER: label_value(plan.user),
        LABEL_IMAGE: label_value(plan.image),
    }


def pod_annotations(plan: PodPlan) -> dict[str, str]:
    """The exact user, project and image, and the datasets with their versions."""
    return {
        f"{ANNOTATION_PREFIX}user": plan.user,
        f"{ANNOTATION_PREFIX}project": plan.project.name,
        f"{ANNOTATION_PREFIX}image": plan.image,
        f"{ANNOTATION_PREFIX}datasets": ",".join(
            dataset_key(d.name, d.version) for d in plan.project.datasets
        ),
    }


def pod_security_context() -> dict[str, Any]:
    """Non-root uid and gid 1000, files of claims group-owned by 1000, RuntimeDefault seccomp."""
    return {
        "runAsUser": RESEARCHER_UID,
        "runAsGroup": RESEARCHER_UID,
        "fsGroup": RESEARCHER_UID,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """No privilege escalation, every capability dropped, a read-only root filesystem."""
    return {
        "runAsUser": RESEARCHER_UID,
        "runAsGroup": RESEARCHER_UID,
        "runAsNonRoot": True,
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(tier: QuotaTier) -> dict[str, dict[str, str]]:
    """CPU, memory and GPUs of the tier as limits, with requests equal to the limits (the
    pod is "Guaranteed": never squeezed below its tier, never over it)."""
    limits = {"cpu": f"{round(tier.cpu * 1000)}m", "memory": str(tier.memory_bytes)}
    if tier.gpus:
        limits[GPU_RESOURCE] = str(tier.gpus)
    return {"limits": dict(limits), "requests": dict(limits)}


def work_claim_name(instance: str, project: str, user: str) -> str:
    """The claim of ``user``'s work folder on ``project``."""
    return dns_name("cr", instance, project, user, "work")


def project_claim_name(instance: str, project: str) -> str:
    """The claim of ``project``'s shared folder."""
    return dns_name("cr", instance, project, "shared")


def dataset_claim_name(instance: str, name: str, version: str) -> str:
    """The read-only claim of one dataset version."""
    return dns_name("cr", instance, "ds", name, version)


def _claim(
    name: str,
    namespace: str,
    size: int | None,
    access: str,
    storage_class: str | None,
    labels_: dict[str, str],
    volume_name: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": [access],
        # A tier without a size still needs a request: 1Gi, the storage class decides.
        "resources": {"requests": {"storage": str(size or 1024**3)}},
    }
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if volume_name:
        spec["volumeName"] = volume_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace, "labels": labels_},
        "spec": spec,
    }


def claims(
    plan: PodPlan, namespace: str, storage_class: str | None, *, static: bool = False
) -> list[dict[str, Any]]:
    """The workspace's claims: work folder (tier's ``storage``), project folder (tier's
    ``project_storage``, shared by members: ReadWriteMany), one read-only claim per
    dataset.

    Folders are provisioned by ``storage_class`` (None: the cluster's default class);
    ``static``: no provisioner, each folder claim names its volume of
    :func:`folder_volumes`. Datasets are always bound to their volume of
    :func:`dataset_volumes` (never provisioned: the data are the library's).
    """
    inst, project = plan.instance, plan.project.name
    base = {LABEL_INSTANCE: label_value(inst), LABEL_PROJECT: label_value(project)}
    out = folder_claims(plan, namespace, storage_class, static=static)
    for ds in plan.project.datasets:
        name = dataset_claim_name(inst, ds.name, ds.version)
        out.append(
            _claim(
                name,
                namespace,
                None,
                "ReadOnlyMany",
                "",
                {**base, LABEL_COMPONENT: "dataset"},
                name,
            )
        )
    return out


def folder_claims(
    plan: PodPlan, namespace: str, storage_class: str | None, *, static: bool = False
) -> list[dict[str, Any]]:
    """The work folder's and the project folder's claims of :func:`claims` (what
    :mod:`cleanroom.kubernetes.ahead` makes before a member's first start)."""
    inst, project = plan.instance, plan.project.name
    base = {LABEL_INSTANCE: label_value(inst), LABEL_PROJECT: label_value(project)}
    work = work_claim_name(inst, project, plan.user)
    shared = project_claim_name(inst, project)
    folder_class = "" if static else storage_class
    out = [
        _claim(
            work,
            namespace,
            plan.tier.storage_bytes,
            "ReadWriteOnce",
            folder_class,
            {**base, LABEL_COMPONENT: "work", LABEL_USER: label_value(plan.user)},
            work if static else None,
        ),
        _claim(
            shared,
            namespace,
            plan.tier.project_storage_bytes,
            "ReadWriteMany",
            folder_class,
            {**base, LABEL_COMPONENT: "project"},
            shared if static else None,
        ),
    ]
    return out


def _volume(
    name: str, instance: str, size: int | None, access: str, source: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {LABEL_INSTANCE: label_value(instance)}},
        "spec": {
            "capacity": {"storage": str(size or 1024**3)},
            "accessModes": [access],
            # A workspace's files outlive its claim; only an operator deletes them.
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            **source,
        },
    }


_VOLUME_FIELDS = ("capacity", "accessModes", "persistentVolumeReclaimPolicy", "storageClassName")


def _within(want: Any, got: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and all(_within(v, got.get(k)) for k, v in want.items())
    return bool(want == got)


def same_volume_source(wanted: dict[str, Any], existing: dict[str, Any]) -> bool:
    """Whether an existing PersistentVolume (as the API returns it, defaults filled in)
    has the source of ``wanted`` (one of :func:`dataset_volumes`). A volume's source
    cannot change once made: a version that moved (encrypted at rest since) needs its
    old volume deleted by an operator."""
    spec = existing.get("spec") or {}
    return all(
        _within(value, spec.get(key))
        for key, value in wanted["spec"].items()
        if key not in _VOLUME_FIELDS
    )


def folder_volumes(plan: PodPlan, workspaces_root: str) -> list[dict[str, Any]]:
    """PersistentVolumes on the node's own folders for the work and project claims of
    :func:`claims` with ``static=True``: a one-node cluster without a provisioner (the
    test cluster). The layout is the Docker backend's (``<root>/<project>/users/<user>``,
    ``<root>/<project>/shared``)."""
    inst, project = plan.instance, plan.project.name
    return [
        _volume(
            work_claim_name(inst, project, plan.user),
            inst,
            plan.tier.storage_bytes,
            "ReadWriteOnce",
            {"hostPath": {"path": f"{workspaces_root}/{project}/users/{plan.user}"}},
        ),
        _volume(
            project_claim_name(inst, project),
            inst,
            plan.tier.project_storage_bytes,
            "ReadWriteMany",
            {"hostPath": {"path": f"{workspaces_root}/{project}/shared"}},
        ),
    ]


def _fill(template: Any, location: str) -> Any:
    if isinstance(template, str):
        return template.replace("{location}", location)
    if isinstance(template, dict):
        return {k: _fill(v, location) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, location) for v in template]
    return template


def dataset_key(name: str, version: str) -> str:
    """How a dataset version is named in annotations and in ``folders``: ``name@version``."""
    return f"{name}@{version}"


def is_node_folder(source: dict[str, Any]) -> bool:
    """Whether a dataset volume source is a folder of the node itself (hostPath)."""
    return set(source) == {"hostPath"}


def dataset_volumes(
    plan: PodPlan, source: dict[str, Any], folders: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """One read-only PersistentVolume per dataset version of the project, from the data
    library's folder: ``source`` is the volume source with ``{location}`` standing for
    the dataset's folder (``{"hostPath": {"path": "{location}"}}`` on one node,
    ``{"nfs": {"server": "library", "path": "{location}"}}`` on a cluster).

    ``folders`` (by :func:`dataset_key`) replaces a version's registered location: the
    node folder where an encrypted version is unlocked read-only."""
    where = folders or {}
    return [
        _volume(
            dataset_claim_name(plan.instance, ds.name, ds.version),
            plan.instance,
            None,
            "ReadOnlyMany",
            _fill(source, where.get(dataset_key(ds.name, ds.version), ds.location)),
        )
        for ds in plan.project.datasets
    ]


def volumes(plan: PodPlan) -> list[dict[str, Any]]:
    """The pod's volumes: size-limited scratch folders (home, /tmp, /var/tmp, the
    server's run folder, /dev/shm in memory) and the claims of :func:`claims`."""
    tier = plan.tier
    inst, project = plan.instance, plan.project.name
    out: list[dict[str, Any]] = [
        {"name": "home", "emptyDir": {"sizeLimit": str(tier.home_bytes)}},
        {"name": "tmp", "emptyDir": {"sizeLimit": str(tier.tmp_bytes)}},
        {"name": "var-tmp", "emptyDir": {"sizeLimit": str(tier.tmp_bytes)}},
        {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": str(16 * 1024**2)}},
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": str(tier.tmp_bytes)}},
        {
            "name": "work",
            "persistentVolumeClaim": {"claimName": work_claim_name(inst, project, plan.user)},
        },
        {
            "name": "project",
            "persistentVolumeClaim": {"claimName": project_claim_name(inst, project)},
        },
    ]
    for index, ds in enumerate(plan.project.datasets):
        out.append(
            {
                "name": f"data-{index}",
                "persistentVolumeClaim": {
                    "claimName": dataset_claim_name(inst, ds.name, ds.version),
                    "readOnly": True,
                },
            }
        )
    return out


def volume_mounts(plan: PodPlan) -> list[dict[str, Any]]:
    """Where each volume of :func:`volumes` goes; datasets read-only at ``/data/<name>``."""
    out: list[dict[str, Any]] = [
        {"name": "home", "mountPath": WORKSPACE_HOME},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "var-tmp", "mountPath": "/var/tmp"},
        {"name": "run", "mountPath": SERVER_RUN_DIR},
        {"name": "shm", "mountPath": "/dev/shm"},
        {"name": "work", "mountPath": f"{WORKSPACE_HOME}/work"},
        {"name": "project", "mountPath": "/project"},
    ]
    for index, ds in enumerate(plan.project.datasets):
        out.append({"name": f"data-{index}", "mountPath": f"/data/{ds.name}", "readOnly": True})
    return out


def _get(obj: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)  # type: ignore[assignment]
    return obj


def check_pod(pod: dict[str, Any], allowed_images: set[str] | None = None) -> None:
    """Raise :class:`PodSpecError` unless the pod manifest ``pod`` (camelCase, as the API
    takes it) holds the wall: no host namespaces or host folders, no service-account
    token, non-root, no privilege escalation, every capability dropped and none added, a
    read-only root, RuntimeDefault (or a Localhost) seccomp, CPU and memory limits,
    size-limited scratch folders, read-only dataset mounts, an allowed image."""
    spec = pod.get("spec") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            raise PodSpecError(f"a workspace pod never shares the node's namespaces ({flag})")
    if spec.get("automountServiceAccountToken") is not False:
        raise PodSpecError("a workspace pod gets no service-account token (cluster API)")
    pod_ctx = spec.get("securityContext") or {}
    volumes_ = {v.get("name"): v for v in spec.get("volumes") or []}
    for name, volume in volumes_.items():
        if "hostPath" in volume:
            raise PodSpecError(f"a workspace pod mounts no node folder (volume {name!r})")
        empty = volume.get("emptyDir")
        if empty is not None and not empty.get("sizeLimit"):
            raise PodSpecError(f"scratch volume {name!r} needs a sizeLimit")
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    if not containers:
        raise PodSpecError("a workspace pod runs one container")
    for container in containers:
        cname = container.get("name", "?")
        ctx = container.get("securityContext") or {}

        def setting(key: str, ctx: dict[str, Any] = ctx) -> Any:
            return ctx.get(key, pod_ctx.get(key))

        uid = setting("runAsUser")
        if setting("runAsNonRoot") is not True or not isinstance(uid, int) or uid <= 0:
            raise PodSpecError(f"container {cname!r} must run as a non-root uid")
        if ctx.get("privileged"):
            raise PodSpecError(f"container {cname!r} is privileged")
        if ctx.get("allowPrivilegeEscalation") is not False:
            raise PodSpecError(f"container {cname!r} must not allow privilege escalation")
        caps = ctx.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []) or caps.get("add"):
            raise PodSpecError(f"container {cname!r} must drop every capability, add none")
        if ctx.get("readOnlyRootFilesystem") is not True:
            raise PodSpecError(f"container {cname!r} needs a read-only root filesystem")
        seccomp = setting("seccompProfile") or {}
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            raise PodSpecError(f"container {cname!r} needs a seccomp profile")
        limits = _get(container, "resources", "limits") or {}
        if not limits.get("cpu") or not limits.get("memory"):
            raise PodSpecError(f"container {cname!r} needs CPU and memory limits")
        if allowed_images is not None and container.get("image") not in allowed_images:
            raise PodSpecError(
                f"container {cname!r} runs {container.get('image')!r}, not an allowed image"
            )
        for mount in container.get("volumeMounts") or []:
            path = str(mount.get("mountPath", ""))
            if (path == "/data" or path.startswith("/data/")) and mount.get("readOnly") is not True:
                raise PodSpecError(f"dataset mount {path!r} must be read-only")
