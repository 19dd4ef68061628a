"""Reading a dataset version in batches for training (cleanroom_workspace.datasets).

The torch wrapper (torch_data) runs inside the pytorch image, in
tests/integration/test_training.py; what it builds on is checked here, without torch.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from cleanroom_workspace.datasets import iter_batches, open_dataset


def _table(start: int, rows: int) -> pa.Table:
    ids = list(range(start, start + rows))
    return pa.table({"stroke_id": ids, "force_kn": [float(i) * 0.5 for i in ids]})


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """/data with a dataset held as Parquet (4 row groups) and as CSV (3 files)."""
    folder = tmp_path / "data" / "press-line"
    folder.mkdir(parents=True)
    pq.write_table(_table(1, 1000), folder / "press_line.parquet", row_group_size=250)
    csv_only = tmp_path / "data" / "sensors"
    csv_only.mkdir()
    for part in range(3):
        rows = _table(1 + part * 100, 100).to_pandas()
        rows.to_csv(csv_only / f"part-{part}.csv", index=False)
    (folder / "press_line.csv").write_text("stroke_id,force_kn\n9999,1.0\n")
    return tmp_path / "data"


def _ids(batches: list[pa.RecordBatch]) -> list[int]:
    return [i for batch in batches for i in batch.column("stroke_id").to_pylist()]


def test_a_dataset_is_opened_by_name_preferring_parquet(library: Path) -> None:
    dataset = open_dataset("press-line", root=library)
    assert dataset.count_rows() == 1000  # the CSV copy is not read as well
    assert open_dataset("sensors", root=library).count_rows() == 300
    single = open_dataset(library / "sensors" / "part-1.csv", root=library)
    assert single.count_rows() == 100


@pytest.mark.parametrize("shards", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("name", ["press-line", "sensors"])
def test_shards_together_yield_every_row_once(library: Path, name: str, shards: int) -> None:
    dataset = open_dataset(name, root=library)
    seen: list[int] = []
    for shard in range(shards):
        batches = list(iter_batches(dataset, batch_rows=64, shard=shard, shards=shards))
        assert all(0 < b.num_rows <= 64 for b in batches)
        seen += _ids(batches)
    assert sorted(seen) == list(range(1, dataset.count_rows() + 1))


def test_shards_read_their_own_row_groups(library: Path) -> None:
    dataset = open_dataset("press-line", root=library)
    first = _ids(list(iter_batches(dataset, batch_rows=1000, shard=0, shards=2)))
    assert first == list(range(1, 251)) + list(range(501, 751))


def test_columns_and_filter_are_applied_while_reading(library: Path) -> None:
    dataset = open_dataset("press-line", root=library)
    batches = list(iter_batches(dataset, columns=["force_kn"], filter=ds.field("stroke_id") > 900))
    assert [b.schema.names for b in batches] == [["force_kn"]] * len(batches)
    assert sum(b.num_rows for b in batches) == 100


def test_bad_requests_are_refused_clearly(library: Path) -> None:
    with pytest.raises(FileNotFoundError, match="press-line, sensors"):
        open_dataset("nope", root=library)
    (library / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no Parquet or CSV file under"):
        open_dataset("empty", root=library)
    dataset = open_dataset("press-line", root=library)
    with pytest.raises(KeyError, match="no column"):
        list(iter_batches(dataset, columns=["defect"]))
    with pytest.raises(ValueError, match=r"shard 2 is not one of 0\.\.1"):
        list(iter_batches(dataset, shard=2, shards=2))
    with pytest.raises(ValueError, match="batch_rows must be at least 1"):
        list(iter_batches(dataset, batch_rows=0))
