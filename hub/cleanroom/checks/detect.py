"""What a file is, decided from its bytes; the name is never trusted.

A researcher can call a pickle ``results.csv``; the checks that run must be the ones
for what the bytes are.
"""

from __future__ import annotations

import io
import json
import pickletools
import struct
import tarfile
import zipfile

# Detected types (CheckReport.detected_type).
PNG, JPEG, GIF, SVG, PDF = "png", "jpeg", "gif", "svg", "pdf"
CSV, TSV, EXCEL, PARQUET = "csv", "tsv", "excel", "parquet"
ARROW, NPY = "arrow", "npy"
NOTEBOOK, JSON, JSONL, TEXT, HTML = "notebook", "json", "jsonl", "text", "html"
PICKLE, SAFETENSORS, ONNX, TORCH = "pickle", "safetensors", "onnx", "torch"
XGBOOST_JSON, XGBOOST_UBJ, LIGHTGBM, SKOPS = "xgboost-json", "xgboost-ubj", "lightgbm", "skops"
LIGHTGBM_JSON = "lightgbm-json"
ZIP, TAR, GZIP, BZIP2, XZ, ZLIB = "zip", "tar", "gzip", "bzip2", "xz", "zlib"
EMPTY, BINARY = "empty", "binary"

TABLE_TYPES = {CSV, TSV, EXCEL, PARQUET, ARROW, NPY, "csv;", "csv|"}
#: Table types read from binary bytes (never decoded as text).
BINARY_TABLE_TYPES = {EXCEL, PARQUET, ARROW, NPY}
ARCHIVE_TYPES = {ZIP, TAR, GZIP, BZIP2, XZ, ZLIB}

_SNIFF = 65_536


def detect(data: bytes) -> str:
    """The type of ``data`` (one of this module's constants)."""
    if not data:
        return EMPTY
    head = data[:_SNIFF]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"PAR1") and data.endswith(b"PAR1"):
        return PARQUET
    if head.startswith(b"ARROW1"):
        return ARROW  # Feather v2 and the Arrow IPC file format
    if head.startswith(b"\x93NUMPY"):
        return NPY  # np.save; an .npz is a zip of these
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_kind(data)
    if head.startswith(b"\x1f\x8b"):
        return GZIP
    if head.startswith(b"BZh"):
        return BZIP2
    if head.startswith(b"\xfd7zXZ\x00"):
        return XZ
    if len(data) > 262 and data[257:262] == b"ustar":
        return TAR
    if _is_zlib(head):
        return ZLIB
    from cleanroom.checks.boosters import (
        is_lightgbm,
        is_lightgbm_json,
        is_xgboost_json,
        is_xgboost_ubj,
    )

    if is_xgboost_ubj(head):
        return XGBOOST_UBJ
    if is_xgboost_json(head):
        return XGBOOST_JSON
    if is_lightgbm(head):
        return LIGHTGBM
    if is_lightgbm_json(head):
        return LIGHTGBM_JSON
    if _is_safetensors(head):
        return SAFETENSORS
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return PICKLE
    if _is_onnx(head):
        return ONNX
    text = _as_text(head)
    if text is None:
        return PICKLE if _parses_as_pickle(data) else BINARY
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("{") or stripped.startswith("["):
        return _json_kind(data)
    low = stripped[:2048].lower()
    if "<svg" in low and (
        low.startswith("<?xml") or low.startswith("<svg") or "<!doctype svg" in low
    ):
        return SVG
    if low.startswith("<!doctype html") or low.startswith("<html") or "<table" in low[:512]:
        return HTML
    if _parses_as_pickle(data):
        return PICKLE
    kind = _delimited_kind(text)
    if kind is None and len(data) > _SNIFF and text.count("\n") <= 1:
        # A first data row longer than the sniff (a huge cell): read to its end.
        first = data.find(b"\n")
        second = data.find(b"\n", first + 1, first + 64 * _SNIFF)
        if 0 < first < second:
            kind = _delimited_kind(data[: second + 1].decode("utf-8", errors="replace"))
    return kind or TEXT


def _as_text(head: bytes) -> str | None:
    if b"\x00" in head:
        return None
    # A multi-byte character may be cut at the sniff boundary: drop up to 3 bytes.
    for cut in range(4):
        try:
            return (head[: len(head) - cut] if cut else head).decode("utf-8")
        except UnicodeDecodeError:
            continue
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes everything
        return None
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return text if printable >= 0.95 * len(text) else None


def _zip_kind(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return ZIP  # the archive check reports it as malformed
    if "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names):
        return EXCEL
    if any(n.endswith("data.pkl") for n in names) and any("/data/" in n for n in names):
        return TORCH
    if "schema.json" in names and all(n == "schema.json" or n.endswith(".npy") for n in names):
        return SKOPS
    return ZIP


def _is_zlib(head: bytes) -> bool:
    # A bare zlib stream (joblib's compress=...): deflate method, 32K window, and the
    # header check that makes the first two bytes a multiple of 31. Text never starts
    # with 0x78 0x9c / 0x78 0x01 / 0x78 0xda / 0x78 0x5e.
    return len(head) > 2 and head[0] == 0x78 and head[1] in (0x01, 0x5E, 0x9C, 0xDA)


def _is_safetensors(head: bytes) -> bool:
    if len(head) < 10:
        return False
    (size,) = struct.unpack("<Q", head[:8])
    return 2 <= size <= 100_000_000 and head[8:9] == b"{"


def _is_onnx(head: bytes) -> bool:
    # ModelProto starts with ir_version (field 1, varint: 0x08 then a small number),
    # followed by another ModelProto field; pickles and text never start with 0x08.
    return (
        len(head) > 4
        and head[0] == 0x08
        and 1 <= head[1] <= 20
        and head[2] in (0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72)
    )


def _parses_as_pickle(data: bytes) -> bool:
    # Protocol 0 and 1 pickles have no header; they are recognised by a full parse.
    # A text file almost never parses as a pickle ending in STOP.
    if len(data) > 10_000_000 or not data.rstrip(b"\n").endswith(b"."):
        return False
    try:
        ops = list(pickletools.genops(data))
    except Exception:
        return False
    return bool(ops) and ops[-1][0].name == "STOP" and len(ops) > 1


def _json_kind(data: bytes) -> str:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        text = _as_text(data[:_SNIFF]) or ""
        if _is_json_lines(text):
            return JSONL
        return _delimited_kind(text) or TEXT
    if isinstance(doc, dict) and "cells" in doc and ("nbformat" in doc or "metadata" in doc):
        return NOTEBOOK
    return JSON


def _is_json_lines(text: str) -> bool:
    """One JSON value per line (``to_json(orient="records", lines=True)``)."""
    lines = [ln for ln in text.splitlines()[:200] if ln.strip()]
    if len(lines) > 1 and len(text) >= _SNIFF - 4:
        lines = lines[:-1]  # the last sniffed line may be cut
    if len(lines) < 2:
        return False
    for line in lines:
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            return False
        if not isinstance(value, dict | list):
            return False
    return True


def _delimited_kind(text: str) -> str | None:
    lines = [ln for ln in text.splitlines()[:60] if ln.strip()]
    if len(lines) > 1 and not text.endswith("\n") and len(text) >= _SNIFF - 4:
        lines = lines[:-1]  # the last sniffed line may be cut
    if len(lines) < 2:
        return None
    if lines[0].lstrip().startswith("|"):
        return None  # a Markdown pipe table: the text checks parse those
    for sep, kind in (("\t", TSV), (",", CSV), (";", "csv;"), ("|", "csv|")):
        counts = [_count_outside_quotes(ln, sep) for ln in lines]
        if counts[0] >= 1 and sum(c == counts[0] for c in counts) >= 0.9 * len(counts):
            return kind
    return None


def _count_outside_quotes(line: str, sep: str) -> int:
    count, quoted = 0, False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            count += 1
    return count


def is_tar(data: bytes) -> bool:
    """Whether ``data`` opens as a tar archive (also for old tars without "ustar")."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
            return tf.next() is not None
    except (tarfile.TarError, OSError, ValueError, EOFError):
        return False
