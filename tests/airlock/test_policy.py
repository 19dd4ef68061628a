"""The policy file: the committed one loads, and every bad value names its key."""

from __future__ import annotations

from pathlib import Path

import pytest
from cleanroom.airlock.exceptions import PolicyError
from cleanroom.airlock.policy import load_policy, parse_size, policy_from_dict

REPO = Path(__file__).resolve().parents[2]


def test_committed_policy_loads() -> None:
    policy = load_policy(REPO / "policies" / "airlock.yaml")
    assert policy.approvals_required == 2
    assert policy.limits.bytes_per_file == 50 * 1024**2


@pytest.mark.parametrize(
    ("doc", "names"),
    [
        ({"approvals_required": 0}, "approvals_required"),
        ({"approvals_required": "two"}, "approvals_required"),
        ({"aprovals_required": 2}, "aprovals_required"),
        ({"limits": {"files_per_request": -1}}, "limits.files_per_request"),
        ({"limits": {"bytes_per_file": "ten"}}, "limits.bytes_per_file"),
        ({"limits": {"bytes_per_file": "3 MiB", "bytes_per_request": "1 MiB"}}, "bytes_per_file"),
        ({"limits": {"per_day": 3}}, "per_day"),
        ({"limits": []}, "limits"),
        ([1, 2], "mapping"),
    ],
)
def test_bad_policy_names_the_key(doc: object, names: str) -> None:
    with pytest.raises(PolicyError, match=names):
        policy_from_dict(doc)


def test_sizes_take_units() -> None:
    assert parse_size("2 KiB", "k") == 2048
    assert parse_size("3MB", "k") == 3_000_000
    assert parse_size(10, "k") == 10


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read airlock policy"):
        load_policy(tmp_path / "nope.yaml")


def test_broken_yaml_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "airlock.yaml"
    bad.write_text("limits: [unclosed\n")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)
