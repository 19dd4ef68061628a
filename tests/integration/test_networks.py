"""Many projects on one engine: 250 project networks fit (Docker's pools end near 30)."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator

import docker
import pytest
from cleanroom.isolation.networks import ProjectNetworks

pytestmark = pytest.mark.docker
INSTANCE = "netcap"


@pytest.fixture
def networks() -> Iterator[ProjectNetworks]:
    """A separate deployment on a pool of its own, cleaned up afterwards."""
    client = docker.from_env()
    yield ProjectNetworks(client, instance=INSTANCE, pool="10.214.0.0/16", prefix=24)
    for net in client.networks.list(filters={"label": f"cleanroom.instance={INSTANCE}"}):
        net.remove()


def test_250_project_networks_fit(networks: ProjectNetworks) -> None:
    began = time.monotonic()
    made = [networks.ensure(f"project-{i:03d}") for i in range(250)]
    print(f"created 250 project networks in {time.monotonic() - began:.1f} s")
    subnets = {n.subnet for n in made}
    assert len(subnets) == 250
    pool = ipaddress.IPv4Network("10.214.0.0/16")
    assert all(ipaddress.IPv4Network(s).subnet_of(pool) for s in subnets)
    # Asking again finds the same network instead of making another.
    assert networks.ensure("project-007") == made[7]
    attrs = docker.from_env().networks.get(made[0].name).attrs
    assert attrs["Internal"] is True
    assert attrs["Options"]["com.docker.network.bridge.enable_icc"] == "false"
