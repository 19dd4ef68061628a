"""Notebook checks: every output through the table, image and text checks.

A notebook is hostile input: we parse it with nbformat and never execute or render it.
Outputs at all send it to an officer; code that displays raw frames does too.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import warnings
from collections.abc import Callable
from typing import Any

import nbformat

from cleanroom.checks.html_tables import parse_html
from cleanroom.checks.tables import check_frame
from cleanroom.checks.text import check_text
from cleanroom.checks.text_tables import check_text_tables
from cleanroom.checks.types import CheckContext, CheckReport, Finding, Verdict

#: Checks decoded bytes (an image in an output): (bytes, name) -> report.
BytesChecker = Callable[[bytes, str], CheckReport]

# `df.head()`, `df.sample(5)`, `df.tail()`, `display(df)`, `print(df)`, or a line that is
# only a name or an indexing of one (the notebook shows whatever the last line is).
_RAW_CALL = re.compile(r"\.(head|tail|sample|nlargest|nsmallest)\s*\(")

_TEXT_MIMES = ("text/plain", "text/markdown", "text/latex", "application/json")


def _raw_display(source: str) -> list[str]:
    lines = [ln for ln in source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    # A bare name or print(df) shows whatever the frame holds; its output is checked as
    # a table like any other, so only calls that pick raw rows are named here.
    return [ln.strip() for ln in lines if _RAW_CALL.search(ln)]


def _aggregates_only(findings: list[Finding]) -> bool:
    """Whether a cell's outputs are tables of aggregates that passed (``summary.head()``
    of a grouped table shows no raw rows)."""
    tables = [f for f in findings if f.rule == "table.checked"]
    return (
        bool(tables)
        and all(f.evidence.get("aggregate") for f in tables)
        and all(f.verdict is Verdict.PASS for f in findings)
    )


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    if isinstance(value, dict | int | float):
        return json.dumps(value)
    return str(value)


def check_notebook(
    data: bytes, context: CheckContext, check_bytes: BytesChecker, location: str = ""
) -> list[Finding]:
    """Findings for a ``.ipynb`` file."""
    try:
        with warnings.catch_warnings():
            # nbformat warns (missing or duplicate cell ids) on notebooks it repairs;
            # the notebook is read either way, and the warnings would flood the log.
            warnings.simplefilter("ignore")
            nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as exc:  # nbformat raises many kinds on hostile JSON
        return [
            Finding(
                "notebook.malformed",
                Verdict.FAIL,
                f"not a readable notebook: {type(exc).__name__}: {str(exc)[:300]}",
                {},
                location,
            )
        ]
    findings: list[Finding] = []
    outputs = 0
    raw_cells: list[dict[str, Any]] = []

    def at(where: str) -> str:
        return f"{location} / {where}" if location else where

    for i, cell in enumerate(nb.get("cells", []), start=1):
        source = _as_text(cell.get("source", ""))
        findings += check_text(source, context, location=at(f"cell {i} source"))
        for name, bundle in (cell.get("attachments") or {}).items():
            findings += _bundle(bundle, context, check_bytes, at(f"cell {i} attachment {name}"))
        if cell.get("cell_type") != "code":
            continue
        shown = _raw_display(source)
        start = len(findings)
        for j, output in enumerate(cell.get("outputs", []), start=1):
            outputs += 1
            where = at(f"cell {i} output {j}")
            kind = output.get("output_type")
            if kind == "stream":
                text = _as_text(output.get("text", ""))
                findings += check_text(text, context, location=where)
                findings += check_text_tables(text, context, location=where)
            elif kind == "error":
                text = "\n".join(_as_text(t) for t in output.get("traceback", []))
                findings += check_text(text, context, location=where)
            else:
                findings += _bundle(output.get("data", {}), context, check_bytes, where)
        if shown and cell.get("outputs") and not _aggregates_only(findings[start:]):
            raw_cells.append({"cell": i, "code": shown[:5]})
    if raw_cells:
        findings.append(
            Finding(
                "notebook.raw_display",
                context.policy.notebooks.raw_display_verdict,
                f"{len(raw_cells)} code cells pick rows to display (head, tail, sample, "
                "nlargest, nsmallest) from what may be record-level data",
                {"cells": raw_cells[: context.policy.tables.max_evidence_items]},
                location,
            )
        )
    if outputs:
        findings.append(
            Finding(
                "notebook.outputs",
                context.policy.notebooks.outputs_verdict,
                f"the notebook holds {outputs} outputs, each checked above"
                + (
                    ""
                    if context.policy.notebooks.outputs_verdict is Verdict.PASS
                    else "; the policy asks an officer to look at them"
                ),
                {"outputs": outputs},
                location,
            )
        )
    else:
        findings.append(
            Finding(
                "notebook.outputs",
                Verdict.PASS,
                "the notebook holds no outputs",
                {"cells": len(nb.get("cells", []))},
                location,
            )
        )
    return findings


def _bundle(
    bundle: dict[str, Any], context: CheckContext, check_bytes: BytesChecker, where: str
) -> list[Finding]:
    findings: list[Finding] = []
    for mime, value in bundle.items():
        if mime in ("image/png", "image/jpeg", "image/gif"):
            try:
                raw = base64.b64decode(_as_text(value), validate=False)
            except (binascii.Error, ValueError) as exc:
                findings.append(
                    Finding("image.malformed", Verdict.FAIL, f"bad base64 image: {exc}", {}, where)
                )
                continue
            findings += [f.within(where) for f in check_bytes(raw, mime).findings]
        elif mime == "image/svg+xml":
            findings += [
                f.within(where) for f in check_bytes(_as_text(value).encode("utf-8"), mime).findings
            ]
        elif mime == "text/html":
            frames, text = parse_html(_as_text(value))
            for k, frame in enumerate(frames, start=1):
                findings += check_frame(frame, context, location=f"{where} table {k}")
            findings += check_text(text, context, location=where)
        elif mime in _TEXT_MIMES or mime.startswith("text/"):
            findings += check_text(_as_text(value), context, location=where)
            if (mime == "text/plain" and "text/html" not in bundle) or mime in (
                "text/markdown",
                "text/latex",
            ):
                # A frame shown without HTML (print, to_string) is still a table.
                findings += check_text_tables(_as_text(value), context, location=where)
        else:
            findings.append(
                Finding(
                    "notebook.unknown_output",
                    Verdict.REVIEW,
                    f"an output of type {mime} that the checks do not read",
                    {"mime": mime},
                    where,
                )
            )
    return findings
