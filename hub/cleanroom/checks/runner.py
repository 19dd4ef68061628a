"""Run the checks that fit a file's content and gather one report."""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import re
import traceback
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from cleanroom.checks import detect
from cleanroom.checks.archives import (
    BudgetExceeded,
    budget_for,
    check_archive,
    check_zip_budget,
    decompress_stream,
)
from cleanroom.checks.html_tables import parse_html
from cleanroom.checks.images import check_jpeg, check_other_image, check_png
from cleanroom.checks.models import check_tensors
from cleanroom.checks.notebooks import check_notebook
from cleanroom.checks.pickles import check_pickle
from cleanroom.checks.policy import DisclosurePolicy
from cleanroom.checks.source_index import load_source_index
from cleanroom.checks.tables import check_frame, read_table_bytes
from cleanroom.checks.text import check_text
from cleanroom.checks.text_tables import check_text_tables
from cleanroom.checks.types import CheckContext, CheckReport, Finding, Verdict

# Compression layers (gzip around tar around ...) beyond this are refused outright;
# a file that decompresses to itself would otherwise never end.
_MAX_LAYERS = 4


def check_bytes(data: bytes, filename: str, context: CheckContext) -> CheckReport:
    """Check one submitted file's bytes; ``filename`` is for display only.

    Never raises for a bad file: a file that cannot be read or checked gets a ``fail``
    finding that says why.
    """
    return _check(bytes(data), filename, context, depth=0, layers=0)


def check_file(path: str | Path, context: CheckContext) -> CheckReport:
    """Check a file on disk (too-large files are failed without being read)."""
    path = Path(path)
    size = path.stat().st_size
    limit = context.policy.limits.max_file_bytes
    if size > limit:
        return CheckReport(
            filename=path.name,
            detected_type="unread",
            size_bytes=size,
            findings=[_too_large(size, limit)],
        )
    return check_bytes(path.read_bytes(), path.name, context)


def _too_large(size: int, limit: int) -> Finding:
    return Finding(
        "file.too_large",
        Verdict.FAIL,
        f"{size} bytes is more than the policy's {limit}; the file was not checked",
        {"bytes": size, "threshold": limit},
    )


def _check(
    data: bytes, filename: str, context: CheckContext, *, depth: int, layers: int
) -> CheckReport:
    try:
        kind = detect.detect(data)
    except Exception as exc:  # a detector bug must not let the file through unchecked
        kind = detect.BINARY
        detect_error: Exception | None = exc
    else:
        detect_error = None
    report = CheckReport(
        filename=filename,
        detected_type=kind,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    if len(data) > context.policy.limits.max_file_bytes:
        report.findings.append(_too_large(len(data), context.policy.limits.max_file_bytes))
        return report
    if detect_error is not None:
        report.findings.append(
            Finding(
                "check.error",
                Verdict.FAIL,
                f"the file's type could not be detected: {type(detect_error).__name__}: "
                f"{str(detect_error)[:300]}",
            )
        )
        return report
    try:
        report.findings.extend(_dispatch(data, kind, filename, context, depth, layers))
    except (MemoryError, RecursionError) as exc:
        report.findings.append(
            Finding("check.error", Verdict.FAIL, f"the file is too complex to check: {exc!r}")
        )
    except Exception as exc:
        # A checker bug or a hostile file we did not foresee: the file must not pass,
        # and the officer sees why.
        report.findings.append(
            Finding(
                "check.error",
                Verdict.FAIL,
                f"the checks could not complete: {type(exc).__name__}: {str(exc)[:300]}",
                {"where": traceback.format_exc(limit=-3)[-1500:]},
            )
        )
    if not report.findings:
        report.findings.append(
            Finding("file.unchecked", Verdict.REVIEW, "no check recognised this file", {})
        )
    return report


def _dispatch(
    data: bytes, kind: str, filename: str, context: CheckContext, depth: int, layers: int
) -> list[Finding]:
    def member(content: bytes, name: str, member_depth: int) -> CheckReport:
        return _check(content, name, context, depth=member_depth, layers=layers + 1)

    if kind == detect.EMPTY:
        return [Finding("file.empty", Verdict.PASS, "the file is empty", {})]
    if kind in detect.TABLE_TYPES:
        return _tables(data, kind, context)
    if kind == detect.PNG:
        return check_png(data, context)
    if kind == detect.JPEG:
        return check_jpeg(data, context)
    if kind in (detect.SVG, detect.PDF, detect.GIF):
        return check_other_image(data, kind, context)
    if kind == detect.NOTEBOOK:
        return check_notebook(data, context, lambda b, n: member(b, n, depth))
    if kind == detect.PICKLE:
        return check_pickle(data, context)
    if kind in (detect.SAFETENSORS, detect.ONNX):
        return check_tensors(data, kind, context)
    if kind in (detect.ZIP, detect.TAR, detect.TORCH):
        findings = check_archive(
            data, "tar" if kind == detect.TAR else "zip", context, depth, member
        )
        if kind == detect.TORCH:
            findings.append(
                Finding(
                    "model.torch",
                    Verdict.REVIEW,
                    "a PyTorch checkpoint: its pickle is checked above; tensor sizes need an "
                    "officer",
                    {},
                )
            )
        return findings
    if kind in (detect.GZIP, detect.BZIP2, detect.XZ, detect.ZLIB):
        return _compressed(data, kind, filename, context, depth, layers)
    if kind in (detect.TEXT, detect.JSON, detect.HTML):
        return _text(data, kind, context)
    return [
        Finding(
            "file.unknown_type",
            Verdict.REVIEW,
            "a file type the checks do not read; an officer must look at it",
            {"starts_with": data[:16].hex()},
        )
    ]


def load_context(
    indexes: Iterable[str | Path] = (),
    datasets: Iterable[str] = (),
    policy_path: str | Path | None = None,
) -> CheckContext:
    """The context for a project's outputs: the policy with its datasets' overrides and
    the source index of each dataset version (raises ``PolicyError`` or
    ``CheckInputError`` with a clear message)."""
    policy = DisclosurePolicy.load(policy_path, datasets=list(datasets))
    return CheckContext(policy=policy, sources=[load_source_index(Path(d)) for d in indexes])


def _tables(data: bytes, kind: str, context: CheckContext) -> list[Finding]:
    extra: list[Finding] = []
    if kind == detect.EXCEL:
        refused = check_zip_budget(data, context)
        if refused:
            return refused
    if kind not in (detect.EXCEL, detect.PARQUET):
        data = _valid_utf8(data)
    try:
        if kind == detect.EXCEL:
            extra = _excel_parts(data, context)
        elif kind == detect.PARQUET:
            extra = _parquet_metadata(data, context)
        tables = read_table_bytes(data, kind)
    except Exception as exc:
        if kind == detect.EXCEL or kind == detect.PARQUET:
            return [
                Finding(
                    "table.malformed",
                    Verdict.FAIL,
                    f"the {kind} file cannot be read: {type(exc).__name__}: {str(exc)[:300]}",
                    {},
                )
            ]
        fallback = _text(data, detect.TEXT, context)
        fallback.append(
            Finding(
                "table.unparsed",
                Verdict.REVIEW,
                f"looks delimited but does not parse as a table ({str(exc)[:200]})",
                {},
            )
        )
        return fallback
    findings: list[Finding] = extra
    for location, frame in tables.items():
        findings += check_frame(frame, context, location=location)
    return findings


# Parts of a workbook that hold text outside the cells: comments, notes, properties.
_EXCEL_TEXT_PARTS = re.compile(
    r"^(xl/comments[^/]*\.xml|xl/comments/.+\.xml|xl/threadedComments/.+\.xml|xl/persons/.+\.xml"
    r"|xl/drawings/.+\.(xml|vml)|docProps/.+\.xml)$"
)


def _valid_utf8(data: bytes) -> bytes:
    # Readers choke on stray bytes in different ways; a replacement character keeps the
    # file checkable and the officer sees it.
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace").encode("utf-8")
    return data


def _excel_parts(data: bytes, context: CheckContext) -> list[Finding]:
    findings: list[Finding] = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            if _EXCEL_TEXT_PARTS.match(name):
                text = re.sub(r"<[^>]{0,2000}>", " ", zf.read(name).decode("utf-8", "replace"))
                findings += check_text(text, context, location=name)
        workbook = (
            zf.read("xl/workbook.xml").decode("utf-8", "replace")
            if "xl/workbook.xml" in zf.namelist()
            else ""
        )
    hidden = re.findall(
        r'<sheet [^>]{0,2000}?name="([^"]{0,200})"[^>]{0,2000}?state="(?:very)?[hH]idden"', workbook
    )
    if hidden:
        findings.append(
            Finding(
                "table.hidden_sheets",
                Verdict.REVIEW,
                f"the workbook has hidden sheets: {', '.join(hidden)} (checked like the others)",
                {"sheets": hidden},
            )
        )
    return findings


def _parquet_metadata(data: bytes, context: CheckContext) -> list[Finding]:
    import pyarrow.parquet as pq

    meta = pq.read_metadata(io.BytesIO(data)).metadata or {}
    # The "pandas" and "ARROW:schema" entries describe the schema; anything else is
    # free text a writer chose to add.
    text = "\n".join(
        v.decode("utf-8", "replace")
        for k, v in meta.items()
        if k not in (b"pandas", b"ARROW:schema")
    )
    return check_text(text, context, location="parquet metadata") if text else []


def _text(data: bytes, kind: str, context: CheckContext) -> list[Finding]:
    text = data.decode("utf-8", errors="replace")
    findings = check_text(text, context)
    if kind == detect.TEXT:
        findings += check_text_tables(text, context)
    if kind == detect.JSON:
        findings += _json_tables(data, context)
    if kind == detect.HTML:
        frames, _visible = parse_html(text)
        for k, frame in enumerate(frames, start=1):
            findings += check_frame(frame, context, location=f"table {k}")
        findings.append(
            Finding("html.content", Verdict.REVIEW, "HTML can carry scripts and hidden text", {})
        )
    findings.append(
        Finding(
            "text.unstructured",
            Verdict.REVIEW,
            f"{kind} output: the text checks found what is listed here; an officer must "
            "read the rest",
            {"characters": len(text), "lines": text.count("\n") + 1},
        )
    )
    return findings


def _json_tables(data: bytes, context: CheckContext) -> list[Finding]:
    """A frame written with ``to_json`` (records, split, columns or index) is a table."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return []
    if isinstance(doc, list) and doc and all(isinstance(r, dict) for r in doc[:100]):
        orient = "records"
    elif isinstance(doc, dict) and {"columns", "data"} <= set(doc):
        orient = "split"
    elif isinstance(doc, dict) and doc and all(isinstance(v, dict) for v in doc.values()):
        orient = "columns"
    else:
        return []
    try:
        frame = pd.read_json(io.BytesIO(data), orient=orient)
    except Exception:  # pandas raises many kinds on JSON that is not quite a table
        return []
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        return []
    findings = check_frame(frame, context, location="JSON table")
    if orient == "columns":
        # {"a": {"x": 1}} is columns of rows or rows of columns (orient="index"); both
        # readings are checked and the worse one kept.
        other = check_frame(frame.T, context, location="JSON table")
        if max(f.verdict for f in other) > max(f.verdict for f in findings):
            return other
    return findings


def _compressed(
    data: bytes, kind: str, filename: str, context: CheckContext, depth: int, layers: int
) -> list[Finding]:
    if layers >= _MAX_LAYERS:
        return [
            Finding(
                "archive.nesting",
                Verdict.FAIL,
                f"more than {_MAX_LAYERS} layers of compression",
                {"layers": layers + 1, "threshold": _MAX_LAYERS},
            )
        ]
    try:
        inner = decompress_stream(data, kind, budget_for(len(data), context))
    except BudgetExceeded as exc:
        limits = context.policy.archives
        return [
            Finding(
                "archive.expansion",
                Verdict.FAIL,
                f"the {kind} stream {exc} (policy: {limits.max_expansion_ratio:g}x, "
                f"{limits.max_uncompressed_bytes} bytes)",
                {"compressed": len(data), "threshold": limits.max_expansion_ratio},
            )
        ]
    except (OSError, ValueError, EOFError, zlib.error, lzma.LZMAError) as exc:
        return [Finding("archive.malformed", Verdict.FAIL, f"bad {kind} stream: {exc}", {})]
    name = filename.rsplit(".", 1)[0] if "." in filename else f"{filename} (expanded)"
    # One compression layer around a file or a tar is one archive level, not two.
    inner_report = _check(inner, name, context, depth=depth, layers=layers + 1)
    return [f.within(name) for f in inner_report.findings]
