"""The airlock checks each submitted file against its project's source datasets."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from cleanroom.airlock.checks_adapter import DisclosureChecks


@pytest.fixture(scope="module")
def press_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A small press-line source, its index, and the source's first rows as a CSV."""
    from cleanroom.checks import build_source_index
    from cleanroom.demo.press_line import generate_press_line

    folder = tmp_path_factory.mktemp("press")
    frame = generate_press_line(rows=3_000, seed=5)
    source = folder / "press_line.parquet"
    frame.to_parquet(source)
    build_source_index([source], folder / "index", name="press-line")
    head = io.StringIO()
    frame.head(20).to_csv(head, index=False)
    return folder / "index", head.getvalue().encode()


def test_copied_source_rows_fail_against_the_projects_index(
    press_index: tuple[Path, bytes],
) -> None:
    index, head = press_index
    checks = DisclosureChecks(datasets_of=lambda project: (("press-line", "v1", str(index)),))
    result = checks(head, "head.csv", "press-quality")
    assert result["verdict"] == "fail", result
    assert "unavailable" not in result


def test_without_sources_the_same_rows_are_not_matched(press_index: tuple[Path, bytes]) -> None:
    _, head = press_index
    result = DisclosureChecks(datasets_of=lambda project: ())(head, "head.csv", "elsewhere")
    rules = {f["rule"] for f in result["findings"]}
    assert not any("source" in rule for rule in rules), rules


def test_a_broken_index_is_reported_not_raised(
    tmp_path: Path, press_index: tuple[Path, bytes]
) -> None:
    _, head = press_index
    checks = DisclosureChecks(datasets_of=lambda project: (("press-line", "v1", str(tmp_path)),))
    result = checks(head, "head.csv", "press-quality")
    assert result["verdict"] == "review"
    assert result["unavailable"].startswith("checks unavailable")
