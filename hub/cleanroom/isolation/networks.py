"""One internal Docker network per project, with addresses from our own pool.

Docker's default address pools run out after about 30 networks, so every project
network gets an explicit subnet carved from ``pool`` (default 10.213.0.0/16 in /24s:
256 networks). Each network is ``--internal`` (no route out), has inter-container
communication switched off (two members' workspaces cannot reach each other), and a
bridge named ``cr<instance>-<project>`` (both hashed, 15 characters, Linux's limit) so
that the host firewall matches every project bridge of one deployment with one
interface pattern, and two deployments on one engine (a running demo and the test
suite) never share a bridge, a network or a firewall chain.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
from dataclasses import dataclass
from typing import Any

import docker
from docker.errors import APIError, NotFound

from cleanroom.errors import CleanroomError

LABEL_PROJECT = "cleanroom.project"
LABEL_KIND = "cleanroom.kind"
LABEL_INSTANCE = "cleanroom.instance"


def _short_hash(value: str, length: int) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:length]


def bridge_prefix(instance: str) -> str:
    """The interface-name prefix shared by every project bridge of a deployment."""
    return f"cr{_short_hash(instance, 3)}-"


@dataclass(frozen=True)
class ProjectNetwork:
    """A project's network as the spawner needs it."""

    name: str
    bridge: str
    subnet: str
    gateway: str


def bridge_name(instance: str, project: str) -> str:
    """The host-side bridge interface of a project (15 characters, Linux's limit)."""
    return bridge_prefix(instance) + _short_hash(project, 9)


def network_name(instance: str, project: str) -> str:
    """The Docker network name of a project."""
    return f"cleanroom-{instance}-{project}"


class ProjectNetworks:
    """Creates and finds project networks on one Docker engine."""

    # One lock for the process: two spawns of one project must not both create its network.
    _lock = threading.Lock()

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        *,
        instance: str = "main",
        pool: str = "10.213.0.0/16",
        prefix: int = 24,
    ) -> None:
        self.client = client or docker.from_env()
        self.instance = instance
        self.pool = ipaddress.ip_network(pool)
        if prefix < self.pool.prefixlen or prefix > 29:
            raise CleanroomError(f"subnet size /{prefix} does not fit the pool {pool}")
        self.prefix = prefix

    def capacity(self) -> int:
        """How many project networks the pool holds."""
        return 2 ** (self.prefix - self.pool.prefixlen)

    def ensure(self, project: str) -> ProjectNetwork:
        """The project's network, created when missing."""
        with self._lock:
            existing = self._find(project)
            if existing is not None:
                return existing
            return self._create(project)

    def remove(self, project: str) -> bool:
        """Remove a project's network (fails while workspaces are attached)."""
        try:
            self.client.networks.get(network_name(self.instance, project)).remove()
        except NotFound:
            return False
        return True

    def _find(self, project: str) -> ProjectNetwork | None:
        try:
            net = self.client.networks.get(network_name(self.instance, project))
        except NotFound:
            return None
        return self._describe(net.attrs)

    def _create(self, project: str) -> ProjectNetwork:
        net = create_in_pool(
            self.client,
            self.pool,
            self.prefix,
            network_name(self.instance, project),
            labels={
                LABEL_PROJECT: project,
                LABEL_KIND: "project-network",
                LABEL_INSTANCE: self.instance,
            },
            options={
                "com.docker.network.bridge.name": bridge_name(self.instance, project),
                "com.docker.network.bridge.enable_icc": "false",
            },
        )
        if net is None:
            raise CleanroomError(
                f"the project address pool {self.pool} is full ({self.capacity()} networks); "
                "remove unused project networks or configure a larger pool"
            )
        net.reload()
        return self._describe(net.attrs)

    @staticmethod
    def _describe(attrs: dict[str, Any]) -> ProjectNetwork:
        cfg = (attrs.get("IPAM") or {}).get("Config") or [{}]
        options = attrs.get("Options") or {}
        return ProjectNetwork(
            name=attrs["Name"],
            bridge=options.get("com.docker.network.bridge.name", ""),
            subnet=cfg[0].get("Subnet", ""),
            gateway=cfg[0].get("Gateway", ""),
        )


def _used_subnets(
    client: docker.DockerClient,
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Every subnet some network of the engine holds (ours or anyone's)."""
    return [
        ipaddress.ip_network(cfg["Subnet"], strict=False)
        for net in client.api.networks()
        for cfg in (net.get("IPAM") or {}).get("Config") or []
        if cfg.get("Subnet")
    ]


def create_in_pool(
    client: docker.DockerClient,
    pool: ipaddress.IPv4Network | ipaddress.IPv6Network,
    prefix: int,
    name: str,
    *,
    labels: dict[str, str],
    options: dict[str, str],
) -> Any | None:
    """Create the internal bridge network ``name`` on the first ``/prefix`` of ``pool``
    that no network of the engine overlaps, without masquerading; ``None`` when the pool
    has none left. ``options`` are the bridge's (its name, inter-container traffic)."""
    used = _used_subnets(client)
    for candidate in pool.subnets(new_prefix=prefix):
        if any(candidate.overlaps(u) for u in used):
            continue
        gateway = str(next(candidate.hosts()))
        ipam = docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet=str(candidate), gateway=gateway)]
        )
        try:
            return client.networks.create(
                name,
                driver="bridge",
                check_duplicate=True,
                internal=True,
                ipam=ipam,
                labels=labels,
                options={**options, "com.docker.network.bridge.enable_ip_masquerade": "false"},
            )
        except APIError as exc:
            # Another engine user took this subnet between our look and our create.
            if "overlap" in str(exc).lower():
                used.append(candidate)
                continue
            raise
    return None
