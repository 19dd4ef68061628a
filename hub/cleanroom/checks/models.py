"""Tensor files (safetensors, ONNX): what their tensors hold and how their trees grew.

A weight matrix with one row per training record can be the records: tensor sizes
are compared with the training data's rows, and the values of every 2-D tensor (an
ONNX k-nearest-neighbours model keeps its training rows as an initializer; a
"prototype" or "memory" tensor does the same) are matched against the source's
records, with the columns found by value. ONNX tree ensembles keep no record counts,
so their leaves are counted (see :func:`leaf_size_findings`). We read the safetensors
JSON header and data, and the ONNX protobuf with a small walker, so that no runtime
is needed and nothing in the file runs.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from cleanroom.checks.text import check_text
from cleanroom.checks.types import CheckContext, Finding, Verdict


class _ProtoError(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _ProtoError(f"bad varint at byte {pos}")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise _ProtoError(f"field {number} runs past the end")
            yield number, wire, data[pos : pos + length]
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise _ProtoError(f"unsupported wire type {wire} at byte {pos}")
        if pos > len(data):
            raise _ProtoError("truncated message")


def onnx_tensors(data: bytes) -> tuple[list[tuple[str, list[int]]], str]:
    """(name, shape) of every initializer in an ONNX model, and its documentation text."""
    model = read_onnx(data)
    return [(n, d) for n, d, _a in model.tensors], "\n".join(model.text)


class OnnxModel:
    """What the checks read from an ONNX model: tensors (initializers and constants,
    with their values where small enough), text, and tree ensembles' leaves per tree."""

    def __init__(self) -> None:
        self.tensors: list[tuple[str, list[int], np.ndarray | None]] = []
        self.text: list[str] = []
        self.leaves_per_tree: list[int] = []
        self.tree_ops: list[str] = []


def read_onnx(data: bytes) -> OnnxModel:
    """Parse an ONNX ModelProto (raises ``ValueError`` when it is not one)."""
    model = OnnxModel()
    for number, wire, value in _fields(data):
        if wire != 2 or not isinstance(value, bytes):
            continue
        if number in (2, 3, 6):  # producer_name, producer_version, doc_string
            model.text.append(value.decode("utf-8", errors="replace"))
        if number == 7:  # graph
            _read_graph(value, model, 0)
    return model


def _read_graph(graph: bytes, model: OnnxModel, depth: int) -> None:
    if depth > 8:
        raise _ProtoError("subgraphs nested too deep")
    for number, wire, value in _fields(graph):
        if wire != 2 or not isinstance(value, bytes):
            continue
        if number == 5:  # initializer
            model.tensors.append(_tensor(value))
        elif number == 10:  # doc_string
            model.text.append(value.decode("utf-8", errors="replace"))
        elif number == 1:  # node
            _read_node(value, model, depth)


def _read_node(node: bytes, model: OnnxModel, depth: int) -> None:
    op = ""
    attributes: dict[str, list[int | bytes]] = {}
    for number, _wire, value in _fields(node):
        if number == 4 and isinstance(value, bytes):
            op = value.decode("utf-8", errors="replace")
        elif number == 6 and isinstance(value, bytes):
            model.text.append(value.decode("utf-8", errors="replace"))
        elif number == 5 and isinstance(value, bytes):
            name, items = _attribute(value, model, depth)
            attributes[name] = items
    if op in ("TreeEnsembleRegressor", "TreeEnsembleClassifier"):
        modes = [m for m in attributes.get("nodes_modes", []) if isinstance(m, bytes)]
        trees = [t for t in attributes.get("nodes_treeids", []) if isinstance(t, int)]
        if len(modes) == len(trees):
            per_tree: dict[int, int] = {}
            for mode, tree in zip(modes, trees, strict=True):
                if mode == b"LEAF":
                    per_tree[tree] = per_tree.get(tree, 0) + 1
            model.leaves_per_tree += list(per_tree.values())
            model.tree_ops.append(op)
    elif op == "TreeEnsemble":  # ai.onnx.ml opset 5
        leaves = len(attributes.get("leaf_targetids", []))
        roots = max(1, len(attributes.get("tree_roots", [])))
        # The largest tree has at least the mean number of leaves.
        model.leaves_per_tree.append(-(-leaves // roots))
        model.tree_ops.append(op)


def _attribute(data: bytes, model: OnnxModel, depth: int) -> tuple[str, list[int | bytes]]:
    name = ""
    items: list[int | bytes] = []
    for number, wire, value in _fields(data):
        if number == 1 and isinstance(value, bytes):
            name = value.decode("utf-8", errors="replace")
        elif number == 8 and wire == 0 and isinstance(value, int):
            items.append(value)
        elif number == 8 and wire == 2 and isinstance(value, bytes):
            pos = 0
            while pos < len(value):
                item, pos = _varint(value, pos)
                items.append(item)
        elif number == 9 and isinstance(value, bytes):
            items.append(value)
        elif number == 5 and isinstance(value, bytes):  # a Constant's tensor
            model.tensors.append(_tensor(value))
        elif number == 6 and isinstance(value, bytes):  # a subgraph (If, Loop, Scan)
            _read_graph(value, model, depth + 1)
    return name, items


# TensorProto.data_type -> numpy dtype of raw_data (little-endian).
_ONNX_DTYPES = {1: "<f4", 2: "u1", 3: "i1", 5: "<i2", 6: "<i4", 7: "<i8", 10: "<f2", 11: "<f8"}
#: Tensors larger than this (bytes) are not decoded for the memorisation check.
MAX_TENSOR_BYTES = 64 * 1024 * 1024


def _tensor(data: bytes) -> tuple[str, list[int], np.ndarray | None]:
    name, dims = _tensor_shape(data)
    dtype_code = 0
    raw: bytes | None = None
    packed: dict[int, bytes] = {}
    for number, wire, value in _fields(data):
        if number == 2 and wire == 0 and isinstance(value, int):
            dtype_code = value
        elif number == 9 and isinstance(value, bytes):
            raw = value
        elif number in (4, 10) and wire == 2 and isinstance(value, bytes):
            packed[number] = value
    array: np.ndarray | None = None
    count = int(np.prod(dims)) if dims else 0
    try:
        if raw is not None and dtype_code in _ONNX_DTYPES and len(raw) <= MAX_TENSOR_BYTES:
            array = np.frombuffer(raw, _ONNX_DTYPES[dtype_code])
        elif 4 in packed and len(packed[4]) <= MAX_TENSOR_BYTES:
            array = np.frombuffer(packed[4], "<f4")
        elif 10 in packed and len(packed[10]) <= MAX_TENSOR_BYTES:
            array = np.frombuffer(packed[10], "<f8")
        if array is not None:
            array = array.reshape(dims) if len(array) == count else None
    except ValueError:
        array = None
    return name, dims, array


def _tensor_shape(data: bytes) -> tuple[str, list[int]]:
    dims: list[int] = []
    name = ""
    for number, wire, value in _fields(data):
        if number == 1 and wire == 0 and isinstance(value, int):
            dims.append(value)
        elif number == 1 and wire == 2 and isinstance(value, bytes):  # packed dims
            pos = 0
            while pos < len(value):
                dim, pos = _varint(value, pos)
                dims.append(dim)
        elif number == 8 and wire == 2 and isinstance(value, bytes):
            name = value.decode("utf-8", errors="replace")
    return name, dims


_SAFETENSORS_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
}


def safetensors_arrays(data: bytes) -> list[tuple[str, np.ndarray]]:
    """The values of every tensor in a safetensors file that numpy can hold (small
    enough, a plain dtype), by name."""
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    body = memoryview(data)[8 + size :]
    out = []
    for name, info in header.items():
        if name == "__metadata__" or not isinstance(info, dict):
            continue
        dtype = _SAFETENSORS_DTYPES.get(str(info.get("dtype")))
        start, end = (int(x) for x in info["data_offsets"])
        shape = [int(d) for d in info["shape"]]
        if dtype is None or end - start > MAX_TENSOR_BYTES:
            continue
        array = np.frombuffer(body[start:end], dtype)
        if len(array) == int(np.prod(shape)):
            out.append((str(name), array.reshape(shape)))
    return out


def tensor_row_findings(
    arrays: Sequence[tuple[str, np.ndarray]], context: CheckContext, location: str = ""
) -> list[Finding]:
    """``model.tensor_rows``: 2-D tensors whose rows (or columns) are source records,
    their columns found by value as for a renamed table. Weights are not: they are
    not written at a source column's resolution."""
    if not context.sources:
        return []
    findings: list[Finding] = []
    for name, array in list(arrays)[:100]:
        if array.ndim != 2 or array.dtype.kind not in "fiu":
            continue
        for matrix in (array, array.T):
            if matrix.shape[0] < 2 or not 2 <= matrix.shape[1] <= 64:
                continue
            frame = pd.DataFrame(
                np.asarray(matrix[:100_000], dtype=np.float64),
                columns=[f"column_{i}" for i in range(matrix.shape[1])],
            )
            for source in context.sources:
                matches = source.match_rows(frame)
                rows = sorted({int(r) for m in matches for r in m.output_rows})
                if len(rows) >= 2:
                    findings.append(
                        Finding(
                            "model.tensor_rows",
                            Verdict.FAIL,
                            f"tensor {name!r} ({'x'.join(map(str, array.shape))}) holds "
                            f"{len(rows)} records of dataset {source.name!r}: the model "
                            "keeps its training data",
                            {
                                "tensor": name,
                                "rows": rows[:50],
                                "source_rows": sorted(
                                    {int(r) for m in matches for r in m.source_rows}
                                )[:50],
                                "columns": sorted({c for m in matches for c in m.columns}),
                                "threshold": 2,
                            },
                            location,
                        )
                    )
                    break
            else:
                continue
            break
    return findings


def safetensors_tensors(data: bytes) -> tuple[list[tuple[str, list[int]]], str]:
    """(name, shape) of every tensor in a safetensors file, and its metadata text."""
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        raise ValueError("the header is longer than the file")
    header = json.loads(data[8 : 8 + size])
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    tensors = []
    meta = header.pop("__metadata__", {}) or {}
    body = len(data) - 8 - size
    for name, info in header.items():
        shape = [int(d) for d in info["shape"]]
        start, end = (int(x) for x in info["data_offsets"])
        if not 0 <= start <= end <= body:
            raise ValueError(f"tensor {name!r} points outside the file")
        tensors.append((str(name), shape))
    return tensors, json.dumps(meta)


def check_tensors(
    data: bytes, kind: str, context: CheckContext, location: str = ""
) -> list[Finding]:
    """Findings for a safetensors or ONNX file."""
    onnx: OnnxModel | None = None
    try:
        if kind == "safetensors":
            tensors, text = safetensors_tensors(data)
            arrays = safetensors_arrays(data)
        else:
            onnx = read_onnx(data)
            tensors = [(n, d) for n, d, _a in onnx.tensors]
            text = "\n".join(onnx.text)
            arrays = [(n, a) for n, _d, a in onnx.tensors if a is not None]
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        return [
            Finding(
                "model.malformed",
                Verdict.FAIL,
                f"the {kind} file cannot be read: {exc}",
                {"format": kind},
                location,
            )
        ]
    from cleanroom.checks.model_structure import leaf_size_findings

    findings = check_text(text, context, location=location) if text else []
    findings += tensor_row_findings(arrays, context, location)
    if onnx is not None and onnx.leaves_per_tree:
        findings += leaf_size_findings(
            [],
            context,
            location,
            model=f"ONNX {'/'.join(dict.fromkeys(onnx.tree_ops))}",
            basis="leaves per tree (ONNX keeps no record counts)",
            leaves_per_tree=onnx.leaves_per_tree,
        )
    biggest = max((max(shape, default=0) for _n, shape in tensors), default=0)
    rows = max((s.rows for s in context.sources), default=0)
    fraction = context.policy.models.tensor_rows_fraction
    shapes = {n: s for n, s in tensors[:50]}
    if not rows:
        findings.append(
            Finding(
                "model.tensor_sizes",
                Verdict.REVIEW,
                f"{len(tensors)} tensors (largest dimension {biggest}); no source index to "
                "compare with the training rows",
                {"tensors": shapes, "largest_dimension": biggest},
                location,
            )
        )
        return findings
    large = {n: s for n, s in tensors if s and max(s) >= fraction * rows}
    findings.append(
        Finding(
            "model.tensor_sizes",
            Verdict.REVIEW if large else Verdict.PASS,
            (
                f"{len(large)} tensors have a dimension of at least {fraction:.0%} of the "
                f"{rows} training rows: they could hold one entry per record"
                if large
                else f"{len(tensors)} tensors, none near the {rows} training rows in size"
            ),
            {
                "large_tensors": dict(list(large.items())[:50]),
                "largest_dimension": biggest,
                "training_rows": rows,
                "threshold": fraction,
            },
            location,
        )
    )
    return findings
