"""JupyterLab's page config is read once only while every file it comes from is fixed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cleanroom_workspace import labpage
from jupyterlab_server.config import get_page_config


def _extension(folder: Path, name: str) -> None:
    ext = folder / name
    ext.mkdir(parents=True)
    package = {
        "name": name,
        "version": "1.0.0",
        "jupyterlab": {"_build": {"load": "static/remoteEntry.js", "extension": "./ext"}},
    }
    (ext / "package.json").write_text(json.dumps(package))


def _names(config: dict[str, Any]) -> list[str]:
    return sorted(e["name"] for e in config["federated_extensions"])


class Counting:
    """``get_page_config`` that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        return get_page_config(*args, **kwargs)


def test_root_owned_folders_are_fixed_and_temp_folders_are_not(tmp_path: Path) -> None:
    assert labpage.fixed("/usr/lib")
    # Missing: judged by the folder where it would appear.
    assert labpage.fixed("/usr/lib/no-such-folder/package.json")
    assert not labpage.fixed(str(tmp_path))  # /tmp is writable by everyone
    assert not labpage.fixed(str(tmp_path / "later" / "package.json"))


def test_read_on_every_page_where_a_source_could_change(tmp_path: Path) -> None:
    folder = tmp_path / "labextensions"
    _extension(folder, "first")
    read = Counting()
    cached = labpage.once_while_fixed(read)
    assert _names(cached([str(folder)])) == ["first"]
    _extension(folder, "second")  # a writable folder: the next page must see it
    assert _names(cached([str(folder)])) == ["first", "second"]
    assert read.calls == 2


def test_read_once_while_fixed_and_each_page_gets_its_own_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "labextensions"
    _extension(folder, "first")
    seen: list[str] = []

    def fixed(path: str) -> bool:
        seen.append(path)
        return True

    monkeypatch.setattr(labpage, "fixed", fixed)
    read = Counting()
    cached = labpage.once_while_fixed(read)
    page = cached([str(folder)])
    assert _names(page) == ["first"]
    # What was checked: the folder, the extension's folder and its files.
    assert {str(folder), str(folder / "first"), str(folder / "first" / "package.json")} <= set(seen)
    page["federated_extensions"].clear()  # one page's change reaches no other page
    assert _names(cached([str(folder)])) == ["first"]
    assert read.calls == 1
    # Another set of folders is another answer.
    other = tmp_path / "other"
    _extension(other, "third")
    assert _names(cached([str(other)])) == ["third"]
    assert read.calls == 2


def test_installed_into_jupyterlabs_page_handler_once() -> None:
    from jupyterlab_server import handlers

    before = handlers.get_page_config  # already wrapped where a server ran in this process
    handlers.get_page_config = get_page_config
    try:
        assert labpage.install()
        patched = handlers.get_page_config
        assert patched is not get_page_config
        assert labpage.install()
        assert handlers.get_page_config is patched  # not wrapped twice
    finally:
        handlers.get_page_config = before
