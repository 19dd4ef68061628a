"""``cleanroom-workspace-server``: the workspace's Jupyter server, run for real.

The server is started as the spawner starts it (the console script, configured only by
JupyterHub's environment variables) on a loopback port, with a stand-in hub (a real HTTP
server of this test) receiving its activity reports.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cleanroom_workspace import server

TOKEN = "the-server-token-" + "x" * 20
PREFIX = "/user/alice/p1/"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Hub(BaseHTTPRequestHandler):
    reports: list[tuple[str, str, dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.reports.append((self.path, self.headers.get("Authorization", ""), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def hub() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _environment(port: int, hub: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(
        HOME=str(home),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}/",
        JUPYTERHUB_SERVICE_PREFIX=PREFIX,
        JUPYTERHUB_API_TOKEN=TOKEN,
        JUPYTERHUB_USER="alice",
        JUPYTERHUB_SERVER_NAME="p1",
        JUPYTERHUB_BASE_URL="/",
        JUPYTERHUB_ACTIVITY_URL=f"{hub}/hub/api/users/alice/activity",
        JUPYTERHUB_ROOT_DIR=str(home),
        JUPYTERHUB_DEFAULT_URL="/lab",
    )
    return env


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's home and root folder."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def running(hub: str, home: Path) -> Iterator[tuple[str, Path]]:
    port = _free_port()
    log = home.parent / "server.log"
    args = [sys.executable, "-m", "cleanroom_workspace.server"]
    if os.getuid() == 0:
        args.append("--allow-root")  # CI runs as root; the image runs it as uid 1001
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, env=_environment(port, hub, home), stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}{PREFIX}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                pytest.fail(f"the server exited: {log.read_text()[-3000:]}")
            try:
                httpx.get(base + "api", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail(f"the server did not answer: {log.read_text()[-3000:]}")
        yield base, log
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _status(base: str, **kwargs: object) -> int:
    return httpx.get(base + "api/status", timeout=10, **kwargs).status_code  # type: ignore[arg-type]


def test_only_the_server_token_in_the_header_is_admitted(running: tuple[str, Path]) -> None:
    base, _ = running
    assert _status(base, headers={"Authorization": f"token {TOKEN}"}) == 200
    assert _status(base, headers={"Authorization": f"Bearer {TOKEN}"}) == 200
    assert _status(base, headers={"Authorization": "token someone-elses-hub-token"}) == 403
    assert _status(base, headers={"Authorization": f"token {TOKEN}x"}) == 403
    assert _status(base, params={"token": TOKEN}) == 403
    assert _status(base, cookies={"jupyterhub-session-id": "x"}) == 403
    assert _status(base) == 403


def test_no_login_page_and_no_token_printed(running: tuple[str, Path]) -> None:
    base, log = running
    assert httpx.get(base + "login", timeout=10).status_code == 404
    text = log.read_text()
    assert "?token=" not in text.replace("?token=[secret]", "")  # no login URL with a token
    assert TOKEN not in text


def test_lab_page_carries_the_hub_menu_and_no_token(running: tuple[str, Path]) -> None:
    base, _ = running
    page = httpx.get(base + "lab", headers={"Authorization": f"token {TOKEN}"}, timeout=30)
    assert page.status_code == 200
    assert TOKEN not in page.text
    assert '"token": ""' in page.text
    assert '"hubPrefix": "/hub/"' in page.text
    assert '"hubServerName": "p1"' in page.text


def test_writes_with_the_token_need_no_xsrf_cookie(running: tuple[str, Path]) -> None:
    base, _ = running
    made = httpx.post(
        base + "api/contents",
        headers={"Authorization": f"token {TOKEN}"},
        json={"type": "notebook"},
        timeout=10,
    )
    assert made.status_code == 201, made.text


def _code_notebook() -> Any:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1 + 1"), nbformat.v4.new_markdown_cell("note")]
    return nb


def test_no_notebook_is_trusted_not_even_a_signed_one(
    running: tuple[str, Path], home: Path
) -> None:
    """cleanroom_workspace.untrusted: a notebook signed as stock Jupyter signs it (the
    user's own signature store and secret, which a stock server would trust) comes back
    with its cells untrusted; saving signs nothing; the explicit trust call is refused."""
    import nbformat
    from nbformat.sign import NotebookNotary

    base, _ = running
    auth = {"Authorization": f"token {TOKEN}"}
    cells = _code_notebook()
    for cell in cells["cells"]:
        cell["metadata"]["trusted"] = True  # as JupyterLab sends a trusted notebook back
    saved = httpx.put(
        base + "api/contents/saved.ipynb",
        headers=auth,
        json={"type": "notebook", "content": cells},
        timeout=10,
    )
    assert saved.status_code == 201, saved.text
    assert not (home / ".local/share/jupyter/nbsignatures.db").exists()  # nothing signed
    notary = NotebookNotary(data_dir=str(home / ".local/share/jupyter"))
    signed = nbformat.from_dict(_code_notebook())
    notary.mark_cells(signed, True)
    notary.sign(signed)
    assert notary.check_signature(signed)  # what a stock server would trust
    nbformat.write(signed, str(home / "signed.ipynb"))
    for name in ("saved.ipynb", "signed.ipynb"):
        got = httpx.get(base + f"api/contents/{name}", headers=auth, timeout=10).json()
        code = [c for c in got["content"]["cells"] if c["cell_type"] == "code"]
        assert code and all(c["metadata"].get("trusted") is False for c in code), name
    trust = httpx.post(base + "api/contents/signed.ipynb/trust", headers=auth, timeout=10)
    assert trust.status_code == 403


def test_activity_is_reported_to_the_hub_with_the_token(running: tuple[str, Path]) -> None:
    for _ in range(100):
        if _Hub.reports:
            break
        time.sleep(0.1)
    path, auth, body = _Hub.reports[0]
    assert path == "/hub/api/users/alice/activity"
    assert auth == f"token {TOKEN}"
    assert set(body) == {"servers", "last_activity"}
    assert body["servers"]["p1"]["last_activity"].endswith("Z")


def test_environment_config_requires_the_service_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUPYTERHUB_SERVICE_URL", raising=False)
    with pytest.raises(server.ConfigError, match="JUPYTERHUB_SERVICE_URL"):
        server.environment_config()


def test_a_server_without_a_token_refuses_to_start(
    hub: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _environment(_free_port(), hub, tmp_path)
    env["JUPYTERHUB_API_TOKEN"] = ""
    args = [sys.executable, "-m", "cleanroom_workspace.server"]
    if os.getuid() == 0:
        args.append("--allow-root")
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "JUPYTERHUB_API_TOKEN is not set" in done.stdout + done.stderr
