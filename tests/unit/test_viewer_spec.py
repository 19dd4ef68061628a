"""The restricted mode's pure parts: which researcher routes reach the viewer, the
viewer's container (the workspace's wall, no capability), and route registration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cleanroom.errors import InvalidInput
from cleanroom.gateway import viewer as routes
from cleanroom.gateway.routes import RouteTable, backend_from
from cleanroom.workspace import spec
from cleanroom.workspace import viewer as viewers

TOKEN = "t" * 32


@pytest.mark.parametrize(
    ("method", "rest", "websocket", "upstream"),
    [
        ("GET", "", False, ""),
        ("GET", "viewer/", False, "/index.html"),
        ("HEAD", "viewer/viewer.js", False, "/viewer.js"),
        ("GET", "viewer/core/rfb.js", False, "/core/rfb.js"),
        ("GET", "viewer/websockify", True, "/websockify"),
        # Everything else is not the viewer's.
        ("GET", "viewer/websockify", False, None),
        ("GET", "viewer/index.html", True, None),
        ("GET", "", True, None),
        ("POST", "viewer/", False, None),
        ("PUT", "viewer/index.html", False, None),
        ("GET", "viewer/../api/contents", False, None),
        ("GET", "viewer/core/../../x", False, None),
        ("GET", "viewer/.hidden", False, None),
        ("GET", "viewer/a//b.js", False, None),
        ("GET", "viewer/a\\b.js", False, None),
        ("GET", "viewer", False, None),
        ("GET", "lab", False, None),
        ("GET", "lab/tree/work", False, None),
        ("GET", "api", False, None),
        ("GET", "api/contents/work", False, None),
        ("GET", "api/kernels/abc/channels", True, None),
        ("GET", "terminals/websocket/1", True, None),
        ("GET", "files/work/data.csv", False, None),
    ],
)
def test_only_the_viewers_routes_map_to_it(
    method: str, rest: str, websocket: bool, upstream: str | None
) -> None:
    assert routes.upstream_path(method, rest, websocket) == upstream


def test_only_the_servers_own_token_is_the_health_check() -> None:
    assert routes.is_server_token(f"token {TOKEN}", TOKEN)
    assert routes.is_server_token(f"Bearer {TOKEN}", TOKEN)
    for header in ("", "token ", f"token {TOKEN}x", f"basic {TOKEN}", TOKEN, "token other"):
        assert not routes.is_server_token(header, TOKEN), header
    assert not routes.is_server_token("token ", "")


def test_viewer_files_get_the_gateways_own_types() -> None:
    assert routes.content_type("/index.html").startswith("text/html")
    assert routes.content_type("/core/rfb.js").startswith("text/javascript")
    assert routes.content_type("/x.weird") == "application/octet-stream"
    assert routes.content_type("/noext") == "application/octet-stream"


def _body(**extra: object) -> dict[str, object]:
    return {"target": "http://10.213.0.2:8888", "token": TOKEN, "secret": "s" * 32, **extra}


def test_a_route_may_name_a_viewer_and_keeps_it(tmp_path: Path) -> None:
    backend = backend_from(
        "vera", "p-view", _body(viewer="http://10.214.0.3:6080", viewer_manifest=["ab" * 32])
    )
    table = RouteTable(tmp_path / "routes.json")
    table.put(backend)
    again = RouteTable(tmp_path / "routes.json")
    assert again.get("vera", "p-view") == backend
    assert again.viewer_manifest("vera", "p-view") == frozenset({"ab" * 32})
    assert backend_from("vera", "p-view", _body()).viewer == ""
    # Routes saved before the restricted mode load as standard routes.
    old = json.loads((tmp_path / "routes.json").read_text())
    for item in old:
        del item["viewer"], item["viewer_manifest"]
    (tmp_path / "routes.json").write_text(json.dumps(old))
    assert RouteTable(tmp_path / "routes.json").get("vera", "p-view").viewer == ""  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "extra",
    [
        {"viewer": "http://viewer:6080"},
        {"viewer": "ws://10.214.0.3:6080"},
        {"viewer": 6080},
        {"viewer_manifest": "ab"},
        {"viewer_manifest": [1]},
    ],
)
def test_bad_viewer_routes_are_refused(extra: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        backend_from("vera", "p-view", _body(**extra))


def _plan() -> viewers.ViewerPlan:
    lab, ready = viewers.lab_urls("10.214.0.2", 8888, "/user/vera/p-view/", TOKEN)
    return viewers.ViewerPlan(
        user="vera",
        project="p-view",
        instance="test",
        image="cleanroom/viewer:latest",
        network="cleanroom-test-view-x",
        dns="10.214.0.1",
        lab_url=lab,
        ready_url=ready,
    )


def test_the_viewer_holds_the_workspaces_wall_without_any_capability() -> None:
    host = viewers.host_config(_plan())
    viewers.check_host_config(host)
    assert host["cap_drop"] == ["ALL"] and "cap_add" not in host
    assert host["read_only"] is True
    assert host["memswap_limit"] == host["mem_limit"]
    with pytest.raises(spec.SpecError):
        viewers.check_host_config({**host, "cap_add": ["KILL"]})
    with pytest.raises(spec.SpecError):
        viewers.check_host_config({**host, "security_opt": ["seccomp=unconfined"]})
    with pytest.raises(spec.SpecError):
        viewers.check_host_config({**host, "read_only": False})


def test_the_viewer_opens_the_lab_of_its_own_workspace() -> None:
    env = viewers.environment(_plan())
    assert (
        env["CLEANROOM_VIEWER_URL"] == f"http://10.214.0.2:8888/user/vera/p-view/lab?token={TOKEN}"
    )
    assert env["CLEANROOM_VIEWER_READY_URL"] == "http://10.214.0.2:8888/user/vera/p-view/api"
    labels = viewers.labels(_plan())
    assert labels["cleanroom.kind"] == "viewer" and TOKEN not in json.dumps(labels)


def test_link_names_fit_linux_and_the_deployments_firewall() -> None:
    bridge = viewers.link_bridge_name("test", "vera", "p-view")
    assert len(bridge) <= 15
    from cleanroom.isolation.networks import bridge_prefix

    assert bridge.startswith(bridge_prefix("test"))
    assert viewers.link_bridge_name("test", "vera", "p-view") != viewers.link_bridge_name(
        "test", "vera", "p-other"
    )


@pytest.mark.parametrize("value", ["1280", "axb", "100x100", "5000x800", "1280x"])
def test_bad_geometries_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="geometry"):
        viewers.check_geometry(value)
    assert viewers.check_geometry("1280X800") == "1280x800"
