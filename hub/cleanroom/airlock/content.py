"""Detecting a file's type from its bytes, never from its name alone.

The name only breaks ties between text formats (CSV vs TSV vs plain text); binary
formats are recognised by their signatures, so renaming ``x.png`` to ``x.csv`` changes
nothing about how an officer sees it.
"""

from __future__ import annotations

import csv
import io
import json

_SIGNATURES: list[tuple[bytes, str]] = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
]


def _text(data: bytes) -> str | None:
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def detect_type(data: bytes, path: str = "") -> str:
    """A MIME type for ``data``; ``application/octet-stream`` when nothing fits."""
    for magic, mime in _SIGNATURES:
        if data.startswith(magic):
            return mime
    if data[:4] == b"PAR1" and data[-4:] == b"PAR1":
        return "application/vnd.apache.parquet"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    text = _text(data)
    if text is None:
        return "application/octet-stream"
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and "cells" in doc and "nbformat" in doc:
            return "application/x-ipynb+json"
        if doc is not None:
            return "application/json"
    if stripped[:256].lower().startswith(("<svg", "<?xml")) and "<svg" in stripped[:2048].lower():
        # Shown as text, never as an image: an SVG can carry script.
        return "image/svg+xml"
    lower = path.lower()
    sample = text[:65536]
    if lower.endswith((".csv", ".tsv", ".txt", "")) or "\n" in sample:
        dialect = _table_dialect(sample, prefer_tab=lower.endswith(".tsv"))
        if dialect == "\t":
            return "text/tab-separated-values"
        if dialect == ",":
            return "text/csv"
    return "text/plain"


def _table_dialect(sample: str, prefer_tab: bool) -> str | None:
    """The delimiter if ``sample`` reads as a table with a steady column count."""
    lines = [ln for ln in sample.splitlines()[:50] if ln.strip()]
    if len(lines) < 2:
        return None
    for delim in ("\t", ",") if prefer_tab else (",", "\t"):
        rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delim))
        widths = {len(r) for r in rows}
        if len(widths) == 1 and widths.pop() > 1:
            return delim
    return None
