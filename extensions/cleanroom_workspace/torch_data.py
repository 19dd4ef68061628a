"""Batches of a ``/data`` dataset as tensors, for ``torch.utils.data.DataLoader``.

Only for images with torch (``pytorch``, ``pytorch-cuda``); the server extension never
imports this module. Use it with ``batch_size=None`` (each item already is a batch)::

    from torch.utils.data import DataLoader
    from cleanroom_workspace.torch_data import TabularBatches

    batches = TabularBatches("press-line", features=["force_kn", "temperature_c"],
                             target="defect", batch_rows=4096)
    for x, y in DataLoader(batches, batch_size=None, num_workers=2, pin_memory=True):
        ...

Workers split the dataset between them (see ``datasets.iter_batches``), so two workers
never hand over the same rows. Rows come in file order: shuffle within a batch, or
write the data in a shuffled order, when the model needs it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import torch
from torch.utils.data import IterableDataset, get_worker_info

from .datasets import DATA_ROOT, iter_batches, open_dataset


def _column(batch: pa.RecordBatch, name: str) -> np.ndarray:
    column = batch.column(name)
    if not (
        pa.types.is_integer(column.type)
        or pa.types.is_floating(column.type)
        or pa.types.is_boolean(column.type)
    ):
        raise TypeError(f"column {name!r} is {column.type}, not a number: encode it first")
    if column.null_count:
        raise ValueError(f"column {name!r} has {column.null_count} missing value(s) in a batch")
    return column.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)


class TabularBatches(IterableDataset[tuple[torch.Tensor, torch.Tensor]]):
    """``(features, target)`` float32 tensors, one pair per record batch.

    ``features`` has shape ``(rows, len(features))``, ``target`` shape ``(rows,)``.
    ``source`` is what :func:`datasets.open_dataset` takes (a dataset name under
    ``/data``, a folder or a file); ``filter`` a pyarrow expression applied while
    reading. The dataset is opened in each worker, not pickled to it.
    """

    def __init__(
        self,
        source: str | Path,
        features: Sequence[str],
        target: str,
        *,
        batch_rows: int = 8192,
        filter: ds.Expression | None = None,
        root: Path = DATA_ROOT,
    ) -> None:
        super().__init__()
        if not features:
            raise ValueError("name at least one feature column")
        self.source = source
        self.features = list(features)
        self.target = target
        self.batch_rows = batch_rows
        self.filter = filter
        self.root = root
        # Fail here, in the notebook, not later inside a worker process.
        schema = open_dataset(source, root=root).schema
        missing = [c for c in [*self.features, target] if c not in schema.names]
        if missing:
            raise KeyError(f"no column(s) {', '.join(missing)}; known: {schema.names}")

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        worker = get_worker_info()
        shard, shards = (worker.id, worker.num_workers) if worker else (0, 1)
        dataset = open_dataset(self.source, root=self.root)
        for batch in iter_batches(
            dataset,
            columns=[*self.features, self.target],
            batch_rows=self.batch_rows,
            filter=self.filter,
            shard=shard,
            shards=shards,
        ):
            x = np.stack([_column(batch, name) for name in self.features], axis=1)
            yield torch.from_numpy(x), torch.from_numpy(_column(batch, self.target))
