"""The source index: built once, compact, loaded without the source data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cleanroom.checks import (
    CheckContext,
    CheckInputError,
    DisclosurePolicy,
    Verdict,
    build_source_index,
    check_bytes,
    load_source_index,
)
from cleanroom.checks.source_index import normalise_name, sorted_contains


def test_index_is_compact_and_deduplicates_formats(index_dir: Path, source_dir: Path) -> None:
    meta = json.loads((index_dir / "index.json").read_text())
    assert meta["rows"] == 20_000
    assert len(meta["tables"]) == 1, "CSV and Parquet copies are one table"
    assert meta["files"][1]["same_rows_as"] == "press_line.csv"
    assert set(meta["identifier_columns"]) == {"machine_id", "lot_id", "operator_id", "company"}
    size = sum(p.stat().st_size for p in index_dir.iterdir())
    source = (source_dir / "press_line.csv").stat().st_size
    assert size < 2 * source
    # Hashes, not data: no source value appears in the index files.
    blob = b"".join(p.read_bytes() for p in index_dir.iterdir())
    assert b"LOT-24-00001" not in blob and b"Nordstahl" not in blob
    # Rare values (one record's reading) are stored mixed, not as the rounded number.
    rare = (index_dir / "t0_rare_vibration_rms.npy").read_bytes()
    frame = pd.read_parquet(source_dir / "press_line.parquet")
    biggest = round(float(frame["vibration_rms"].max()) * 1000)
    assert biggest.to_bytes(8, "little") not in rare


def test_loads_without_source(index_dir: Path, tmp_path: Path, source_frame: pd.DataFrame) -> None:
    copy = tmp_path / "idx"
    shutil.copytree(index_dir, copy)
    index = load_source_index(copy)
    context = CheckContext(DisclosurePolicy.load(), [index])
    report = check_bytes(source_frame.tail(3).to_csv().encode(), "t.csv", context)
    assert report.verdict is Verdict.FAIL
    assert index.name == "press_line"


def test_progress_and_explicit_identifiers(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "site": ["north", "south"] * 50,
            "reading": np.arange(100) * 1.25,
            "ts": pd.date_range("2024-01-01", periods=100, freq="min"),
        }
    )
    frame.to_csv(tmp_path / "s.csv", index=False)
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4")
    messages: list[str] = []
    info = build_source_index(
        [tmp_path / "s.csv", tmp_path / "notes.pdf"],
        tmp_path / "idx",
        identifier_columns=["Site"],
        progress=messages.append,
    )
    assert info.identifier_columns == ["site"]
    assert info.files[1] == {"name": "notes.pdf", "skipped": "not a table"}
    assert any("reading s.csv" in m for m in messages)
    index = load_source_index(tmp_path / "idx")
    assert index.identifier_hits(np.array(["north", "east"], dtype=object)).tolist() == [
        True,
        False,
    ]


def test_negative_contributions_reviewed(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "group": np.repeat(["a", "b"], 500),
            "margin": np.round(rng.normal(100, 50, 1000), 2),
        }
    )
    frame.loc[frame.index[:300], "margin"] = np.round(rng.normal(10, 20, 300), 2)
    frame.to_csv(tmp_path / "m.csv", index=False)
    build_source_index([tmp_path / "m.csv"], tmp_path / "idx")
    context = CheckContext(DisclosurePolicy.load(), [load_source_index(tmp_path / "idx")])
    sums = frame.groupby("group")["margin"].sum().reset_index()
    report = check_bytes(sums.to_csv(index=False).encode(), "s.csv", context)
    neg = next(f for f in report.findings if f.rule == "table.negative_values")
    assert neg.verdict is Verdict.REVIEW
    assert {c["label"] for c in neg.evidence["cells"]} == {"a", "b"}


@pytest.mark.parametrize("damage", ["missing", "version", "array"])
def test_damaged_index_is_a_clear_error(index_dir: Path, tmp_path: Path, damage: str) -> None:
    copy = tmp_path / "idx"
    shutil.copytree(index_dir, copy)
    if damage == "missing":
        (copy / "index.json").unlink()
    elif damage == "version":
        meta = json.loads((copy / "index.json").read_text())
        meta["version"] = 99
        (copy / "index.json").write_text(json.dumps(meta))
    else:
        (copy / "t0_c0_hash.npy").unlink()
    with pytest.raises(CheckInputError, match=str(copy)):
        load_source_index(copy)


def test_unreadable_source_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(CheckInputError, match=r"bad\.parquet"):
        build_source_index([bad], tmp_path / "idx")


def test_helpers() -> None:
    assert normalise_name(" Force (kN) ") == "force_kn"
    hay = np.array([1, 5, 9], dtype=np.uint64)
    assert sorted_contains(hay, np.array([0, 5, 10], dtype=np.uint64)).tolist() == [
        False,
        True,
        False,
    ]
