"""Quota tiers: sizes parse, bad policies name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from cleanroom.errors import InvalidInput, NotFound
from cleanroom.workspace import quotas


def test_default_policy_loads() -> None:
    tiers = quotas.load_tiers()
    assert tiers["standard"].memory_bytes == 2 * 1024**3
    assert tiers["standard"].cpu == 1.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512M", 512 * 2**20), ("2G", 2**31), ("1.5GiB", int(1.5 * 2**30)), (4096, 4096)],
)
def test_sizes(text: str | int, expected: int) -> None:
    assert quotas.parse_size(text, "k") == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("tiers: {}", "'tiers' must map"),
        ("tiers: {a: {cpu: 1, pids: 64, memory: lots}}", "tiers.a.memory"),
        ("tiers: {a: {cpu: 0, pids: 64, memory: 1G}}", "cpu must be > 0"),
        ("tiers: {a: {cpu: 1, pids: 64, memory: 1G, gpu: 1}}", "unknown key"),
        ("tiers: [", "not valid YAML"),
    ],
)
def test_bad_policies_name_the_problem(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "quotas.yaml"
    path.write_text(body)
    with pytest.raises(InvalidInput, match=message):
        quotas.load_tiers(path)


def test_unknown_tier() -> None:
    with pytest.raises(NotFound, match="no quota tier 'huge'"):
        quotas.tier("huge")
