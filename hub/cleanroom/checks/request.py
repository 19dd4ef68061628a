"""Checks across the files of one release request and the project's earlier releases.

Each file can be safe alone and the request still disclose: two tables of counts over
the same cells, one of them a subset of the other (all packs, and all packs except one
line's night shift), differ by a small group whose counts anyone can subtract. The
same holds for sums of a measure (the difference is the small group's total) and for
a cross-table's margins (its row and column totals against a one-way table of the
same cells). So the count and sum cells of every table in a request, and the margins
of its cross-tables, are kept (:class:`TableCells`, JSON-safe: the airlock stores them
with each file's report, and so keeps them for what it released) and compared with
each other and with the project's released tables.

Beside the differencing rule, a request may carry other tools' own verdicts on its
files: ACRO's results file (its checks for each output) and SACRO-ML's
membership-inference reports on a model; both are read and shown with the policy's
thresholds (see :mod:`cleanroom.checks.reports`).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cleanroom.checks import detect
from cleanroom.checks.types import CheckContext, CheckReport, Finding, Verdict

#: Tables with more cells than this are not kept for differencing (they are not
#: aggregate tables a researcher would difference).
MAX_KEPT_CELLS = 5_000


@dataclass(frozen=True)
class TableCells:
    """The count cells of one table: its key columns and, per count column, the value
    of each cell keyed by its labels (normalised, joined with ``|``)."""

    file: str
    location: str
    keys: list[str]
    counts: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Sums of a source measure, per column and cell, and the largest single record's
    #: contribution to each cell (from the index): a difference of sums spans at least
    #: difference / largest records.
    sums: dict[str, dict[str, float]] = field(default_factory=dict)
    largest: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (kept in the stored report)."""
        out: dict[str, Any] = {
            "file": self.file,
            "location": self.location,
            "keys": self.keys,
            "counts": self.counts,
        }
        if self.sums:
            out["sums"] = self.sums
            out["largest"] = self.largest
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableCells:
        """The cells that :meth:`to_dict` wrote."""
        return cls(
            file=str(data.get("file", "")),
            location=str(data.get("location", "")),
            keys=[str(k) for k in data.get("keys", [])],
            counts=_cells(data.get("counts")),
            sums=_cells(data.get("sums")),
            largest=_cells(data.get("largest")),
        )


def _cells(data: Any) -> dict[str, dict[str, float]]:
    return {
        str(c): {str(k): float(v) for k, v in cells.items()} for c, cells in (data or {}).items()
    }


@dataclass
class RequestReport:
    """The reports of a request's files, with the request-level findings added to the
    files they concern."""

    files: dict[str, CheckReport]
    findings: list[Finding] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        """The worst verdict of any file."""
        return max((r.verdict for r in self.files.values()), default=Verdict.REVIEW)


def frames_of(data: bytes, context: CheckContext | None = None) -> list[tuple[str, pd.DataFrame]]:
    """The tables a file holds, by location, in any format the checks read (never
    raises: a file that does not parse has none)."""
    from cleanroom.checks.html_tables import parse_html
    from cleanroom.checks.runner import json_tables
    from cleanroom.checks.tables import read_table_bytes
    from cleanroom.checks.text_tables import tables_in_text

    try:
        kind = detect.detect(data)
        if kind in detect.TABLE_TYPES:
            return list(read_table_bytes(data, kind).items())
        if kind in (detect.JSON, detect.JSONL):
            return json_tables(data, kind, context)
        text = data.decode("utf-8", errors="replace")
        if kind == detect.TEXT:
            return [(f"text table {k}", f) for k, f in enumerate(tables_in_text(text), 1)]
        if kind == detect.HTML:
            return [(f"table {k}", f) for k, f in enumerate(parse_html(text)[0], 1)]
        if kind == detect.NOTEBOOK:
            return _notebook_frames(text)
    except Exception:  # a file the per-file checks already judged; nothing to compare
        return []
    return []


def _notebook_frames(text: str) -> list[tuple[str, pd.DataFrame]]:
    import nbformat

    from cleanroom.checks.html_tables import parse_html
    from cleanroom.checks.text_tables import tables_in_text

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nb = nbformat.reads(text, as_version=4)
    found: list[tuple[str, pd.DataFrame]] = []
    for i, cell in enumerate(nb.get("cells", []), start=1):
        for j, output in enumerate(cell.get("outputs", []), start=1):
            where = f"cell {i} output {j}"
            data = output.get("data", {})
            if "text/html" in data:
                html = data["text/html"]
                html = "".join(html) if isinstance(html, list) else str(html)
                found += [(f"{where} table {k}", f) for k, f in enumerate(parse_html(html)[0], 1)]
            plain = output.get("text") or data.get("text/plain")
            if plain and "text/html" not in data:
                plain = "".join(plain) if isinstance(plain, list) else str(plain)
                found += [(where, f) for f in tables_in_text(plain)]
    return found


def table_cells(data: bytes, filename: str, context: CheckContext) -> list[TableCells]:
    """The count and sum cells of every aggregate table in a file, and the margins of
    its cross-tables (for differencing)."""
    from cleanroom.checks.tables import table_summary

    out: list[TableCells] = []
    for location, frame in frames_of(data, context):
        try:
            summary = table_summary(frame, context)
        except Exception:  # the per-file checks report what is wrong with the table
            continue
        if summary is None:
            continue
        size = sum(len(c) for c in summary.counts.values()) + sum(
            len(c) for c in summary.sums.values()
        )
        if size > MAX_KEPT_CELLS:
            continue
        cells = TableCells(
            filename, location, summary.keys, summary.counts, summary.sums, summary.largest
        )
        out.append(cells)
        out += margins(cells)
    return out


# Labels of a margin a table already prints (crosstab(margins=True), "Total").
_TOTAL_LABELS = {"all", "total", "totals", "sum", "overall"}


def margins(cells: TableCells) -> list[TableCells]:
    """The totals of a cross-table's counts, as tables of their own: per row of a wide
    table (several count columns over one key), per column of it, and per key of a
    long table of two keys. Printed totals ("All") are not added in again."""
    out: list[TableCells] = []
    where = cells.location
    columns = {c: v for c, v in cells.counts.items() if c.strip().lower() not in _TOTAL_LABELS}
    if len(cells.keys) == 1 and len(columns) >= 2:
        rows: dict[str, float] = {}
        by_column: dict[str, float] = {}
        for column, values in columns.items():
            for label, value in values.items():
                if label in _TOTAL_LABELS:
                    continue
                rows[label] = rows.get(label, 0.0) + value
                by_column[column.strip().lower()] = (
                    by_column.get(column.strip().lower(), 0.0) + value
                )
        out.append(
            TableCells(
                cells.file, f"{where} (row totals)".strip(), cells.keys, {"(row total)": rows}
            )
        )
        out.append(
            TableCells(
                cells.file,
                f"{where} (column totals)".strip(),
                ["(columns)"],
                {"(column total)": by_column},
            )
        )
    elif len(cells.keys) == 2 and len(columns) == 1:
        ((column, values),) = columns.items()
        for side in (0, 1):
            totals: dict[str, float] = {}
            for label, value in values.items():
                parts = label.split("|")
                if len(parts) != 2 or parts[0] in _TOTAL_LABELS or parts[1] in _TOTAL_LABELS:
                    continue
                totals[parts[side]] = totals.get(parts[side], 0.0) + value
            out.append(
                TableCells(
                    cells.file,
                    f"{where} (totals by {cells.keys[side]})".strip(),
                    [cells.keys[side]],
                    {f"{column} (total)": totals},
                )
            )
    return out


def _pairs(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, str]]:
    same = [(c, c) for c in a if c in b]
    if same:
        return same
    if len(a) == 1 and len(b) == 1:
        return [(next(iter(a)), next(iter(b)))]
    return []


def differencing(
    tables: Sequence[TableCells], released: Sequence[TableCells], context: CheckContext
) -> list[Finding]:
    """Pairs of tables over the same cells, one nested in the other, whose difference
    is a small group: fewer than the threshold in a count cell, or, in a cell of sums,
    less than the threshold times the largest single record's contribution (so it may
    be the total of fewer than the threshold's records)."""
    threshold = context.policy.tables.min_cell_count
    findings: list[Finding] = []
    candidates = [(a, b, False) for i, a in enumerate(tables) for b in tables[i + 1 :]]
    candidates += [(a, b, True) for a in tables for b in released]
    for a, b, earlier in candidates:
        if len(a.keys) != len(b.keys) or (not earlier and _derived(a, b)):
            continue
        for kind in ("counts", "sums"):
            for ca, cb in _pairs(getattr(a, kind), getattr(b, kind)):
                finding = _difference(a, b, ca, cb, kind, earlier, threshold, context)
                if finding is not None:
                    findings.append(finding)
    return findings


def _derived(a: TableCells, b: TableCells) -> bool:
    # A table and the margins computed from it hold the same records.
    return a.file == b.file and (
        a.location.startswith(b.location) or b.location.startswith(a.location)
    )


def _difference(
    a: TableCells,
    b: TableCells,
    ca: str,
    cb: str,
    kind: str,
    earlier: bool,
    threshold: int,
    context: CheckContext,
) -> Finding | None:
    cells_a, cells_b = getattr(a, kind)[ca], getattr(b, kind)[cb]
    common = [k for k in cells_a if k in cells_b]
    if not common or len(common) < 0.5 * min(len(cells_a), len(cells_b)):
        return None
    diffs = {k: cells_a[k] - cells_b[k] for k in common}
    nonzero = {k: d for k, d in diffs.items() if d != 0}
    if not nonzero:
        return None  # the same table twice
    nested = all(d >= 0 for d in diffs.values()) or all(d <= 0 for d in diffs.values())
    if not nested:
        return None
    if kind == "counts":
        small = {k: d for k, d in nonzero.items() if abs(d) < threshold}
    else:
        largest = {**b.largest.get(cb, {}), **a.largest.get(ca, {})}
        # Without the index's largest contribution nothing bounds the records behind
        # a difference of sums: it is treated as small.
        small = {
            k: d
            for k, d in nonzero.items()
            if not np.isfinite(largest.get(k, np.nan)) or abs(d) < threshold * largest[k]
        }
    if not small:
        return None
    cells = [
        {
            "cell": k,
            "column": ca,
            "this": cells_a[k],
            "other": cells_b[k],
            "difference": abs(d),
            **({"largest_contribution": largest.get(k)} if kind == "sums" else {}),
        }
        for k, d in list(small.items())[: context.policy.tables.max_evidence_items]
    ]
    other = f"{b.file} ({b.location})" if b.location else b.file
    where = "an earlier release of the project" if earlier else "this request"
    what = (
        f"fewer than {threshold}: one table is the other less a small group, whose counts "
        "the difference reveals"
        if kind == "counts"
        else f"less than {threshold} times the largest single record in the cell: one "
        "table is the other less a group too small to hide its total"
    )
    return Finding(
        "request.differencing",
        Verdict.FAIL,
        f"{len(small)} cells of {ca!r} differ from {other} in {where} by {what}",
        {
            "file": a.file,
            "table": a.location,
            "other_file": b.file,
            "other_table": b.location,
            "earlier_release": earlier,
            "kind": kind,
            "cells": cells,
            "threshold": threshold,
        },
        a.location,
    )


def check_request(
    files: Sequence[tuple[str, bytes]],
    context: CheckContext,
    released: Iterable[TableCells] = (),
) -> RequestReport:
    """Check every file of a request, then the request as a whole: differencing within
    it and against ``released`` (the project's released tables' cells), and the
    reports of other tools (ACRO, SACRO-ML) it carries."""
    from cleanroom.checks.reports import attached_reports
    from cleanroom.checks.runner import check_bytes

    reports = {name: check_bytes(data, name.rsplit("/", 1)[-1], context) for name, data in files}
    cells = [c for name, data in files for c in table_cells(data, name, context)]
    extra = request_findings(cells, list(released), context)
    extra += attached_reports(files, context)
    for finding in extra:
        target = str(finding.evidence.get("file", ""))
        if target in reports:
            reports[target].findings.append(finding)
    return RequestReport(reports, extra)


def request_findings(
    cells: Sequence[TableCells], released: Sequence[TableCells], context: CheckContext
) -> list[Finding]:
    """The request-level findings from the cells of its tables (see :func:`differencing`)."""
    return differencing(cells, released, context)


def cells_from_reports(reports: Iterable[Mapping[str, Any]]) -> list[TableCells]:
    """The kept cells of stored reports (the airlock's records of released files)."""
    out: list[TableCells] = []
    for report in reports:
        for item in report.get("cells") or []:
            try:
                out.append(TableCells.from_dict(item))
            except (TypeError, ValueError, AttributeError):
                continue
    return out


def as_json(cells: Sequence[TableCells]) -> str:
    """The cells as JSON text (for debugging and the command line)."""
    return json.dumps([c.to_dict() for c in cells], indent=1)
