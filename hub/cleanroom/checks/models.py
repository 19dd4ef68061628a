"""Tensor files (safetensors, ONNX): tensor sizes against the training data's rows.

A weight matrix with one row per training record can be the records. We read only the
headers: the safetensors JSON header and the ONNX protobuf's initializer shapes, with a
small protobuf walker so that no ONNX runtime is needed.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator

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
    tensors: list[tuple[str, list[int]]] = []
    text: list[str] = []
    for number, wire, value in _fields(data):
        if wire != 2 or not isinstance(value, bytes):
            continue
        if number in (2, 3, 6):  # producer_name, producer_version, doc_string
            text.append(value.decode("utf-8", errors="replace"))
        if number == 7:  # graph
            for g_number, g_wire, g_value in _fields(value):
                if g_number == 5 and g_wire == 2 and isinstance(g_value, bytes):
                    tensors.append(_tensor_shape(g_value))
                elif g_number == 10 and isinstance(g_value, bytes):  # graph doc_string
                    text.append(g_value.decode("utf-8", errors="replace"))
    return tensors, "\n".join(text)


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
    try:
        tensors, text = safetensors_tensors(data) if kind == "safetensors" else onnx_tensors(data)
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
    findings = check_text(text, context, location=location) if text else []
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
