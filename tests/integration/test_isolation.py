"""The first wall: from inside a workspace nothing answers but the hub API.

Every target here is something the test itself started: a canary HTTP server on this
host bound to 0.0.0.0, a canary container in another project's network, and another
member's workspace. Each refusal has a positive control showing the target is up.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator

import pytest
import requests
from cleanroom.settings import image_repository
from docker.models.containers import Container

from tests.integration.deployment import OTHER_PROJECT, PROJECT
from tests.integration.harness import INSTANCE, Hub, host_addresses, python_in

pytestmark = pytest.mark.docker

_PROBE = """
import json, socket, sys
results = {}
for host, port in json.loads(sys.argv[1]):
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((host, port)); results[f"{host}:{port}"] = "open"
    except OSError as exc:
        results[f"{host}:{port}"] = type(exc).__name__
    finally:
        s.close()
print(json.dumps(results))
"""


def probe(container: Container, targets: list[tuple[str, int]]) -> dict[str, str]:
    """Try a TCP connection from inside ``container`` to each target."""
    result = container.exec_run(["python3", "-c", _PROBE, json.dumps(targets)], user="1000")
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output.decode().strip().splitlines()[-1]))


class _Canary(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"canary")

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def host_canary() -> Iterator[int]:
    """An HTTP server on every host address (0.0.0.0), as a careless host service is."""
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), _Canary)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def workspace(hub: Hub) -> Container:
    """Alice's workspace on the alpha project."""
    hub.ensure_running("alice", PROJECT)
    return hub.container("alice", PROJECT)


def gateway_of(container: Container) -> str:
    """The gateway address of the container's (only) network."""
    networks = container.attrs["NetworkSettings"]["Networks"]
    assert len(networks) == 1, networks
    return str(next(iter(networks.values()))["Gateway"])


def ip_of(container: Container) -> str:
    """The container's address on its (only) network."""
    container.reload()
    return str(next(iter(container.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"])


def test_hub_api_answers_from_inside(hub: Hub, workspace: Container) -> None:
    code, out = python_in(
        workspace,
        (
            "import os, urllib.request;"
            "print(urllib.request.urlopen(os.environ['JUPYTERHUB_API_URL'], timeout=5).read())"
        ),
    )
    assert code == 0 and "version" in out, out
    env = dict(line.split("=", 1) for line in workspace.attrs["Config"]["Env"])
    assert env["JUPYTERHUB_API_URL"].startswith(f"http://{gateway_of(workspace)}:")


def test_host_canary_is_unreachable_at_every_host_address(
    workspace: Container, host_canary: int
) -> None:
    addresses = sorted({gateway_of(workspace), *host_addresses()})
    # Positive control: the canary answers on each address from the host itself.
    for address in addresses:
        assert requests.get(f"http://{address}:{host_canary}/", timeout=5).text == "canary"
    results = probe(workspace, [(a, host_canary) for a in addresses])
    print("from the workspace:", results)
    assert all(state != "open" for state in results.values()), results


def test_only_the_allowed_ports_are_open_on_the_gateway(hub: Hub, workspace: Container) -> None:
    gateway = gateway_of(workspace)
    results = probe(
        workspace,
        [
            (gateway, hub.hub_port),
            (gateway, 22),
            (gateway, 53),
            (gateway, int(hub.env["CLEANROOM_PROXY_API_PORT"])),
            (gateway, int(hub.public_url.rsplit(":", 1)[1])),
        ],
    )
    assert results.pop(f"{gateway}:{hub.hub_port}") == "open"
    assert all(state != "open" for state in results.values()), results


def test_name_lookups_fail(workspace: Container) -> None:
    name = "deb.debian.org"
    try:
        socket.getaddrinfo(name, 80)
        host_resolves = True
    except OSError:
        host_resolves = False
    code, out = python_in(
        workspace,
        (
            "import socket, sys\n"
            f"try:\n    print(socket.getaddrinfo({name!r}, 80)); sys.exit(0)\n"
            "except OSError as exc:\n    print('failed', exc); sys.exit(3)"
        ),
    )
    assert code == 3, f"name lookup worked inside (host resolves it: {host_resolves}): {out}"


@pytest.fixture(scope="module")
def other_project_canary(hub: Hub, workspace_images: list[str]) -> Iterator[Container]:
    """An HTTP server in a container on the beta project's network."""
    from cleanroom.isolation.networks import ProjectNetworks

    network = ProjectNetworks(hub.docker, instance=INSTANCE).ensure(OTHER_PROJECT)
    canary = hub.docker.containers.run(
        f"{image_repository()}/notebook:latest",
        ["python3", "-m", "http.server", "8000"],
        detach=True,
        network=network.name,
        user="1000",
        remove=True,
        labels={"cleanroom.instance": INSTANCE, "cleanroom.kind": "canary"},
        entrypoint=[],
    )
    try:
        yield canary
    finally:
        canary.remove(force=True)


def test_other_projects_are_unreachable(
    workspace: Container, other_project_canary: Container
) -> None:
    address = ip_of(other_project_canary)
    # Positive control: the host reaches the canary (it is up and listening).
    assert _wait_for_http(f"http://{address}:8000/")
    results = probe(workspace, [(address, 8000)])
    assert results[f"{address}:8000"] != "open", results


def test_members_of_one_project_cannot_reach_each_other(hub: Hub, workspace: Container) -> None:
    hub.ensure_running("bob", PROJECT)
    bob = hub.container("bob", PROJECT)
    assert gateway_of(bob) == gateway_of(workspace)  # same project network
    address = ip_of(bob)
    # Positive control: bob's server is up (through the gateway; the host firewall lets
    # nothing else reach a workspace's server port, see tests/gateway).
    assert hub.server_get("bob", PROJECT, "api/status").status_code == 200
    results = probe(workspace, [(address, 8888)])
    assert results[f"{address}:8888"] != "open", results
    hub.stop_server("bob", PROJECT)


def _wait_for_http(url: str) -> bool:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return True
        except requests.ConnectionError:
            time.sleep(0.5)
    return False
