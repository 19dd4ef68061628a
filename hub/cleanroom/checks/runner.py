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
from typing import Any

import pandas as pd

from cleanroom.checks import detect
from cleanroom.checks.archives import (
    BudgetExceeded,
    budget_for,
    check_archive,
    check_zip_budget,
    decompress_stream,
)
from cleanroom.checks.boosters import check_lightgbm, check_lightgbm_json, check_xgboost
from cleanroom.checks.html_tables import parse_html
from cleanroom.checks.images import check_jpeg, check_other_image, check_png
from cleanroom.checks.models import check_tensors
from cleanroom.checks.notebooks import check_notebook
from cleanroom.checks.pickles import check_pickle
from cleanroom.checks.policy import DisclosurePolicy
from cleanroom.checks.skops_files import check_skops
from cleanroom.checks.source_index import load_source_index
from cleanroom.checks.tables import check_frame, read_table_bytes
from cleanroom.checks.text import check_text, check_text_numbers
from cleanroom.checks.text_tables import text_table_findings
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
    if kind in (detect.XGBOOST_JSON, detect.XGBOOST_UBJ):
        return check_xgboost(data, kind == detect.XGBOOST_UBJ, context)
    if kind == detect.LIGHTGBM:
        return check_lightgbm(data, context)
    if kind == detect.LIGHTGBM_JSON:
        return check_lightgbm_json(data, context)
    if kind == detect.SKOPS:
        refused = check_zip_budget(data, context)
        return refused or check_skops(data, context)
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
    if kind in (detect.TEXT, detect.JSON, detect.JSONL, detect.HTML):
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
    if kind not in detect.BINARY_TABLE_TYPES:
        data = _valid_utf8(data)
    try:
        if kind == detect.EXCEL:
            extra = _excel_parts(data, context)
        elif kind == detect.PARQUET:
            extra = _parquet_metadata(data, context)
        tables = read_table_bytes(data, kind)
    except Exception as exc:
        if kind in detect.BINARY_TABLE_TYPES:
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
    tables = 0
    if kind in (detect.TEXT, detect.JSONL):
        found = text_table_findings(text, context)
        tables += found[0]
        findings += found[1]
    if kind in (detect.JSON, detect.JSONL):
        for location, frame in json_tables(data, kind, context):
            tables += 1
            findings += _worse_reading(frame, context, location)
    if kind == detect.HTML:
        frames, _visible = parse_html(text)
        for k, frame in enumerate(frames, start=1):
            tables += 1
            findings += check_frame(frame, context, location=f"table {k}")
        if re.search(r"<script|javascript:|<iframe|<object|<embed", text, re.IGNORECASE):
            findings.append(
                Finding(
                    "html.content",
                    Verdict.REVIEW,
                    "the HTML holds scripts or embedded objects; an officer must look at them",
                    {},
                )
            )
    findings += check_text_numbers(text, context)
    findings += _unread_text(text, kind, tables)
    if not any(f.verdict > Verdict.PASS for f in findings):
        # Text the checks read through: its tables passed the table rules and nothing
        # else in it (identifiers, small counts, model summaries) was found.
        findings.append(
            Finding(
                "text.checked",
                Verdict.PASS,
                f"{kind} output of {text.count(chr(10)) + 1} lines: {tables} tables and "
                "the text passed the checks (identifiers, personal data, small counts, "
                "model summaries)",
                {"characters": len(text), "tables": tables},
            )
        )
    return findings


# A line of delimited fields, most of them numbers: a row of a table.
_FIELD_SPLIT = re.compile(r"\s*[,;\t|]\s*")
_NUMERIC_FIELD = re.compile(r"^-?\d[\d.,eE+-]{0,30}$")
_MAX_READ = 5_000_000


def _unread_text(text: str, kind: str, tables: int) -> list[Finding]:
    """Reasons to send text to an officer that the checks could not read through."""
    findings: list[Finding] = []
    if len(text) > _MAX_READ:
        findings.append(
            Finding(
                "text.partly_read",
                Verdict.REVIEW,
                f"the text has {len(text)} characters; the table and count checks read the "
                f"first {_MAX_READ}",
                {"characters": len(text), "threshold": _MAX_READ},
            )
        )
    stripped = text.lstrip("\ufeff \t\r\n")
    if kind == detect.TEXT and stripped[:1] in ("{", "["):
        findings.append(
            Finding(
                "text.malformed_json",
                Verdict.REVIEW,
                "the file looks like JSON (or a notebook) but does not parse; it was checked "
                "as text only",
                {},
            )
        )
    if kind == detect.TEXT and not tables:
        rows = 0
        for line in text[:_MAX_READ].splitlines()[:100_000]:
            fields = [f for f in _FIELD_SPLIT.split(line.strip().strip('"')) if f]
            if len(fields) >= 2 and sum(bool(_NUMERIC_FIELD.match(f)) for f in fields) >= 0.5 * len(
                fields
            ):
                rows += 1
        if rows >= 3:
            findings.append(
                Finding(
                    "text.unparsed_rows",
                    Verdict.REVIEW,
                    f"{rows} lines hold delimited numbers that do not parse as a table; an "
                    "officer must read them",
                    {"lines": rows},
                )
            )
    return findings


def _worse_reading(frame: pd.DataFrame, context: CheckContext, location: str) -> list[Finding]:
    findings = check_frame(frame, context, location=location)
    if (
        1 < frame.shape[0] <= 200
        and frame.shape[1] > 1
        and not isinstance(frame.index, pd.RangeIndex)
    ):
        # {"a": {"x": 1}} is columns of rows or rows of columns (orient="index"); both
        # readings are checked and the worse one kept.
        other = check_frame(frame.T, context, location=location)
        if max(f.verdict for f in other) > max(f.verdict for f in findings):
            return other
    return findings


def json_tables(
    data: bytes, kind: str, context: CheckContext | None = None
) -> list[tuple[str, pd.DataFrame]]:
    """The tables in a JSON or JSON Lines document, wherever they sit in it: lists of
    records, ``split`` and columnar (dict of equal-length lists) layouts, dicts of
    dicts; nested under any key (``{"meta": ..., "rows": [...]}``); flat dicts of
    numbers keyed by MultiIndex labels (``Series.to_json``), or by labels of the
    context's sources (``value_counts().to_json()``; a dict of metrics is no table)."""
    if kind == detect.JSONL:
        docs = []
        for line in data.decode("utf-8", errors="replace").splitlines():
            if line.strip():
                try:
                    docs.append(json.loads(line))
                except (ValueError, RecursionError):
                    continue
        doc: Any = docs
    else:
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError):
            return []
    found: list[tuple[str, pd.DataFrame]] = []
    _walk_json(doc, "JSON table" if kind == detect.JSON else "JSON Lines", found, 0)
    return [(w, f) for w, f in found if _known_keys(f, context)]


def _known_keys(frame: pd.DataFrame, context: CheckContext | None) -> bool:
    if "key" not in frame.columns or list(frame.columns) != ["key", "value"]:
        return True
    sources = context.sources if context is not None else []
    return any(source.knows_labels(frame["key"]) for source in sources)


def _walk_json(doc: Any, where: str, found: list[tuple[str, pd.DataFrame]], depth: int) -> None:
    if depth > 6 or len(found) >= 50:
        return
    frame = _as_frame(doc)
    if frame is not None:
        found.append((where, frame))
        return
    if isinstance(doc, dict):
        for key, value in list(doc.items())[:200]:
            if isinstance(value, dict | list):
                _walk_json(value, f"{where} / {str(key)[:60]}", found, depth + 1)
    elif isinstance(doc, list):
        for i, value in enumerate(doc[:50]):
            if isinstance(value, dict | list):
                _walk_json(value, f"{where} / {i}", found, depth + 1)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _records(doc: list[Any]) -> pd.DataFrame | None:
    if all(isinstance(r, dict) for r in doc[:1000]):
        if not all(_scalar(v) for r in doc[:50] for v in r.values()):
            return None
        return pd.DataFrame.from_records([r for r in doc if isinstance(r, dict)])
    if len(doc) >= 2 and all(isinstance(r, list) for r in doc[:1000]):
        rows = [r for r in doc if isinstance(r, list)]
        if not all(_scalar(v) for r in rows[:50] for v in r):
            return None
        if rows[0] and all(isinstance(v, str) for v in rows[0]):
            return pd.DataFrame(rows[1:], columns=rows[0])
        return pd.DataFrame(rows)
    return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# A MultiIndex label as Series.to_json writes it: "('day', 'burnt')".
_TUPLE_KEY = re.compile(r"^\((.{0,500})\)$")


def _keyed_numbers(doc: dict[str, Any]) -> pd.DataFrame:
    """A flat dict of numbers (``value_counts().to_json()``, a dict of counts) as a
    table of its keys and values; tuple keys split into one column per level."""
    keys = [str(k) for k in doc]
    parts = [_TUPLE_KEY.match(k) for k in keys]
    if all(parts):
        split = [[p.strip().strip("'\"") for p in m.group(1).split(",")] for m in parts if m]
        if len({len(p) for p in split}) == 1:
            columns = [f"key_{i}" for i in range(len(split[0]))]
            frame = pd.DataFrame(split, columns=columns)
            frame["value"] = list(doc.values())
            return frame
    return pd.DataFrame({"key": keys, "value": list(doc.values())})


def _as_frame(doc: Any) -> pd.DataFrame | None:
    try:
        frame: pd.DataFrame | None = None
        if isinstance(doc, list) and doc:
            frame = _records(doc)
        elif isinstance(doc, dict) and {"columns", "data"} <= set(doc):
            frame = pd.DataFrame(doc["data"], columns=doc["columns"], index=doc.get("index"))
        elif (
            isinstance(doc, dict)
            and len(doc) >= 2
            and all(isinstance(v, list) and all(_scalar(x) for x in v[:50]) for v in doc.values())
        ):
            lengths = {len(v) for v in doc.values()}
            if len(lengths) == 1 and lengths != {0}:
                frame = pd.DataFrame(doc)
        elif (
            isinstance(doc, dict)
            and doc
            and all(
                isinstance(v, dict) and v and all(_scalar(x) for x in v.values())
                for v in doc.values()
            )
        ):
            frame = pd.DataFrame(doc)
        elif isinstance(doc, dict) and len(doc) >= 2 and all(_number(v) for v in doc.values()):
            frame = _keyed_numbers(doc)
    except (ValueError, TypeError):
        return None
    if frame is None or frame.shape[0] == 0 or frame.shape[1] == 0:
        return None
    frame = frame.infer_objects()
    for column in frame.columns:
        if frame[column].dtype == object:
            converted = pd.to_numeric(frame[column], errors="coerce")
            if converted.notna().sum() == frame[column].notna().sum():
                frame[column] = converted
    return frame


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
