"""A workspace's host folders without a storage quota (sized ones: tests/integration)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cleanroom.registry import DatasetMount, ProjectInfo
from cleanroom.workspace.folders import WorkspaceFolders


def no_engine() -> None:
    raise AssertionError("folders without a size must not ask the engine")


PLAN = ProjectInfo(
    name="p-alpha",
    title="Alpha",
    status="approved",
    quota_tier="standard",
    ends_on=None,
    datasets=(DatasetMount("press", "v1", "/library/press/v1", None),),
)


def test_mounts_are_made_with_their_modes_and_datasets_read_only(tmp_path: Path) -> None:
    folders = WorkspaceFolders(tmp_path, 1000, "test", no_engine)
    mounts = folders.mounts(PLAN, "alice")
    work = tmp_path / "p-alpha" / "users" / "alice"
    assert mounts[str(work)] == {"bind": "/home/researcher/work", "mode": "rw"}
    assert mounts[str(tmp_path / "p-alpha" / "shared")]["bind"] == "/project"
    assert mounts[str(tmp_path / "p-alpha" / "incoming")] == {
        "bind": "/project/incoming",
        "mode": "ro",
    }
    assert mounts["/library/press/v1"] == {"bind": "/data/press", "mode": "ro"}
    assert stat.S_IMODE(work.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "p-alpha" / "shared").stat().st_mode) == 0o770


def test_files_in_an_existing_work_folder_are_kept(tmp_path: Path) -> None:
    folders = WorkspaceFolders(tmp_path, 1000, "test", no_engine)
    folders.mounts(PLAN, "bob")
    note = tmp_path / "p-alpha" / "users" / "bob" / "notes.txt"
    note.write_text("kept")
    folders.mounts(PLAN, "bob")
    assert note.read_text() == "kept"
    assert folders.work_filesystem("p-alpha", "bob") == note.parent.with_name("bob.ext4")


def test_folders_belong_to_the_workspace_uid_when_run_as_root(tmp_path: Path) -> None:
    folders = WorkspaceFolders(tmp_path, 1000, "test", no_engine)
    folders.mounts(PLAN, "carol")
    owner = (tmp_path / "p-alpha" / "users" / "carol").stat().st_uid
    assert owner == (1000 if os.geteuid() == 0 else os.geteuid())
