"""Every route out of the workspace that the extension closes, and the ones it keeps open.

Each blocked route must answer 403 with a message that says how to request a release:
JSON for scripts and API calls, a page for browser navigations.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cleanroom_workspace.errors import BLOCKED_REASON

from .conftest import Workspace, message

HTML = {"Accept": "text/html,application/xhtml+xml"}


def assert_blocked(response: Any) -> None:
    assert response.code == 403, response.body
    assert "Request release" in response.body.decode()
    if response.headers.get("Content-Type", "").startswith("application/json"):
        assert json.loads(response.body)["reason"] == BLOCKED_REASON


# -- /files/, /view/, nbconvert, proxies ----------------------------------------------


@pytest.mark.parametrize(
    "parts,params",
    [
        (("files", "work", "notes.txt"), {}),
        (("files", "work", "notes.txt"), {"download": "1"}),
        (("files", "work", "plot.png"), {}),
        (("files", "project", "shared.md"), {}),
        (("files", "data", "press", "cycles.csv"), {}),
        (("files", "work", "missing.txt"), {}),
        (("view", "work", "notes.txt"), {}),
        (("view", "work", "plot.png"), {}),
        (("nbconvert", "html", "work", "nb.ipynb"), {}),
        (("nbconvert", "html", "work", "nb.ipynb"), {"download": "true"}),
        (("nbconvert", "script", "work", "nb.ipynb"), {}),
        (("nbconvert", "notebook", "work", "nb.ipynb"), {"download": "true"}),
        (("proxy", "8888", ""), {}),
        (("proxy", "absolute", "8888", "x"), {}),
    ],
)
def test_download_routes_are_blocked(
    fetch: Any, workspace: Workspace, jp_create_notebook: Any, parts: tuple[str, ...], params: Any
) -> None:
    jp_create_notebook("work/nb.ipynb")
    response = fetch(*parts, params=params)
    assert_blocked(response)
    assert json.loads(response.body)["reason"] == BLOCKED_REASON


def test_blocked_route_answers_a_browser_with_a_page(fetch: Any, workspace: Workspace) -> None:
    response = fetch("files", "work", "notes.txt", headers=HTML)
    assert_blocked(response)
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<h1>403: blocked by the clean room</h1>" in response.body.decode()


def test_head_on_files_is_blocked(fetch: Any, workspace: Workspace) -> None:
    assert fetch("files", "work", "notes.txt", method="HEAD").code == 403


def test_nbconvert_post_is_blocked(
    fetch: Any, workspace: Workspace, jp_create_notebook: Any
) -> None:
    jp_create_notebook("work/nb.ipynb")
    notebook = json.loads((workspace.work / "nb.ipynb").read_text())
    body = json.dumps({"content": notebook})
    assert_blocked(fetch("nbconvert", "html", method="POST", body=body))


def test_nbconvert_format_list_is_allowed(fetch: Any, workspace: Workspace) -> None:
    # GET /api/nbconvert lists exporters; it returns no document.
    response = fetch("api", "nbconvert")
    assert response.code == 200
    assert "html" in json.loads(response.body)


def test_guard_alone_refuses_downloads(jp_serverapp: Any) -> None:
    """Without the extension's blocked routes, the authorizer still refuses by handler."""
    from cleanroom_workspace.authorizer import GUARD_SETTING
    from cleanroom_workspace.errors import Refused
    from jupyter_server.files.handlers import FilesHandler
    from jupyter_server.nbconvert.handlers import NbconvertFileHandler, NbconvertPostHandler
    from jupyter_server.view.handlers import ViewHandler

    guard = jp_serverapp.web_app.settings[GUARD_SETTING]
    for cls in (FilesHandler, ViewHandler, NbconvertFileHandler, NbconvertPostHandler):
        handler = cls.__new__(cls)
        with pytest.raises(Refused) as refused:
            guard.check(handler, "read", "contents")
        assert refused.value.status == 403
        assert "Request release" in refused.value.text()


# -- contents API reads ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path,params",
    [
        ("data/press/cycles.csv", {}),
        ("data/press/cycles.csv", {"type": "file", "format": "text"}),
        ("data/press/frame.png", {"type": "file", "format": "base64"}),
        ("work/data-link.csv", {}),  # a symlink the kernel made into the data mount
        ("work/blob.bin", {}),  # binary read without a format comes back as base64
        ("work/blob.bin", {"type": "file", "format": "base64"}),
        ("work/table.csv", {"type": "file", "format": "base64"}),
        ("project/shared.md", {"type": "file", "format": "base64"}),
    ],
)
def test_contents_reads_that_are_refused(
    fetch: Any, workspace: Workspace, path: str, params: Any
) -> None:
    (workspace.work / "data-link.csv").symlink_to(workspace.data / "press" / "cycles.csv")
    response = fetch("api", "contents", *path.split("/"), params=params)
    assert_blocked(response)
    assert message(response)


@pytest.mark.parametrize("target", ["/proc/self/environ", "/proc/self", "/etc/passwd"])
def test_symlinks_out_of_the_workspace_are_refused(
    fetch: Any, workspace: Workspace, target: str
) -> None:
    # The server runs as another uid than kernels: what it may read, they may not
    # (its environment holds its hub token and the per-start server secret).
    (workspace.work / "out").symlink_to(target)
    response = fetch("api", "contents", "work", "out")
    assert_blocked(response)
    assert "outside the workspace's folders" in message(response)
    assert b"JUPYTERHUB" not in response.body


def test_copy_and_rename_out_of_the_workspace_are_refused(fetch: Any, workspace: Workspace) -> None:
    (workspace.work / "env").symlink_to("/proc/self/environ")
    copied = fetch(
        "api", "contents", "work", method="POST", body=json.dumps({"copy_from": "work/env"})
    )
    assert_blocked(copied)


def test_data_folder_refusal_says_to_use_the_kernel(fetch: Any, workspace: Workspace) -> None:
    response = fetch("api", "contents", "data", "press", "cycles.csv")
    assert "read-only data folder" in message(response)


@pytest.mark.parametrize(
    "path,params",
    [
        ("work/notes.txt", {}),
        ("work/notes.txt", {"type": "file", "format": "text"}),
        ("project/shared.md", {}),
        ("work/nb.ipynb", {}),
        ("work/nb.ipynb", {"type": "notebook"}),
        ("work/plot.png", {}),  # allowlisted image: the image viewer shows it
        ("work/plot.png", {"type": "file", "format": "base64"}),
        ("work", {}),
        ("", {}),
        ("data", {}),  # listing a data folder shows names and sizes, not contents
        ("data/press", {}),
        ("data/press/cycles.csv", {"content": "0"}),
    ],
)
def test_contents_reads_that_are_allowed(
    fetch: Any, workspace: Workspace, jp_create_notebook: Any, path: str, params: Any
) -> None:
    jp_create_notebook("work/nb.ipynb")
    parts = path.split("/") if path else []
    response = fetch("api", "contents", *parts, params=params)
    assert response.code == 200, response.body


def test_image_over_the_base64_cap_is_refused(fetch: Any, workspace: Workspace) -> None:
    (workspace.work / "big.png").write_bytes(b"\x89PNG" + os.urandom(2 * 1024 * 1024 + 1))
    assert_blocked(fetch("api", "contents", "work", "big.png"))


def test_file_over_the_read_cap_is_refused(fetch: Any, workspace: Workspace) -> None:
    with open(workspace.work / "huge.txt", "wb") as f:
        f.truncate(32 * 1024 * 1024 + 1)
    response = fetch("api", "contents", "work", "huge.txt")
    assert_blocked(response)
    assert "at most 33554432 bytes" in message(response)


# -- contents API writes that touch data ------------------------------------------------


def test_copy_out_of_data_is_refused(fetch: Any, workspace: Workspace) -> None:
    body = json.dumps({"copy_from": "data/press/cycles.csv"})
    assert_blocked(fetch("api", "contents", "work", method="POST", body=body))
    assert not list(workspace.work.glob("cycles*"))


def test_copy_by_put_out_of_data_is_refused(fetch: Any, workspace: Workspace) -> None:
    body = json.dumps({"copy_from": "data/press/cycles.csv"})
    response = fetch("api", "contents", "work", "c.csv", method="PUT", body=body)
    assert_blocked(response)


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("PATCH", "data/press/cycles.csv", {"path": "work/cycles.csv"}),
        ("PATCH", "work/notes.txt", {"path": "data/press/notes.txt"}),
        ("DELETE", "data/press/cycles.csv", None),
        ("PUT", "data/press/new.txt", {"type": "file", "format": "text", "content": "x"}),
        ("POST", "data/press", {"type": "file"}),
    ],
)
def test_changes_to_data_are_refused(
    fetch: Any, workspace: Workspace, method: str, path: str, body: Any
) -> None:
    kwargs = {"body": json.dumps(body)} if body is not None else {}
    response = fetch("api", "contents", *path.split("/"), method=method, **kwargs)
    assert response.code == 403, response.body
    assert (workspace.data / "press" / "cycles.csv").exists()


def test_copy_within_work_is_allowed(fetch: Any, workspace: Workspace) -> None:
    body = json.dumps({"copy_from": "work/notes.txt"})
    assert fetch("api", "contents", "project", method="POST", body=body).code == 201


# -- kernel specs -----------------------------------------------------------------------


def test_kernel_logo_is_served(fetch: Any, workspace: Workspace) -> None:
    assert fetch("kernelspecs", "python3", "logo-64x64.png").code == 200


@pytest.mark.parametrize("resource", ["kernel.json", "logo-64x64.png.bak", "../kernel.json"])
def test_other_kernelspec_files_are_refused(
    fetch: Any, workspace: Workspace, resource: str
) -> None:
    response = fetch("kernelspecs", "python3", resource)
    assert response.code in (403, 404), response.body
    if response.code == 404:
        # tornado normalises '..' away before routing; then it must not be served either
        assert resource.startswith("..")


def test_logo_of_a_kernelspec_the_user_wrote_is_refused(
    fetch: Any, workspace: Workspace, jp_data_dir: Path
) -> None:
    spec = jp_data_dir / "kernels" / "sneaky"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps({"argv": ["python", "-c", "pass"], "display_name": "x", "language": "python"})
    )
    (spec / "logo-64x64.png").write_bytes(b"\x89PNG" + b"secret data")
    response = fetch("kernelspecs", "sneaky", "logo-64x64.png")
    assert_blocked(response)


# -- what must keep working -------------------------------------------------------------


def test_save_text_file_in_work(fetch: Any, workspace: Workspace) -> None:
    body = json.dumps({"type": "file", "format": "text", "content": "edited\n"})
    assert fetch("api", "contents", "work", "notes.txt", method="PUT", body=body).code == 200
    assert (workspace.work / "notes.txt").read_text() == "edited\n"


def test_save_notebook_in_project(fetch: Any, workspace: Workspace) -> None:
    nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    body = json.dumps({"type": "notebook", "format": "json", "content": nb})
    assert fetch("api", "contents", "project", "a.ipynb", method="PUT", body=body).code == 201


def test_new_untitled_notebook_and_rename(fetch: Any, workspace: Workspace) -> None:
    created = fetch("api", "contents", "work", method="POST", body=json.dumps({"type": "notebook"}))
    assert created.code == 201
    path = json.loads(created.body)["path"]
    body = json.dumps({"path": "work/analysis.ipynb"})
    assert fetch("api", "contents", *path.split("/"), method="PATCH", body=body).code == 200
    assert fetch("api", "contents", "work", "analysis.ipynb", method="DELETE").code == 204


def test_running_code_and_terminals(fetch: Any, workspace: Workspace) -> None:
    kernel = fetch("api", "kernels", method="POST", body=json.dumps({"name": "python3"}))
    assert kernel.code == 201
    kernel_id = json.loads(kernel.body)["id"]
    assert fetch("api", "kernels", kernel_id, method="DELETE").code == 204
    terminal = fetch("api", "terminals", method="POST", body="{}")
    assert terminal.code == 200, terminal.body
    name = json.loads(terminal.body)["name"]
    assert fetch("api", "terminals", name, method="DELETE").code == 204


def test_base64_upload_of_text_is_allowed(fetch: Any, workspace: Workspace) -> None:
    content = base64.b64encode(b"a,b\n1,2\n").decode()
    body = json.dumps({"type": "file", "format": "base64", "content": content})
    assert fetch("api", "contents", "work", "in.csv", method="PUT", body=body).code == 201
