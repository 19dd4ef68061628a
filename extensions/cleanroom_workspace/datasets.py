"""Read a dataset version from ``/data`` in batches, never whole (pyarrow.dataset).

Each dataset a project may use is mounted read-only at ``/data/<name>``. pyarrow's
dataset API already streams Parquet and CSV files batch by batch; what it lacks, and
what this module adds, is the clean room's conventions (a dataset is named, not
pathed; a folder holding the same table as Parquet and CSV is read once, from the
Parquet) and splitting the batches between the workers of a ``torch.utils.data``
loader without two workers reading the same rows. ``cleanroom_workspace.torch_data``
turns the batches into tensors.

Nothing here imports Jupyter or torch, so the module works in any image (and in the
device check, outside an image).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

DATA_ROOT = Path("/data")
# Parquet before CSV: the library often holds one table in both forms, and reading
# both would count every row twice. Parquet carries its types and reads faster.
_FORMATS = (("parquet", ".parquet"), ("csv", ".csv"))


def open_dataset(source: str | Path, *, root: Path = DATA_ROOT) -> ds.Dataset:
    """The dataset ``source`` names, opened lazily (no rows are read yet).

    ``source`` is a dataset's name (``"press-line"`` opens ``/data/press-line``), a
    folder, or one Parquet or CSV file. A folder is read as every Parquet file below it
    or, when there is none, every CSV file. Raises FileNotFoundError naming what was
    looked for.
    """
    path = Path(source)
    if not path.is_absolute():
        path = root / path
    if path.is_file():
        for kind, suffix in _FORMATS:
            if path.suffix.lower() == suffix:
                return ds.dataset(str(path), format=kind)
        raise FileNotFoundError(f"{path} is neither a Parquet nor a CSV file")
    if path.is_dir():
        for kind, suffix in _FORMATS:
            files = sorted(p for p in path.rglob(f"*{suffix}") if p.is_file())
            if files:
                return ds.dataset([str(p) for p in files], format=kind)
        raise FileNotFoundError(f"no Parquet or CSV file under {path}")
    raise FileNotFoundError(
        f"{path} does not exist (datasets of this project are under {root}: "
        f"{', '.join(sorted(p.name for p in root.iterdir())) if root.is_dir() else 'none'})"
    )


def _units(dataset: ds.Dataset, filter: ds.Expression | None) -> list[ds.Fragment]:
    """The pieces a dataset can be split into: Parquet row groups, else whole files."""
    units: list[ds.Fragment] = []
    for fragment in dataset.get_fragments(filter=filter):
        if isinstance(fragment, ds.ParquetFileFragment):
            units.extend(fragment.split_by_row_group(filter))
        else:
            units.append(fragment)
    return units


def iter_batches(
    dataset: ds.Dataset,
    *,
    columns: Sequence[str] | None = None,
    batch_rows: int = 8192,
    filter: ds.Expression | None = None,
    shard: int = 0,
    shards: int = 1,
) -> Iterator[pa.RecordBatch]:
    """Record batches of at most ``batch_rows`` rows; shard ``shard`` of ``shards``.

    The shards together yield every (filtered) row exactly once. When the dataset has at
    least as many pieces (Parquet row groups, CSV files) as shards, each shard reads only
    its own pieces; otherwise every shard reads the pieces and keeps every
    ``shards``-th batch (correct, but each worker decodes the whole file). Empty
    batches (all rows filtered out) are skipped.
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not one of 0..{shards - 1}")
    names = list(columns) if columns is not None else None
    if names is not None:
        unknown = [c for c in names if c not in dataset.schema.names]
        if unknown:
            raise KeyError(f"no column(s) {', '.join(unknown)}; known: {dataset.schema.names}")
    units = _units(dataset, filter)

    def batches(unit: ds.Fragment) -> Iterator[pa.RecordBatch]:
        for batch in unit.to_batches(
            schema=dataset.schema, columns=names, filter=filter, batch_size=batch_rows
        ):
            if batch.num_rows:
                yield batch

    if len(units) >= shards:
        for unit in units[shard::shards]:
            yield from batches(unit)
        return
    index = 0
    for unit in units:
        for batch in batches(unit):
            if index % shards == shard:
                yield batch
            index += 1
