"""Restricted mode end to end: a real hub, proxy, gateway, workspace and viewer (real
Chromium on a virtual display, x11vnc, websockify), and the researcher's side speaking
VNC through the gateway as noVNC does.

The researcher (vera, project p-view) reaches only the viewer's page and VNC stream;
every route that works in the standard mode answers 403; what the stream shows is
JupyterLab, drawn by the viewer's own Chromium; no clipboard text ever reaches the
researcher; every byte of the stream is counted like every other byte.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import docker
import pytest
import requests
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from tests.gateway.helpers import metric, usage, wait_for
from tests.integration.harness import INSTANCE, Hub, run_in
from tests.viewer.conftest import RESEARCHER, RESTRICTED_PROJECT
from tests.viewer.rfb import KEY_CONTROL_L, RFBClient

pytestmark = pytest.mark.docker

PREFIX = f"/user/{RESEARCHER}/{RESTRICTED_PROJECT}/"
# JupyterLab's light theme paints most of the screen in these (measured with 4.4).
LAB_WHITE = (255, 255, 255)


def _viewer(hub: Hub) -> Any:
    found = hub.docker.containers.list(
        filters={
            "label": [
                f"cleanroom.instance={INSTANCE}",
                "cleanroom.kind=viewer",
                f"cleanroom.user={RESEARCHER}",
                f"cleanroom.project={RESTRICTED_PROJECT}",
            ]
        }
    )
    assert len(found) == 1, found
    return found[0]


def _get(hub: Hub, path: str, **kwargs: Any) -> requests.Response:
    return requests.get(
        f"{hub.public_url}{PREFIX}{path}",
        headers={"Authorization": f"token {hub.token(RESEARCHER)}"},
        timeout=60,
        allow_redirects=False,
        **kwargs,
    )


def _stream(hub: Hub) -> RFBClient:
    url = hub.public_url.replace("http", "ws", 1) + PREFIX + "viewer/websockify"
    return RFBClient(url, {"Authorization": f"token {hub.token(RESEARCHER)}"})


# -- what the researcher's side may reach ------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "lab"),
        ("GET", "lab/tree/work"),
        ("GET", "tree"),
        ("GET", "api"),
        ("GET", "api/status"),
        ("GET", "api/contents"),
        ("GET", "api/contents/work"),
        ("PUT", "api/contents/work/x.txt"),
        ("GET", "api/kernels"),
        ("POST", "api/kernels"),
        ("GET", "api/sessions"),
        ("GET", "api/terminals"),
        ("POST", "api/terminals"),
        ("GET", "api/kernelspecs"),
        ("GET", "lab/api/settings"),
        ("GET", "files/work/x.txt"),
        ("GET", "static/favicon.ico"),
        ("GET", "cleanroom/api/releases"),
        ("POST", "viewer/"),
    ],
)
def test_every_jupyterlab_route_is_refused(restricted: Hub, method: str, path: str) -> None:
    reply = requests.request(
        method,
        f"{restricted.public_url}{PREFIX}{path}",
        headers={"Authorization": f"token {restricted.token(RESEARCHER)}"},
        json={} if method in ("POST", "PUT") else None,
        timeout=60,
        allow_redirects=False,
    )
    assert reply.status_code == 403, (path, reply.text[:200])
    assert "restricted mode" in reply.json()["message"]


def test_jupyter_websockets_are_refused(restricted: Hub) -> None:
    async def attempt(path: str) -> None:
        url = restricted.public_url.replace("http", "ws", 1) + PREFIX + path
        request = HTTPRequest(
            url, headers={"Authorization": f"token {restricted.token(RESEARCHER)}"}
        )
        with pytest.raises(HTTPClientError) as refused:
            await websocket_connect(request)
        assert refused.value.code == 403, path

    for path in ("api/kernels/0/channels", "terminals/websocket/1", "api/events/subscribe"):
        asyncio.run(attempt(path))


def test_refusals_are_counted_and_on_the_record(restricted: Hub) -> None:
    before = metric(
        restricted,
        "cleanroom_gateway_refusals_total",
        user=RESEARCHER,
        project=RESTRICTED_PROJECT,
        reason="restricted",
    )
    assert _get(restricted, "api/contents/work").status_code == 403
    assert (
        metric(
            restricted,
            "cleanroom_gateway_refusals_total",
            user=RESEARCHER,
            project=RESTRICTED_PROJECT,
            reason="restricted",
        )
        == before + 1
    )


def test_only_the_servers_own_token_passes_and_only_for_the_health_check(
    restricted: Hub,
) -> None:
    env = restricted.container(RESEARCHER, RESTRICTED_PROJECT).attrs["Config"]["Env"]
    server_token = next(e.split("=", 1)[1] for e in env if e.startswith("JUPYTERHUB_API_TOKEN="))
    headers = {"Authorization": f"token {server_token}"}
    base = f"{restricted.public_url}{PREFIX}"
    assert requests.get(base + "api", headers=headers, timeout=60).status_code == 200
    for path in ("api/status", "api/contents/work", "lab"):
        assert requests.get(base + path, headers=headers, timeout=60).status_code == 403, path


def test_the_researcher_is_sent_to_the_viewer_page(restricted: Hub) -> None:
    reply = _get(restricted, "")
    assert reply.status_code == 302
    assert reply.headers["Location"] == f"{PREFIX}viewer/"
    page = _get(restricted, "viewer/")
    assert page.status_code == 200, page.text[:300]
    assert page.headers["Content-Type"].startswith("text/html")
    assert "Restricted session" in page.text
    assert "clipboard-read=()" in page.headers["Permissions-Policy"]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    module = _get(restricted, "viewer/core/rfb.js")
    assert module.status_code == 200 and module.headers["Content-Type"].startswith(
        "text/javascript"
    )
    assert "clipboardPasteFrom" not in _get(restricted, "viewer/viewer.js").text
    for path in ("viewer/missing.js", "viewer/../api/contents", "viewer/core/"):
        assert _get(restricted, path).status_code in (403, 404), path


@pytest.mark.browser
def test_the_page_loads_in_a_real_browser_and_connects(restricted: Hub) -> None:
    """The researcher's Chromium, logged in with the hub's form, gets the noVNC page and
    its VNC stream through the proxy and the gateway's OAuth; JupyterLab's own page is
    refused there, and the page may not touch the clipboard."""
    from selenium.webdriver.common.by import By

    from tests.chromium import chromium

    driver = chromium(window=(1400, 1000), page_load_timeout=90)
    try:
        driver.get(f"{restricted.public_url}/hub/login")
        driver.find_element(By.NAME, "username").send_keys(RESEARCHER)
        driver.find_element(By.NAME, "password").send_keys(restricted.env["TEST_PASSWORD"])
        restricted.standing(RESEARCHER)
        driver.find_element(By.NAME, "otp").send_keys(restricted.app.code(RESEARCHER))
        driver.find_element(By.CSS_SELECTOR, "form").submit()
        wait_for(lambda: "/hub/" in driver.current_url and "login" not in driver.current_url)
        driver.get(f"{restricted.public_url}{PREFIX}")
        wait_for(
            lambda: driver.execute_script("return document.body.dataset.state") == "connected",
            timeout=120,
        )
        assert driver.current_url.endswith(f"{PREFIX}viewer/")
        assert driver.title == f"Restricted session: {RESTRICTED_PROJECT}"
        assert RESTRICTED_PROJECT in driver.find_element(By.ID, "banner").text
        assert driver.find_elements(By.CSS_SELECTOR, "#screen canvas")
        for feature in ("clipboard-read", "clipboard-write"):
            allowed = driver.execute_script(
                f"return document.featurePolicy.allowsFeature('{feature}')"
            )
            assert allowed is False, feature
        driver.get(f"{restricted.public_url}{PREFIX}lab")
        assert "restricted mode" in driver.page_source
        assert "jp-LabShell" not in driver.page_source
    finally:
        driver.quit()


# -- what the stream shows, and what it never carries ---------------------------------------
def test_the_stream_shows_jupyterlab_drawn_by_the_viewer(restricted: Hub) -> None:
    async def look() -> RFBClient:
        client = _stream(restricted)
        await client.connect()
        deadline = time.monotonic() + 180
        while True:
            client.request_update()
            await client.read_update()
            assert client.screen is not None
            # JupyterLab's launcher: a mostly white page with many colours (icons, text).
            if client.screen.colours() > 40 and client.screen.share_of(LAB_WHITE) > 0.3:
                break
            assert time.monotonic() < deadline, "the viewer never showed JupyterLab"
            await asyncio.sleep(1)
        client.close()
        return client

    before = usage(restricted, RESEARCHER, RESTRICTED_PROJECT)
    client = asyncio.run(look())
    assert client.screen is not None and client.screen.width == 1280
    # The pictures came from JupyterLab in the viewer's Chromium: its page and API calls
    # reached the workspace server from the viewer's address on the link network.
    viewer_ip = next(iter(_viewer(restricted).attrs["NetworkSettings"]["Networks"].values()))[
        "IPAddress"
    ]
    logs = restricted.container(RESEARCHER, RESTRICTED_PROJECT).logs().decode(errors="replace")
    assert f"{PREFIX}lab" in logs and viewer_ip in logs
    assert f"{PREFIX}api/kernelspecs" in logs or f"{PREFIX}lab/api/settings" in logs
    # Every byte of the stream is counted, as kind "viewer".
    after = wait_for(
        lambda: (
            (u := usage(restricted, RESEARCHER, RESTRICTED_PROJECT))["day_bytes"]
            >= before["day_bytes"] + client.received
            and u
        ),
        timeout=30,
    )
    assert after["day_bytes"] - before["day_bytes"] >= client.received
    assert (
        metric(
            restricted,
            "cleanroom_gateway_bytes_total",
            user=RESEARCHER,
            project=RESTRICTED_PROJECT,
            kind="viewer",
        )
        >= client.received
    )


def test_selecting_and_copying_in_the_viewer_sends_no_clipboard(restricted: Hub) -> None:
    async def select_and_copy() -> RFBClient:
        client = _stream(restricted)
        await client.connect()
        client.request_update()
        await client.read_update()
        client.click(640, 400)
        client.chord(KEY_CONTROL_L, ord("a"))
        client.chord(KEY_CONTROL_L, ord("c"))
        await client.run_for(5)
        client.close()
        return client

    client = asyncio.run(select_and_copy())
    assert 0 in client.message_types  # the session was live
    assert 3 not in client.message_types and client.cut_texts == []


def test_clipboard_file_transfer_and_devtools_are_off_in_the_viewer(restricted: Hub) -> None:
    container = _viewer(restricted)
    code, out = run_in(
        container, "sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '", user="1002"
    )
    assert code == 0, out
    x11vnc = out.split("x11vnc ", 1)[1]
    for flag in ("-nosel", "-noprimary", "-nosetprimary", "-noclipboard", "-nosetclipboard"):
        assert f"{flag} " in x11vnc, flag
    assert "filexfer" not in out and "-localhost" in x11vnc
    code, raw = run_in(container, "cat", "/etc/chromium/policies/managed/cleanroom.json")
    assert code == 0
    policy = json.loads(raw)
    assert policy["DownloadRestrictions"] == 3
    assert policy["PrintingEnabled"] is False
    assert policy["DeveloperToolsAvailability"] == 2
    assert policy["ExtensionInstallBlocklist"] == ["*"]
    assert "file://*" in policy["URLBlocklist"]
    assert policy["DefaultClipboardSetting"] == 2
    # The viewer cannot change its policy: root's file, a read-only root filesystem.
    code, _ = run_in(
        container,
        "sh",
        "-c",
        "echo {} > /etc/chromium/policies/managed/cleanroom.json",
        user="1002",
    )
    assert code != 0


def test_the_viewer_runs_behind_the_workspaces_wall(restricted: Hub) -> None:
    container = _viewer(restricted)
    host = container.attrs["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert any(o.startswith("seccomp=") and "unconfined" not in o for o in host["SecurityOpt"])
    assert container.attrs["Config"]["User"] == "1002:1002"
    # The viewer's network is the session's link: the workspace and the viewer alone.
    (network_name,) = container.attrs["NetworkSettings"]["Networks"]
    network = docker.from_env().networks.get(network_name)
    assert network.attrs["Internal"] is True
    members = set(network.attrs["Containers"])
    assert members == {container.id, restricted.container(RESEARCHER, RESTRICTED_PROJECT).id}


def test_the_host_cannot_reach_the_lab_on_the_link_network(restricted: Hub) -> None:
    container = restricted.container(RESEARCHER, RESTRICTED_PROJECT)
    container.reload()
    link = next(
        v["IPAddress"]
        for name, v in container.attrs["NetworkSettings"]["Networks"].items()
        if "-view-" in name
    )
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((link, 8888), timeout=10).close()


def test_stopping_the_workspace_removes_its_viewer_and_link(restricted: Hub) -> None:
    container = _viewer(restricted)
    (network_name,) = container.attrs["NetworkSettings"]["Networks"]
    restricted.stop_server(RESEARCHER, RESTRICTED_PROJECT)
    client = docker.from_env()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(container.id)
    with pytest.raises(docker.errors.NotFound):
        client.networks.get(network_name)
