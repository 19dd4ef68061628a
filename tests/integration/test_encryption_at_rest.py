"""A real workspace on encrypted folders (docs/lifecycle.md): JupyterLab writes to ~/work
and /project and reads back across a stop and start, while the filesystem files on the
host disk hold neither the contents nor the names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from cleanroom.workspace import encrypted_fs

from tests.integration.deployment import PROJECT
from tests.integration.harness import Hub, run_in

pytestmark = pytest.mark.docker

MARKER = "MARKER-at-rest-91c2e"


def _holds(image_file: Path, needle: bytes) -> bool:
    """Whether the bytes of a (sparse, gigabytes large) file contain ``needle``: read in
    pieces, holes skipped, never the whole file in memory."""
    piece = 4 * 2**20
    with image_file.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        offset = 0
        while offset < size:
            try:
                offset = os.lseek(f.fileno(), offset, os.SEEK_DATA)
            except OSError:
                return False  # only holes from here on
            f.seek(offset)
            if needle in f.read(piece + len(needle)):
                return True
            offset += piece
    return False


def test_workspace_files_are_ciphertext_on_the_host(hub: Hub) -> None:
    hub.ensure_running("bob", PROJECT)
    body = {"type": "file", "format": "text", "content": f"{MARKER}\n" * 100}
    put = requests.put(
        f"{hub.public_url}/user/bob/{PROJECT}/api/contents/work/{MARKER}-name.txt",
        json=body,
        headers={"Authorization": f"token {hub.token('bob')}"},
        timeout=60,
    )
    assert put.status_code in (200, 201), put.text
    container = hub.container("bob", PROJECT)
    code, _ = run_in(container, "sh", "-c", f"echo {MARKER} > /project/{MARKER}-shared.txt")
    assert code == 0
    folders = hub.state / "workspaces" / PROJECT
    work, shared = folders / "users" / "bob.ext4", folders / "shared.ext4"
    assert encrypted_fs.is_encrypted(work) and encrypted_fs.is_encrypted(shared)
    hub.stop_server("bob", PROJECT)
    # Stopped: the work folder is locked (no host mount), and its file is ciphertext.
    assert not encrypted_fs.is_unlocked(work)
    os.sync()  # the shared folder is still mounted: flush it through its loop device
    for image_file in (work, shared):
        assert not _holds(image_file, MARKER.encode()), image_file
    hub.spawn("bob", PROJECT)
    got = hub.server_get("bob", PROJECT, f"api/contents/work/{MARKER}-name.txt")
    assert got.status_code == 200
    assert got.json()["content"] == f"{MARKER}\n" * 100
    code, out = run_in(hub.container("bob", PROJECT), "cat", f"/project/{MARKER}-shared.txt")
    assert (code, out) == (0, f"{MARKER}\n")
    hub.stop_server("bob", PROJECT)
