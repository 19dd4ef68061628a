"""A real workspace on encrypted folders (docs/lifecycle.md): JupyterLab writes to ~/work
and /project and reads back across a stop and start, while the filesystem files on the
host disk hold neither the contents nor the names."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import requests
from cleanroom.library import at_rest
from cleanroom.lifecycle.keys import Keyring, KeySource
from cleanroom.workspace import encrypted_fs, incoming

from tests.integration.deployment import DATASET, PROJECT
from tests.integration.harness import INSTANCE, Hub, run_in

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


def _stop_every_workspace(hub: Hub) -> None:
    """Stop every workspace of this deployment through the hub (others' tests restart
    theirs with ensure_running), so that nothing uses the dataset any more."""
    for c in hub.docker.containers.list(filters={"label": f"cleanroom.instance={INSTANCE}"}):
        user, project = c.labels.get("cleanroom.user"), c.labels.get("cleanroom.project")
        if c.labels.get("cleanroom.kind") == "workspace" and user and project:
            hub.stop_server(user, project)


def test_datasets_and_incoming_are_ciphertext_on_the_host(hub: Hub) -> None:
    """The dataset a workspace reads at /data and the files of /project/incoming lie
    encrypted on the host disk; the dataset is unlocked read-only only while a workspace
    uses it."""
    info = hub.registry.get_dataset(DATASET)
    image = at_rest.image_of(info.location)
    assert encrypted_fs.is_encrypted(image) and not Path(info.location).exists()
    keyring = Keyring(hub.state / "keys", KeySource(None, hub.state / "secrets" / "master.key"))
    root = hub.state / "workspaces"
    hub.ensure_running("bob", PROJECT)
    # Ingress delivers into the running workspace's encrypted incoming folder.
    with incoming.opened(PROJECT, root=root, keyring=keyring) as folder:
        (folder / f"{MARKER}-in.csv").write_text(f"{MARKER}-incoming\n" * 20)
    container = hub.container("bob", PROJECT)
    code, out = run_in(container, "cat", f"/project/incoming/{MARKER}-in.csv")
    assert (code, out) == (0, f"{MARKER}-incoming\n" * 20)
    # /data as before: every registered file, byte for byte, read-only.
    path, _, sha = next(f for f in info.files if f[0].endswith(".csv"))
    code, out = run_in(container, "sha256sum", f"/data/{DATASET}/{path}")
    assert code == 0 and out.split()[0] == sha, out
    code, line = run_in(container, "sh", "-c", f"sed -n 3p /data/{DATASET}/{path}")
    assert code == 0 and len(line.strip()) >= 12, line  # a line of the data, to look for
    code, _ = run_in(container, "sh", "-c", f"echo x > /data/{DATASET}/new.txt")
    assert code != 0
    _stop_every_workspace(hub)
    # No workspace uses it: the dataset is locked (no host mount, no loop device).
    assert not encrypted_fs.is_unlocked(image)
    assert subprocess.run(["losetup", "-j", str(image)], capture_output=True,
                          text=True, check=True).stdout == ""  # fmt: skip
    os.sync()
    assert not _holds(image, line.strip().encode())
    assert not _holds(incoming.image_file(PROJECT, root), MARKER.encode())
    hub.ensure_running("bob", PROJECT)  # unlocked again for the next start
    code, out = run_in(hub.container("bob", PROJECT), "sha256sum", f"/data/{DATASET}/{path}")
    assert code == 0 and out.split()[0] == sha, out
    hub.stop_server("bob", PROJECT)
