"""Quality verification at registration: each table of a dataset version is validated
against the provider's Frictionless Table Schema (types, required, unique, ranges, enums,
primary keys) and profiled per column (missing values, distinct counts, ranges,
duplicates, outliers), streaming, in bounded memory.

Rows stream through frictionless one at a time; what the profile keeps per column is a
fixed number of figures plus a distinct-value sketch of bounded size (:class:`Distinct`),
so a 10 GB CSV registers in the same memory as a small one. The one exception is what
the schema itself asks for: ``unique`` and ``primaryKey`` constraints need every value
seen (frictionless keeps them), as any exact uniqueness check does.

The report never holds the data: errors are counted by field and kind with the first
row numbers where they occur, never with a cell's value; ranges are given for numeric
and temporal columns only (a string column's extremes would be its values).
"""

from __future__ import annotations

import csv
import heapq
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from cleanroom.errors import InvalidInput

TABLE_SUFFIXES = (".csv", ".tsv")
"""Files verified and profiled as tables; the rest are listed with their checksums only."""
SKETCH_SIZE = 4096
"""Values the distinct-count sketch keeps: exact below it, within about 3 % above."""
DUPLICATE_LIMIT = 250_000
"""Distinct rows remembered to count duplicates exactly (about 20 MB at most)."""
FIRST_ROWS = 5
"""Row numbers kept per kind of error, to point the provider at them."""
OUTLIER_SIGMAS = 3.0
"""A numeric value further than this many standard deviations from its column's mean."""
NUMERIC = ("integer", "number")
TEMPORAL = ("date", "datetime", "time", "year", "yearmonth")

_SALT = "cleanroom.quality"
_MASK = 2**64 - 1

RowProgress = Callable[[str, int], None]
"""Called with (file, rows read so far) every :data:`PROGRESS_EVERY` rows and at the end."""
PROGRESS_EVERY = 10_000


class Distinct:
    """A bounded distinct-value counter (k minimum values): exact while fewer than ``k``
    distinct values were seen, an estimate with a relative error near 1/sqrt(k) above."""

    def __init__(self, k: int | None = None) -> None:
        self.k = SKETCH_SIZE if k is None else k
        self._heap: list[int] = []  # negated: the largest kept hash on top
        self._kept: set[int] = set()

    def add(self, value: object) -> None:
        """Count ``value`` (by the hash of its text)."""
        # Python's tuple hash mixes its items well enough for the sketch (a bare int
        # hashes to itself, which would not be uniform); only counts leave the process.
        h = hash((value, _SALT)) & _MASK
        if h in self._kept:
            return
        if len(self._heap) < self.k:
            heapq.heappush(self._heap, -h)
            self._kept.add(h)
        elif h < -self._heap[0]:
            self._kept.discard(-heapq.heappushpop(self._heap, -h))
            self._kept.add(h)

    @property
    def exact(self) -> bool:
        """Whether :attr:`count` is exact."""
        return len(self._heap) < self.k

    @property
    def count(self) -> int:
        """The number of distinct values seen (estimated once the sketch is full)."""
        if self.exact:
            return len(self._heap)
        kth = (-self._heap[0] + 1) / 2**64
        return round((self.k - 1) / kth)


class Duplicates:
    """Counts rows equal to an earlier row, remembering at most ``limit`` distinct rows
    (by 64-bit hash): exact while the table has no more distinct rows than that, a lower
    bound above (a repeat of a row not remembered goes uncounted)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = DUPLICATE_LIMIT if limit is None else limit
        self._seen: set[int] = set()
        self.count = 0
        self.exact = True

    def add(self, cells: tuple[Any, ...]) -> None:
        """Count one row."""
        h = hash((cells, _SALT))
        if h in self._seen:
            self.count += 1
        elif len(self._seen) < self.limit:
            self._seen.add(h)
        else:
            self.exact = False


@dataclass
class ColumnProfile:
    """Running figures of one column."""

    name: str
    type: str
    values: int = 0
    missing: int = 0
    invalid: int = 0
    distinct: Distinct = field(default_factory=Distinct)
    minimum: Any = None
    maximum: Any = None
    # Welford's running mean and sum of squared deviations (numeric columns).
    mean: float = 0.0
    m2: float = 0.0
    outliers: int = 0

    def add(self, value: Any) -> None:
        """Count one valid, present cell."""
        self.values += 1
        self.distinct.add(value)
        if self.type in NUMERIC or self.type in TEMPORAL:
            if self.minimum is None or value < self.minimum:
                self.minimum = value
            if self.maximum is None or value > self.maximum:
                self.maximum = value
        if self.type in NUMERIC:
            x = float(value)
            delta = x - self.mean
            self.mean += delta / self.values
            self.m2 += delta * (x - self.mean)

    @property
    def std(self) -> float:
        """The column's standard deviation (numeric columns)."""
        return math.sqrt(self.m2 / (self.values - 1)) if self.values > 1 else 0.0

    def report(self, rows: int) -> dict[str, Any]:
        """The column's figures for the quality report."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "missing": self.missing,
            "missing_fraction": round(self.missing / rows, 6) if rows else 0.0,
            "invalid": self.invalid,
            "distinct": self.distinct.count,
            "distinct_exact": self.distinct.exact,
        }
        if self.minimum is not None:
            out["minimum"] = _plain(self.minimum)
            out["maximum"] = _plain(self.maximum)
        if self.type in NUMERIC and self.values:
            out["mean"] = round(self.mean, 6)
            out["std"] = round(self.std, 6)
            out["outliers"] = self.outliers
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    return value


@dataclass
class TableReport:
    """The verification and profile of one table."""

    path: str
    rows: int = 0
    errors: int = 0
    header_errors: list[dict[str, Any]] = field(default_factory=list)
    error_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    error_rows: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    columns: list[ColumnProfile] = field(default_factory=list)
    duplicate_rows: int = 0
    duplicates_exact: bool = True

    def note_error(self, kind: str, column: str, row: int | None) -> None:
        """Count one error of ``kind`` in ``column`` (``""``: the whole row)."""
        self.errors += 1
        key = (column, kind)
        self.error_counts[key] = self.error_counts.get(key, 0) + 1
        seen = self.error_rows.setdefault(key, [])
        if row is not None and len(seen) < FIRST_ROWS:
            seen.append(row)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (no cell values)."""
        return {
            "path": self.path,
            "rows": self.rows,
            "errors": self.errors,
            "header_errors": self.header_errors,
            "error_summary": [
                {"column": c, "kind": k, "count": n, "first_rows": self.error_rows.get((c, k), [])}
                for (c, k), n in sorted(self.error_counts.items())
            ],
            "duplicate_rows": self.duplicate_rows,
            "duplicates_exact": self.duplicates_exact,
            "columns": [c.report(self.rows) for c in self.columns],
        }


def load_schema(path: Path) -> dict[str, Any]:
    """A Frictionless Table Schema from a JSON or YAML file, validated (clear errors)."""
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidInput(f"{path}: the table schema does not exist") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{path}: cannot read the table schema: {exc}") from exc
    return check_schema(raw, where=str(path))


def check_schema(raw: Any, *, where: str = "table schema") -> dict[str, Any]:
    """``raw`` as a valid Table Schema descriptor, or InvalidInput naming what is wrong."""
    from frictionless import FrictionlessException, Schema

    if not isinstance(raw, dict) or not isinstance(raw.get("fields"), list) or not raw["fields"]:
        raise InvalidInput(f"{where}: a Table Schema needs a non-empty list of fields")
    try:
        schema = Schema.from_descriptor(raw)
    except FrictionlessException as exc:
        raise InvalidInput(f"{where}: not a valid Table Schema: {exc.error.message}") from exc
    errors = schema.metadata_errors if hasattr(schema, "metadata_errors") else []
    if errors:
        raise InvalidInput(f"{where}: not a valid Table Schema: {errors[0].message}")
    return dict(schema.to_descriptor())


def is_table(path: str) -> bool:
    """Whether a dataset file is verified and profiled as a table."""
    return path.lower().endswith(TABLE_SUFFIXES)


def verify_table(
    path: Path,
    schema: dict[str, Any] | None,
    *,
    name: str | None = None,
    progress: RowProgress | None = None,
) -> TableReport:
    """Validate the table at ``path`` against ``schema`` (None: a schema inferred from
    its first rows, whose mismatches are warnings) and profile every column.

    Two streaming passes: validation with the profile, then the outlier counts against
    the means and deviations the first pass found.
    """
    from frictionless import Dialect, FrictionlessException, Resource, Schema

    label = name or path.name
    report = TableReport(path=label)
    dialect = Dialect(header=True)
    kwargs: dict[str, Any] = {"path": path.name, "basepath": str(path.parent)}
    if path.suffix.lower() == ".tsv":
        kwargs["format"] = "tsv"
    resource: Any  # a TableResource (frictionless picks the class from the file)
    try:
        if schema is not None:
            resource = Resource(schema=Schema.from_descriptor(schema), dialect=dialect, **kwargs)
        else:
            resource = Resource(dialect=dialect, **kwargs)
            resource.infer()
        with resource:
            fields = list(resource.schema.fields)
            report.columns = [ColumnProfile(f.name, f.type) for f in fields]
            by_name = {c.name: c for c in report.columns}
            for err in resource.header.errors:
                report.header_errors.append(
                    {"kind": err.type, "column": getattr(err, "label", ""), "note": err.note}
                )
                report.errors += 1
            rows_seen = Duplicates()
            for row in resource.row_stream:
                report.rows += 1
                number = row.row_number
                invalid = set()
                for err in row.errors:
                    column = getattr(err, "field_name", "") or ""
                    report.note_error(err.type, column, number)
                    if err.type == "type-error":
                        invalid.add(column)
                for column, value in zip(report.columns, row.to_list(), strict=False):
                    if column.name in invalid:
                        column.invalid += 1
                    elif value is None:
                        column.missing += 1
                    else:
                        column.add(value)
                rows_seen.add(tuple(row.cells))
                if progress and report.rows % PROGRESS_EVERY == 0:
                    progress(label, report.rows)
    except FrictionlessException as exc:
        raise InvalidInput(f"{label}: cannot be read as a table: {exc.error.message}") from exc
    report.duplicate_rows = rows_seen.count
    report.duplicates_exact = rows_seen.exact
    _count_outliers(path, report, [c for c in by_name.values() if c.type in NUMERIC])
    if progress:
        progress(label, report.rows)
    return report


def _count_outliers(path: Path, report: TableReport, numeric: list[ColumnProfile]) -> None:
    """The second pass: values beyond :data:`OUTLIER_SIGMAS` deviations of the mean."""
    numeric = [c for c in numeric if c.values > 1 and c.std > 0]
    if not numeric:
        return
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = next(reader, [])
        where = {name: i for i, name in enumerate(header)}
        wanted = [(where[c.name], c) for c in numeric if c.name in where]
        for cells in reader:
            for i, column in wanted:
                if i >= len(cells):
                    continue
                try:
                    x = float(cells[i])
                except ValueError:
                    continue
                if abs(x - column.mean) > OUTLIER_SIGMAS * column.std:
                    column.outliers += 1


@dataclass(frozen=True)
class QualityResult:
    """A version's quality report and the status it earns."""

    status: str  # verified, profiled or quarantined
    report: dict[str, Any]


def verify_version(
    root: Path,
    files: Iterable[str],
    schema: dict[str, Any] | None,
    *,
    progress: RowProgress | None = None,
) -> QualityResult:
    """Verify and profile every table among ``files`` (paths under ``root``).

    With the provider's ``schema`` (applied to every table): any error quarantines the
    version. Without one: the tables are profiled against inferred types, whose
    mismatches are only warnings, and the version is ``profiled``.
    """
    tables = [p for p in files if is_table(p)]
    reports = [verify_table(root / p, schema, name=p, progress=progress) for p in tables]
    errors = sum(r.errors for r in reports)
    rows = sum(r.rows for r in reports)
    if schema is None:
        status = "profiled"
    else:
        if not tables:
            raise InvalidInput(
                "a table schema was given but the version holds no table "
                f"({', '.join(TABLE_SUFFIXES)} files)"
            )
        status = "quarantined" if errors else "verified"
    return QualityResult(
        status=status,
        report={
            "summary": {
                "tables": len(tables),
                "rows": rows,
                "errors": errors if schema is not None else 0,
                "warnings": errors if schema is None else 0,
                "schema": "provider" if schema is not None else "inferred",
                "status": status,
            },
            "tables": [r.to_dict() for r in reports],
        },
    )
