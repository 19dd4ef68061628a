"""The workspace policy file: defaults, the packaged copy, and clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cleanroom_workspace.policy import (
    PolicyError,
    default_policy_text,
    load_policy,
    parse_policy,
)

REPO_POLICY = Path(__file__).parents[2] / "policies" / "workspace.yaml"


def defaults() -> Any:
    return yaml.safe_load(REPO_POLICY.read_text())


def test_repository_policy_is_valid() -> None:
    policy = load_policy(REPO_POLICY.parent)
    assert policy.uploads.max_bytes == 1024 * 1024
    assert policy.uploads.allow_binary is False
    assert policy.folders.work == ("work", "project")
    assert "data" in policy.folders.data


def test_packaged_copy_is_the_repository_policy() -> None:
    # The wheel carries its own copy so the image works without the repository.
    assert default_policy_text() == REPO_POLICY.read_text()


def test_packaged_defaults_load_without_a_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLEANROOM_POLICIES_DIR", raising=False)
    assert load_policy().source == "packaged workspace.yaml"


def test_policies_dir_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "workspace.yaml").write_text(REPO_POLICY.read_text())
    monkeypatch.setenv("CLEANROOM_POLICIES_DIR", str(tmp_path))
    assert load_policy().source == str(tmp_path / "workspace.yaml")


def test_named_folder_without_the_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the workspace policy"):
        load_policy(tmp_path)


def test_invalid_yaml_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "workspace.yaml").write_text("version: [1\n")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(tmp_path)


def _set(data: Any, dotted: str, value: Any) -> Any:
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    "key,value,words",
    [
        ("version", 2, "version must be 1"),
        ("uploads.max_bytes", 0, "uploads.max_bytes must be a positive whole number"),
        ("uploads.max_bytes", "1MiB", "uploads.max_bytes must be a positive whole number"),
        ("uploads.max_bytes", True, "uploads.max_bytes must be a positive whole number"),
        ("uploads.allow_binary", "no", "uploads.allow_binary must be true or false"),
        ("uploads.max_bytes", _DELETE, "uploads.max_bytes is missing"),
        ("uploads.surprise", 1, "unknown policy key(s): uploads.surprise"),
        ("contents.base64_allowlist", ["png"], "is not a file suffix"),
        ("contents.base64_allowlist", "png", "must be a list of non-empty strings"),
        ("folders.work", [], "folders.work must not be empty"),
        ("outputs.iopub_data_rate_limit", -1, "outputs.iopub_data_rate_limit must be a positive"),
        ("releases", None, "releases must be a mapping, not nothing"),
        ("extra", {}, "unknown policy key(s): extra"),
    ],
)
def test_errors_name_the_key(key: str, value: Any, words: str) -> None:
    with pytest.raises(PolicyError) as error:
        parse_policy(_set(defaults(), key, value), "test.yaml")
    assert words in str(error.value)
    assert str(error.value).startswith("test.yaml: ")


def test_policy_must_be_a_mapping() -> None:
    with pytest.raises(PolicyError, match="the policy must be a mapping"):
        parse_policy(["version", 1])
