"""The keyring: a master key from the key source, wrapped project keys, derived keys,
fail closed on a wrong or missing key, crypto-shredding."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cleanroom.lifecycle.keys import Keyring, KeyShredded, KeySource, KeyUnavailable


def test_project_keys_are_stable_distinct_and_wrapped(keyring: Keyring, tmp_path: Path) -> None:
    a = keyring.project_key("p-alpha")
    assert len(a) == 32
    assert keyring.project_key("p-alpha") == a
    assert keyring.project_key("p-beta") != a
    # The key never lies in clear on disk: only wrapped by the master key.
    stored = (tmp_path / "keys" / "projects" / "p-alpha.key").read_bytes()
    assert a.hex().encode() not in stored and a not in stored
    # A fresh keyring (another process) reads the same key back.
    again = Keyring(tmp_path / "keys", keyring.source)
    assert again.project_key("p-alpha") == a
    assert again.derive("p-alpha", "fscrypt:x", 64) != again.derive("p-alpha", "fscrypt:y", 64)
    assert len(again.derive("p-alpha", "airlock-blobs")) == 32


def test_a_wrong_master_key_fails_closed(keyring: Keyring, tmp_path: Path) -> None:
    keyring.project_key("p-alpha")
    keyring.source.file.write_text("00" * 32 + "\n")
    before = sorted(p.name for p in (tmp_path / "keys").rglob("*"))
    with pytest.raises(KeyUnavailable, match="not the key this deployment"):
        Keyring(tmp_path / "keys", keyring.source).project_key("p-alpha")
    with pytest.raises(KeyUnavailable, match="not the key this deployment"):
        Keyring(tmp_path / "keys", keyring.source).project_key("p-new")
    assert sorted(p.name for p in (tmp_path / "keys").rglob("*")) == before


def test_a_missing_master_key_is_never_replaced(keyring: Keyring, tmp_path: Path) -> None:
    keyring.project_key("p-alpha")
    keyring.source.file.unlink()
    with pytest.raises(KeyUnavailable, match="master key is missing"):
        Keyring(tmp_path / "keys", keyring.source).project_key("p-alpha")
    assert not keyring.source.file.exists()


def test_a_malformed_key_file_is_refused(key_source: KeySource, tmp_path: Path) -> None:
    key_source.file.parent.mkdir(parents=True)
    key_source.file.write_text("not-a-key\n")
    with pytest.raises(KeyUnavailable, match="expected 64 hex digits"):
        Keyring(tmp_path / "keys", key_source).project_key("p-alpha")
    assert not (tmp_path / "keys").exists()


def test_a_wrapped_key_copied_to_another_project_does_not_open(
    keyring: Keyring, tmp_path: Path
) -> None:
    keyring.project_key("p-alpha")
    folder = tmp_path / "keys" / "projects"
    (folder / "p-beta.key").write_bytes((folder / "p-alpha.key").read_bytes())
    with pytest.raises(KeyUnavailable, match="copied from another project"):
        keyring.project_key("p-beta")


def test_key_command(tmp_path: Path) -> None:
    script = tmp_path / "kms.py"
    script.write_text("print('ab' * 32)\n")
    source = KeySource(command=f"{sys.executable} {script}", file=tmp_path / "unused")
    ring = Keyring(tmp_path / "keys", source)
    key = ring.project_key("p-alpha")
    assert not (tmp_path / "unused").exists()
    script.write_text("print('cd' * 32)\n")
    with pytest.raises(KeyUnavailable, match="not the key this deployment"):
        Keyring(tmp_path / "keys", source).project_key("p-alpha")
    script.write_text("import sys; sys.exit('the HSM is locked')\n")
    with pytest.raises(KeyUnavailable, match="the HSM is locked"):
        Keyring(tmp_path / "keys", source).project_key("p-alpha")
    script.write_text("print('ab' * 32)\n")
    assert Keyring(tmp_path / "keys", source).project_key("p-alpha") == key


def test_shredding_destroys_the_key_for_good(keyring: Keyring, tmp_path: Path) -> None:
    keyring.project_key("p-alpha")
    keyring.project_key("p-beta")
    assert keyring.shred("p-alpha") is True
    assert not (tmp_path / "keys" / "projects" / "p-alpha.key").exists()
    with pytest.raises(KeyShredded):
        keyring.project_key("p-alpha")
    with pytest.raises(KeyShredded):
        Keyring(tmp_path / "keys", keyring.source).derive("p-alpha", "airlock-blobs")
    assert keyring.project_key("p-beta")  # the others are untouched


def test_bad_project_names_are_refused(keyring: Keyring) -> None:
    with pytest.raises(KeyUnavailable, match="not a project name"):
        keyring.project_key("../etc")


def test_a_lost_check_file_does_not_let_a_wrong_key_in(keyring: Keyring, tmp_path: Path) -> None:
    keyring.project_key("p-alpha")
    (tmp_path / "keys" / "check").unlink()
    keyring.source.file.write_text("22" * 32)
    with pytest.raises(KeyUnavailable, match="does not open"):
        Keyring(tmp_path / "keys", keyring.source).project_key("p-alpha")
    assert not (tmp_path / "keys" / "check").exists()
