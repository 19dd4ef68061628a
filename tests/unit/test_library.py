"""Registering a dataset: checksummed, read-only, all or nothing."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from cleanroom.errors import Conflict, InvalidInput
from cleanroom.library import at_rest
from cleanroom.library import register as library
from cleanroom.registry import Registry


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "incoming"
    (src / "sub").mkdir(parents=True)
    (src / "a.csv").write_text("x,y\n1,2\n")
    (src / "sub" / "b.txt").write_bytes(b"\x00" * 3_000_000)
    return src


def test_register_copies_hashes_and_locks(registry: Registry, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    info = library.register_dataset(
        registry,
        _source(tmp_path),
        name="press-line",
        version="v1",
        provider="Acme",
        actor="op",
        progress=lambda done, total, name: seen.append((done, total)),
        build_index=False,
    )
    files = {path: (size, sha) for path, size, sha in info.files}
    assert files["a.csv"] == (8, hashlib.sha256(b"x,y\n1,2\n").hexdigest())
    assert files["sub/b.txt"][0] == 3_000_000
    # Encrypted at rest (cleanroom.library.at_rest): read through its unlocked mount.
    with at_rest.opened(info.location, info.name, info.version) as location:
        assert (location / "sub" / "b.txt").stat().st_size == 3_000_000
        assert stat.S_IMODE((location / "a.csv").stat().st_mode) == 0o444
        assert stat.S_IMODE(location.stat().st_mode) == 0o555
    assert seen[-1] == (info.total_bytes, info.total_bytes)  # progress reached the end
    assert registry.get_dataset("press-line").files == info.files


def test_versions_are_immutable(registry: Registry, tmp_path: Path) -> None:
    src = _source(tmp_path)
    library.register_dataset(
        registry,
        src,
        name="press-line",
        version="v1",
        provider="Acme",
        actor="op",
        build_index=False,
    )
    with pytest.raises(Conflict, match="immutable"):
        library.register_dataset(
            registry,
            src,
            name="press-line",
            version="v1",
            provider="Acme",
            actor="op",
            build_index=False,
        )


def test_symlinks_are_refused_and_nothing_is_left(registry: Registry, tmp_path: Path) -> None:
    src = _source(tmp_path)
    os.symlink("/etc/passwd", src / "sneaky.csv")
    with pytest.raises(InvalidInput, match="symbolic link"):
        library.register_dataset(
            registry,
            src,
            name="press-line",
            version="v1",
            provider="Acme",
            actor="op",
            build_index=False,
        )
    assert registry.list_datasets() == []
    lib = tmp_path / "state" / "library"
    assert not lib.exists() or not any(lib.rglob("*.csv"))


@pytest.mark.parametrize("problem", ["missing", "empty", "hidden", "fifo"])
def test_bad_sources_are_refused(registry: Registry, tmp_path: Path, problem: str) -> None:
    src = tmp_path / "incoming"
    src.mkdir()
    if problem == "missing":
        src = tmp_path / "nope"
    elif problem == "hidden":
        (src / ".secret").write_text("x")
    elif problem == "fifo":
        os.mkfifo(src / "pipe")
    with pytest.raises(InvalidInput):
        library.register_dataset(
            registry,
            src,
            name="press-line",
            version="v1",
            provider="Acme",
            actor="op",
            build_index=False,
        )
    assert registry.list_datasets() == []


def test_failure_mid_copy_leaves_nothing(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}

    def explode(done: int, total: int, name: str) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        library.register_dataset(
            registry,
            _source(tmp_path),
            name="press-line",
            version="v1",
            provider="Acme",
            actor="op",
            progress=explode,
            build_index=False,
        )
    assert registry.list_datasets() == []
    parent = tmp_path / "state" / "library" / "press-line"
    assert list(parent.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "version", "provider"),
    [("../x", "v1", "Acme"), ("ok-name", "v 1", "Acme"), ("ok-name", "v1", " ")],
)
def test_bad_names_are_refused_before_copying(
    registry: Registry, tmp_path: Path, name: str, version: str, provider: str
) -> None:
    with pytest.raises(InvalidInput):
        library.register_dataset(
            registry, _source(tmp_path), name=name, version=version, provider=provider, actor="op"
        )
    assert not (tmp_path / "state" / "library").exists()


def test_registration_builds_the_disclosure_index(registry: Registry, tmp_path: Path) -> None:
    from cleanroom.checks import load_source_index
    from cleanroom.demo.press_line import write_press_line

    src = tmp_path / "press"
    src.mkdir()
    write_press_line(src, rows=500, seed=3)
    info = library.register_dataset(
        registry, src, name="press-line", version="v1", provider="Acme", actor="op"
    )
    assert info.index_location is not None
    index_dir = Path(info.index_location)
    assert index_dir.is_dir() and not index_dir.is_relative_to(Path(info.location))
    load_source_index(index_dir)  # loads without the source data


def test_stale_indexes_are_found_and_rebuilt(registry: Registry, tmp_path: Path) -> None:
    import json

    from cleanroom.demo.press_line import write_press_line

    src = tmp_path / "press"
    src.mkdir()
    write_press_line(src, rows=300, seed=4)
    info = library.register_dataset(
        registry, src, name="press-line", version="v1", provider="Acme", actor="op"
    )
    assert library.index_is_current(info.index_location)
    meta_file = next(Path(str(info.index_location)).glob("*.json"))
    meta = json.loads(meta_file.read_text())
    meta["version"] = -1  # as an index from an older release of the checks
    meta_file.write_text(json.dumps(meta))
    assert not library.index_is_current(info.index_location)
    rebuilt = library.reindex_dataset(registry, "press-line", "v1", actor="op")
    assert rebuilt.index_location == info.index_location
    assert library.index_is_current(rebuilt.index_location)
    assert not any(
        p.name.endswith((".old", ".rebuilding")) for p in meta_file.parent.parent.iterdir()
    )
