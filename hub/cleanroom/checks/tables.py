"""Disclosure checks on tables: source rows, identifiers, small counts, dominance, models.

A table arrives as a pandas DataFrame from any format (CSV, TSV, Excel, Parquet, an
HTML table in a notebook). Column roles are inferred from names and values: label
columns (text), count columns (``n``, ``count``, or the integer cells of a
cross-tabulation), aggregate columns (``mean``, ``force_kn_sum``...) and statistics
rows (``describe()``: count, mean, min, max).
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cleanroom.checks.source_index import SourceIndex, _decimals, combine_keys, normalise_name
from cleanroom.checks.text import personal_hits
from cleanroom.checks.types import CheckContext, Finding, Verdict

_COUNT_NAME = re.compile(
    r"^(n|count|counts|freq|frequency|size|records|rows|obs|observations|nobs|"
    r"n_.+|num_.+|number_of_.+|.+_count|.+_counts|.+_n|.+_freq|.+_size|count_.+)$"
)
_AGG_WORDS = (
    "mean",
    "avg",
    "average",
    "sum",
    "total",
    "median",
    "std",
    "sd",
    "var",
    "min",
    "max",
    "pct",
    "percent",
    "percentage",
    "rate",
    "share",
    "proportion",
    "ratio",
    "q25",
    "q75",
    "quantile",
    "iqr",
    "se",
    "sem",
    "stderr",
    "coef",
    "estimate",
)
_DOMINANCE_WORDS = ("sum", "total", "mean", "avg", "average")
_EXTREME = re.compile(r"^(min|max|minimum|maximum|.+_(min|max)|(min|max)_.+)$")
_DOF = re.compile(r"^(df_?resid(ual)?s?|residual_df|dof_resid(ual)?s?|resid_df)$")
# Columns of statistics, not counts: p-values, test statistics, standard errors, bounds.
_STATISTIC = re.compile(
    r"^(p|pval|pvalue|p_value|p_values|p_t|p_z|p_chi2|prob|probability|t|z|f|chi2|chisq|"
    r"t_stat|z_stat|t_value|z_value|f_stat|statistic|stat|coef|coefficient|coefficients|"
    r"estimate|estimates|beta|std_err|std_error|stderr|se|ci|ci_low|ci_high|ci_lower|"
    r"ci_upper|lower|upper|lower_ci|upper_ci|0_025|0_975|2_5|97_5|conf_low|conf_high|"
    r"odds_ratio|or|hr|rr|r2|r_squared|adj_r2|aic|bic|llf|log_likelihood|vif|importance|"
    r"feature_importance|weight|score|auc|accuracy|precision|recall|f1|loss|rmse|mae|mse|"
    r"(.+_)?(pvalue|p_value|tstat|zscore|stderr|std_err|importance|score))$"
)
_MODEL_WORDS = ("coef", "coefficient", "estimate", "std_err", "stderr", "pvalue", "p_value")
# Integer columns that label cells rather than count them.
_LABEL_NAME = re.compile(
    r"^(.+_)?(hour|hours|hr|week|weeks|month|months|year|years|yr|day|days|weekday|dow|"
    r"quarter|qtr|minute|second|date|bin|bins|bucket|band|decile|quintile|quartile|"
    r"percentile|id|code|no|num|number|index|idx|rank|level|group|class|category|cluster|"
    r"line|shift|station|cavity|cavities|mould|mold|machine|press|lot|batch|cycle|step|"
    r"stage|period|age|version|seed|fold|label|target|flag|grade)$"
)
# Model settings named like counts ("n_estimators", "n_features"): not counts of records.
_MODEL_SETTING = re.compile(
    r"^n_(features|features_in|estimators|components|splits|folds|jobs|iter|iterations|"
    r"neighbors|neighbours|clusters|layers|epochs|trees|classes|outputs|bins|lags|params|"
    r"parameters|repeats|repetitions|shadow_models|rounds)$"
)
_NOT_COUNT_ROLES = {"label", "time", "direct_identifier", "quasi_identifier", "contributor"}
_STAT_ROWS = {"count", "mean", "std", "min", "max", "25", "50", "75", "unique", "top", "freq"}
_PERSONAL_COLUMNS = {
    "email",
    "e_mail",
    "email_address",
    "phone",
    "phone_number",
    "telephone",
    "mobile",
    "ssn",
    "national_id",
    "nino",
    "passport",
    "passport_number",
    "full_name",
    "first_name",
    "last_name",
    "surname",
    "address",
    "street",
    "postcode",
    "zip_code",
    "date_of_birth",
    "dob",
    "birth_date",
}


def read_table_bytes(data: bytes, kind: str) -> dict[str, pd.DataFrame]:
    """The tables in a file: one for CSV, TSV and Parquet, one per sheet for Excel.

    Raises ``ValueError`` (with the reader's reason) when the bytes are not that kind.
    """
    buf = io.BytesIO(data)
    if kind == "parquet":
        return {"": pd.read_parquet(buf)}
    if kind == "excel":
        sheets = pd.read_excel(buf, sheet_name=None, header=0, engine="openpyxl")
        return {f"sheet {name}": frame for name, frame in sheets.items()}
    if kind == "arrow":
        import pyarrow.ipc

        try:
            return {"": pyarrow.ipc.open_file(buf).read_pandas()}
        except Exception:
            buf.seek(0)
            return {"": pyarrow.ipc.open_stream(buf).read_pandas()}
    if kind == "npy":
        return {"": array_frame(np.load(buf, allow_pickle=False))}
    sep = {"csv": ",", "tsv": "\t", "csv;": ";", "csv|": "|"}[kind]
    try:
        return {"": pd.read_csv(buf, sep=sep, engine="pyarrow")}
    except Exception:
        # The fast reader refuses ragged rows and odd quoting; the C reader copes with
        # more, and if it also fails the caller treats the file as text.
        buf.seek(0)
        return {"": pd.read_csv(buf, sep=sep, engine="c", low_memory=False)}


def array_frame(array: np.ndarray) -> pd.DataFrame:
    """A 1-D or 2-D array (plain or structured) as a frame with numbered columns (a
    row per record; more dimensions are flattened after the first). Object arrays are
    refused (``ValueError``): they are pickles."""
    if array.dtype.names:
        return pd.DataFrame.from_records(array)
    if array.dtype == object:
        raise ValueError("an object array (a pickle) is not read")
    if array.ndim == 0:
        array = array.reshape(1, 1)
    elif array.ndim == 1:
        array = array.reshape(-1, 1)
    elif array.ndim > 2:
        array = array.reshape(array.shape[0], -1)
    return pd.DataFrame(array, columns=[f"column_{i}" for i in range(array.shape[1])])


def _flat_name(label: Any) -> str:
    if isinstance(label, tuple):
        return "_".join(str(p) for p in label if str(p) and not str(p).startswith("Unnamed"))
    return str(label)


def _prepare(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The frame with normalised, unique column names, and the original names."""
    frame = frame.copy(deep=False)
    if not isinstance(frame.index, pd.RangeIndex):
        # A named or labelled index (groupby results, crosstabs) is part of the table.
        frame = frame.reset_index()
    original = [_flat_name(c) for c in frame.columns]
    names: list[str] = []
    for label in original:
        name = normalise_name(label) or "column"
        base, i = name, 2
        while name in names:
            name, i = f"{base}_{i}", i + 1
        names.append(name)
    frame.columns = names
    return frame, original


def _is_text(series: pd.Series) -> bool:
    return not (
        pd.api.types.is_numeric_dtype(series.dtype)
        or pd.api.types.is_bool_dtype(series.dtype)
        or pd.api.types.is_datetime64_any_dtype(series.dtype)
    )


def _integer_like(series: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(series.dtype):
        return False
    if pd.api.types.is_integer_dtype(series.dtype):
        return True
    if pd.api.types.is_float_dtype(series.dtype):
        vals = series.dropna().to_numpy(dtype="float64")
        return len(vals) > 0 and bool(np.all(vals == np.round(vals)))
    return False


def _is_statistic(name: str) -> bool:
    return bool(_STATISTIC.match(name))


def _label_like_integers(name: str, series: pd.Series, roles: dict[str, str]) -> bool:
    # An integer column leads a table as its label when its name or the source says
    # so, or when its values rise as a groupby sorts them (hours, weeks, bins).
    if _LABEL_NAME.match(name) or roles.get(name) in _NOT_COUNT_ROLES:
        return True
    vals = series.dropna().to_numpy(dtype="float64")
    return len(vals) >= 3 and bool(np.all(np.diff(vals) > 0))


def _key_columns(frame: pd.DataFrame, text_cols: list[str], roles: dict[str, str]) -> list[str]:
    """The leading label columns that identify each row (a groupby's index, a
    crosstab's rows); empty when the table has no such key (record-level data)."""
    if len(frame) > 10_000 or frame.shape[1] < 2:
        return []
    key: list[str] = []
    for c in list(frame.columns)[:-1]:
        series = frame[c]
        if _COUNT_NAME.match(c) or _is_statistic(c) or _has_word(c, _AGG_WORDS):
            break
        if not (
            c in text_cols
            or pd.api.types.is_bool_dtype(series.dtype)
            or pd.api.types.is_datetime64_any_dtype(series.dtype)
            or (_integer_like(series) and (key or _label_like_integers(c, series, roles)))
        ):
            break
        key.append(c)
        if not frame.duplicated(subset=key).any():
            return key
    return []


def _has_word(name: str, words: Iterable[str]) -> bool:
    parts = set(name.split("_"))
    return any(w in parts for w in words)


def _matches(values: pd.Series | tuple[np.ndarray, int], reference: pd.Series | np.ndarray) -> bool:
    """Whether (almost) every cell of ``values`` equals ``reference`` at the resolution
    the output prints it (``values`` may be given as (array, decimals), computed once)."""
    if isinstance(values, tuple):
        out, decimals = values
    else:
        out = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
        finite = out[np.isfinite(out)]
        decimals = _decimals(finite) if len(finite) else 0
    ref = np.asarray(reference, dtype="float64")
    ok = np.isfinite(out) & np.isfinite(ref)
    if not ok.any() or ok.sum() < 0.8 * np.isfinite(out).sum():
        return False
    tol = 0.5 * 10.0**-decimals + 1e-6 * np.abs(ref[ok])
    return bool(np.mean(np.abs(out[ok] - ref[ok]) <= tol) >= 0.9)


def _numbers(series: pd.Series) -> tuple[np.ndarray, int]:
    out = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
    finite = out[np.isfinite(out)]
    return out, (_decimals(finite) if len(finite) else 0)


@dataclass
class _CellMatch:
    """An output's cells matched with a source grouping."""

    source: SourceIndex
    group: tuple[str, ...]
    out_cols: tuple[str, ...]
    keys: np.ndarray
    #: value column -> (count | sum | mean, source measure, table number)
    values: dict[str, tuple[str, str, int]] = field(default_factory=dict)


class _Table:
    """A table under check, with the roles of its columns."""

    def __init__(self, frame: pd.DataFrame, context: CheckContext, location: str) -> None:
        self.frame, self.original = _prepare(frame)
        self.context = context
        self.policy = context.policy.tables
        self.location = location
        self.findings: list[Finding] = []
        self.cell_matches: list[_CellMatch] = []
        cols = list(self.frame.columns)
        self.text_cols = [c for c in cols if _is_text(self.frame[c])]
        self.numeric_cols = [
            c
            for c in cols
            if pd.api.types.is_numeric_dtype(self.frame[c].dtype)
            and not pd.api.types.is_bool_dtype(self.frame[c].dtype)
        ]
        source_numeric = set().union(*(s.numeric_columns() for s in context.sources))
        self.source_roles: dict[str, str] = {}
        for source in context.sources:
            for c, r in source.roles.items():
                self.source_roles.setdefault(c, r)
        self.stat_cols = [c for c in self.numeric_cols if _is_statistic(c)]
        # A model summary (coefficients, standard errors, p-values) has no count cells
        # except those named so ("n", "nobs"): a p-value printed 0.000 is not a zero count.
        self.model_summary = any(_has_word(c, _MODEL_WORDS) for c in cols)
        self.key_cols = _key_columns(self.frame, self.text_cols, self.source_roles)
        self.agg_cols = [
            c
            for c in self.numeric_cols
            if not _COUNT_NAME.match(c) and _has_word(c, _AGG_WORDS) and c not in self.stat_cols
        ]
        self.label_cols = [
            c
            for c in self.numeric_cols
            if c in self.key_cols
            or _LABEL_NAME.match(c)
            or self.source_roles.get(c) in _NOT_COUNT_ROLES
        ]
        named = [
            c
            for c in self.numeric_cols
            if _COUNT_NAME.match(c) and c not in self.label_cols and not _DOF.match(c)
        ]
        # Counts by value, whatever their name ("deliveries", "defects", pandas' named
        # aggregation): the non-negative integer value columns of an aggregate table.
        aggregate_shaped = bool(self.key_cols) and len(self.frame) <= 10_000
        valued = [
            c
            for c in self.numeric_cols
            if aggregate_shaped
            and not self.model_summary
            and c not in named
            and c not in self.label_cols
            and c not in self.agg_cols
            and c not in self.stat_cols
            and not _DOF.match(c)
            and not (c in source_numeric and self.source_roles.get(c) == "measure")
            and _integer_like(self.frame[c])
            and bool((self.frame[c].dropna() >= 0).all())
        ]
        if context.sources and valued and self._foreign_text_keys():
            # Rows labelled by text that is no grouping of the source (model names in a
            # comparison of models): their integers are settings, not counts of records.
            valued = []
        named = [c for c in named if not _MODEL_SETTING.match(c)]
        self.count_cols = named + valued
        # describe()-style tables: statistics as row labels in the first text column.
        self.stat_label_col = next(
            (
                c
                for c in self.text_cols[:1]
                if len(self.frame) <= 50
                and self.frame[c]
                .astype("str")
                .str.strip()
                .str.lower()
                .str.rstrip("%")
                .isin(_STAT_ROWS)
                .mean()
                >= 0.5
            ),
            None,
        )
        if self.stat_label_col is not None:
            self.count_cols = [c for c in self.count_cols if c in named]
        # A cross-tabulation: label columns plus non-negative integer cells whose
        # column names are categories, not measurements.
        self.crosstab = (
            not self.agg_cols
            and self.stat_label_col is None
            and bool(self.text_cols)
            and bool(self.numeric_cols)
            and len(self.frame) <= 10_000
            and all(
                _integer_like(self.frame[c])
                and (self.frame[c].dropna() >= 0).all()
                and c not in source_numeric
                for c in self.numeric_cols
                if c not in self.key_cols
            )
            and set(self.numeric_cols) - set(self.key_cols) <= set(self.count_cols)
        )

    def _foreign_text_keys(self) -> bool:
        text_keys = [c for c in self.key_cols if c in self.text_cols]
        if not text_keys or len(text_keys) < len(self.key_cols):
            return False
        return not any(
            source.knows_labels(self.frame[c]) for source in self.context.sources for c in text_keys
        )

    def add(self, rule: str, verdict: Verdict, message: str, **evidence: Any) -> None:
        """Record a finding at this table's location."""
        self.findings.append(Finding(rule, verdict, message, evidence, self.location))

    def cap(self, items: Iterable[Any]) -> list[Any]:
        """At most the policy's number of evidence items."""
        return list(itertools.islice(items, self.policy.max_evidence_items))

    def row_label(self, pos: int) -> str:
        """A readable label for a row: its first text cells, else its number."""
        labels = [
            str(self.frame.iat[pos, self.frame.columns.get_loc(c)]) for c in self.text_cols[:2]
        ]
        return " / ".join(labels) if labels else f"row {pos + 1}"

    # -- the checks ---------------------------------------------------------------

    def run(self) -> list[Finding]:
        """Run every table rule; a pass finding when none objects."""
        if self.frame.shape[0] == 0 or self.frame.shape[1] == 0:
            self.add("table.empty", Verdict.REVIEW, "the table has no rows or no columns")
            return self.findings
        self.check_cell_size()
        self.check_identifiers()
        self.check_source_rows()
        self.resolve_source_cells()
        self.check_shape()
        self.check_counts()
        self.check_dominance()
        self.check_statistics()
        if not self.findings:
            self.add(
                "table.checked",
                Verdict.PASS,
                f"table of {len(self.frame)} rows and {self.frame.shape[1]} columns passed "
                "the table checks",
                rows=len(self.frame),
                columns=self.original,
                count_columns=self.count_cols,
                aggregate=bool(
                    self.count_cols
                    or self.agg_cols
                    or self.crosstab
                    or any(m.values for m in self.cell_matches)
                ),
                sources=[s.name for s in self.context.sources],
            )
        return self.findings

    def check_cell_size(self) -> None:
        """Cells too long to be statistics."""
        limit = self.context.policy.limits.max_cell_chars
        for c in self.text_cols:
            lengths = self.frame[c].astype("str").str.len()
            if (lengths > limit).any():
                rows = np.flatnonzero((lengths > limit).to_numpy()) + 1
                self.add(
                    "table.huge_cell",
                    Verdict.FAIL,
                    f"column {c!r} has cells longer than {limit} characters",
                    column=c,
                    rows=self.cap(rows),
                    threshold=limit,
                )

    def check_identifiers(self) -> None:
        """Identifier columns, identifier values and personal data."""
        source_ids = set().union(*(s.identifier_columns for s in self.context.sources))
        named = [
            (orig, c)
            for orig, c in zip(self.original, self.frame.columns, strict=True)
            if c in source_ids or c in _PERSONAL_COLUMNS
        ]
        if named:
            self.add(
                "identifiers.columns",
                Verdict.FAIL,
                "the table has identifier columns: " + ", ".join(o for o, _c in named),
                columns=[o for o, _c in named],
                source_identifier_columns=sorted(source_ids),
            )
        limit = self.context.policy.limits.max_cell_chars
        header = np.asarray([str(o) for o in self.original], dtype=object)
        for c in [*self.text_cols, None]:
            if c is None:  # the header itself: crosstabs put labels there
                uniq = np.asarray([h.strip().lower() for h in header], dtype=object)
                raw = header
            else:
                raw = pd.unique(self.frame[c].dropna().astype("str").str.slice(0, limit))
                raw = np.asarray(raw, dtype=object)
                uniq = np.asarray([v.strip().lower() for v in raw], dtype=object)
            for source in self.context.sources:
                mask = source.identifier_hits(uniq)
                if mask.any():
                    self.add(
                        "identifiers.source_values",
                        Verdict.FAIL,
                        f"{'the header' if c is None else f'column {c!r}'} holds values of "
                        "the source's identifier columns",
                        column=c or "(header)",
                        values=self.cap(raw[mask]),
                        dataset=source.name,
                    )
            hits = personal_hits(list(raw), self.policy.max_evidence_items)
            for name, examples in hits.items():
                self.add(
                    "identifiers.personal",
                    Verdict.FAIL,
                    f"{'the header' if c is None else f'column {c!r}'} holds what looks "
                    f"like a {name}",
                    column=c or "(header)",
                    pattern=name,
                    examples=examples,
                )

    def check_source_rows(self) -> None:
        """Rows that reproduce source records (needs an index)."""
        for source in self.context.sources:
            matches = source.match_rows(self.frame)
            if not matches:
                continue
            matched = np.zeros(len(self.frame), dtype=bool)
            for m in matches:
                matched[m.output_rows] = True
            rows = np.flatnonzero(matched)
            if len(rows) < self.policy.min_source_row_matches:
                continue
            first = matches[0]
            shown = rows[: self.policy.max_evidence_items]
            # The source row behind each shown output row, from the first combination
            # that matched it (numpy all the way: a full dump matches a million rows).
            behind: dict[int, int] = {}
            for m in matches:
                keep = np.isin(m.output_rows, shown)
                for o, s in zip(m.output_rows[keep], m.source_rows[keep], strict=True):
                    behind.setdefault(int(o), int(s))
            self.add(
                "table.source_rows",
                Verdict.FAIL,
                f"{len(rows)} of {len(self.frame)} rows reproduce records of dataset "
                f"{source.name!r} (matched on {', '.join(first.columns)})",
                rows=[int(r) + 1 for r in shown],
                matched_rows=len(rows),
                source_rows=[behind[int(r)] + 1 for r in shown],
                matched_on=[m.columns for m in matches],
                source_table=first.table,
                dataset=source.name,
                threshold=self.policy.min_source_row_matches,
            )

    def check_shape(self) -> None:
        """Record-level shape: many rows without aggregates, or a large share of a source."""
        n = len(self.frame)
        # Value columns that the index shows to be counts, sums or means of source
        # cells are aggregates whatever they are called.
        matched = any(m.values for m in self.cell_matches)
        if (
            n >= self.policy.row_level_min_rows
            and not self.count_cols
            and not self.agg_cols
            and not matched
        ):
            self.add(
                "table.row_level",
                Verdict.REVIEW,
                f"{n} rows and no count or aggregate column: this looks like record-level data",
                rows=n,
                threshold=self.policy.row_level_min_rows,
            )
        for source in self.context.sources:
            limit = self.policy.row_level_source_fraction * source.rows
            if source.rows and n >= limit:
                self.add(
                    "table.row_level_source",
                    Verdict.REVIEW,
                    f"{n} rows is at least {self.policy.row_level_source_fraction:.0%} of the "
                    f"{source.rows} rows of dataset {source.name!r}",
                    rows=n,
                    source_rows=source.rows,
                    threshold=self.policy.row_level_source_fraction,
                )

    def count_cells(self) -> list[tuple[int, str, float]]:
        """(row, column, value) of every frequency cell."""
        cells: list[tuple[int, str, float]] = []
        for c in self.count_cols:
            vals = pd.to_numeric(self.frame[c], errors="coerce").to_numpy(dtype="float64")
            cells.extend((int(i), c, float(vals[i])) for i in np.flatnonzero(np.isfinite(vals)))
        if self.stat_label_col is not None:
            labels = self.frame[self.stat_label_col].astype("str").str.strip().str.lower()
            for i in np.flatnonzero((labels == "count").to_numpy()):
                for c in self.numeric_cols:
                    v = pd.to_numeric(pd.Series([self.frame.at[i, c]]), errors="coerce")[0]
                    if np.isfinite(v):
                        cells.append((int(i), c, float(v)))
        return cells

    def check_counts(self) -> None:
        """Threshold rule on frequency cells; zeros and negatives."""
        threshold = self.policy.min_cell_count
        cells = self.count_cells()
        small = [(r, c, v) for r, c, v in cells if 0 < v < threshold]
        zeros = [(r, c, v) for r, c, v in cells if v == 0]
        negative = [(r, c, v) for r, c, v in cells if v < 0]

        def show(items: list[tuple[int, str, float]]) -> list[dict[str, Any]]:
            return self.cap(
                {"row": r + 1, "label": self.row_label(r), "column": c, "value": v}
                for r, c, v in items
            )

        if small:
            self.add(
                "table.small_counts",
                Verdict.FAIL,
                f"{len(small)} frequency cells are below {threshold}",
                cells=show(small),
                threshold=threshold,
                crosstab=self.crosstab,
            )
        if zeros:
            self.add(
                "table.zero_counts",
                self.policy.zero_cell_verdict,
                f"{len(zeros)} frequency cells are zero (everyone in a group shares a value)",
                cells=show(zeros),
            )
        if negative:
            self.add(
                "table.negative_counts",
                Verdict.REVIEW,
                f"{len(negative)} count cells are negative",
                cells=show(negative),
            )

    def measures(self, source: SourceIndex) -> list[tuple[str, str, bool]]:
        """(output column, source measure, dominance applies) for aggregate columns."""
        found = []
        numeric = source.numeric_columns()
        for c in self.numeric_cols:
            if c in self.count_cols:
                continue
            for m in sorted(numeric, key=len, reverse=True):
                if c == m or c.startswith(m + "_") or c.endswith("_" + m) or f"_{m}_" in c:
                    rest = c.replace(m, "").strip("_")
                    found.append((c, m, rest == "" or _has_word(rest, _DOMINANCE_WORDS)))
                    break
        return found

    def dominance_labels(self) -> list[str]:
        """The columns that label the cells of the table."""
        if self.key_cols:
            return [c for c in self.key_cols if c != self.stat_label_col]
        labels = [c for c in self.text_cols if c != self.stat_label_col]
        labels += [
            c
            for c in self.numeric_cols
            if c not in self.agg_cols and c not in self.count_cols and c not in self.stat_cols
        ]
        return labels

    def resolve_source_cells(self) -> None:
        """Find the source grouping behind the table's cells, by name or by value, and
        which value columns are record counts, sums or means of a source measure
        (whatever the columns are called): the cells' true counts then come from the
        index."""
        self.cell_matches = []
        labels = self.dominance_labels()
        for source in self.context.sources:
            named = self.measures(source)
            cell_labels = [c for c in labels if c not in {m[0] for m in named}]
            found = source.find_grouping(self.frame, cell_labels)
            if found is None:
                continue
            group, out_cols = found
            specs = source.group_specs(group)
            keys = combine_keys(
                [spec.keys(self.frame[c])[0] for spec, c in zip(specs, out_cols, strict=True)]
            )
            match = _CellMatch(source, group, out_cols, keys)
            values = [
                c
                for c in self.numeric_cols
                if c not in out_cols and c not in self.stat_cols and not _DOF.match(c)
            ]
            numbers = {c: _numbers(self.frame[c]) for c in values}
            integers = {c for c in values if _integer_like(self.frame[c])}
            for t in source.tables_with(group):
                counts = source.cell_stats(group, None, keys, table=t)["count"].to_numpy(
                    dtype="float64"
                )
                for c in values:
                    if c not in match.values and c in integers and _matches(numbers[c], counts):
                        match.values[c] = ("count", "", t)
                for m in source.measures_of(group, table=t):
                    if all(c in match.values for c in values):
                        break
                    stats = source.cell_stats(group, m, keys, table=t)
                    sums = stats["sum"].to_numpy(dtype="float64")
                    with np.errstate(invalid="ignore", divide="ignore"):
                        means = sums / stats["count"].to_numpy(dtype="float64")
                    for c in values:
                        if c in match.values:
                            continue
                        if _matches(numbers[c], sums):
                            match.values[c] = ("sum", m, t)
                        elif _matches(numbers[c], means):
                            match.values[c] = ("mean", m, t)
            for c, (kind, _m, _t) in match.values.items():
                if kind == "count" and c not in self.count_cols:
                    self.count_cols.append(c)
                elif kind != "count" and c in self.count_cols:
                    self.count_cols.remove(c)
            self.cell_matches.append(match)

    def check_contributor_header(self) -> None:
        """A wide table with one column per contributor (``pivot_table(columns=
        "supplier")``): each magnitude cell under such a header is one contributor's
        total."""
        magnitudes = [
            (o, c)
            for o, c in zip(self.original, self.frame.columns, strict=True)
            if c in self.numeric_cols
            and c not in self.count_cols
            and c not in self.key_cols
            and c not in self.stat_cols
        ]
        if not magnitudes:
            return
        names = np.asarray([str(o).strip().lower() for o, _c in magnitudes], dtype=object)
        for source in self.context.sources:
            hits = source.contributor_hits(names)
            if not hits.any():
                continue
            columns = [magnitudes[i][0] for i in np.flatnonzero(hits)]
            self.add(
                "table.dominance_nk",
                Verdict.FAIL,
                f"the columns {', '.join(columns)} are contributors of dataset "
                f"{source.name!r}: each of their cells is a single contributor's total, "
                f"above the (n, k) rule's {self._nk_text()}",
                columns=self.cap(columns),
                threshold=self._nk_threshold(),
                basis="contributor in the header",
                dataset=source.name,
            )

    def check_dominance(self) -> None:
        """Source-cell counts, p% and (n, k) rules on aggregates of source measures.

        With declared contributors (suppliers, customers, plants) the dominance rules
        are computed on each contributor's total in the cell, across its records; a
        cell that is one contributor's total fails outright.
        """
        self.check_contributor_header()
        for match in self.cell_matches:
            source, group = match.source, match.group
            measures: dict[str, tuple[str, bool, int | None]] = {
                c: (m, dom, None) for c, m, dom in self.measures(source)
            }
            for c, (kind, m, table_no) in match.values.items():
                if kind != "count":
                    measures[c] = (m, True, table_no)
            contributor_labels = [g for g in group if source.role(g) == "contributor"]
            for col, (measure, dominance, t) in measures.items():
                if col in match.out_cols or col in self.count_cols:
                    continue
                stats = source.cell_stats(group, measure, match.keys, table=t)
                count = stats["count"].to_numpy(dtype="float64")
                known = np.isfinite(count)
                small = known & (count < self.policy.min_cell_count)
                self._cells_finding(
                    small,
                    "table.small_source_cells",
                    Verdict.FAIL,
                    f"{{n}} cells of {col!r} summarise fewer than "
                    f"{self.policy.min_cell_count} source records",
                    col,
                    count,
                    threshold=self.policy.min_cell_count,
                    group=list(group),
                    measure=measure,
                )
                if not dominance:
                    continue
                if contributor_labels:
                    self._cells_finding(
                        known & ~small,
                        "table.dominance_nk",
                        Verdict.FAIL,
                        f"{{n}} cells of {col!r} are each the total of a single contributor "
                        f"({', '.join(contributor_labels)}): one contributor holds 100% of "
                        f"the cell, above the (n, k) rule's {self._nk_text()}",
                        col,
                        count,
                        threshold=self._nk_threshold(),
                        group=list(group),
                        contributor=contributor_labels,
                    )
                    continue
                self._dominance(col, stats, count, small, group, basis="records")
                for contributor in sorted(source.contributors - set(group)):
                    cstats = source.cell_stats(
                        group, measure, match.keys, contributor=contributor, table=t
                    )
                    if not np.isfinite(cstats["count"].to_numpy(dtype="float64")).any():
                        continue
                    self._dominance(col, cstats, count, small, group, basis=contributor)
                self._cells_finding(
                    known & (stats["min"].to_numpy(dtype="float64") < 0),
                    "table.negative_values",
                    self.policy.negative_value_verdict,
                    f"{{n}} cells of {col!r} include negative contributions (dominance "
                    "rules are unreliable)",
                    col,
                    count,
                    group=list(group),
                )

    def _nk_rules(self) -> list[tuple[int, float]]:
        # The single rule always applies; nk_rules add to it (ABS-style (1, 50%), (2, 67%)).
        rules = [(self.policy.nk_n, self.policy.nk_k)]
        rules += [(int(n), float(k)) for n, k in self.policy.nk_rules if (n, k) not in rules]
        return rules

    def _nk_text(self) -> str:
        return ", ".join(f"(n = {n}, k = {k:.0%})" for n, k in self._nk_rules())

    def _nk_threshold(self) -> list[dict[str, float]]:
        return [{"n": n, "k": k} for n, k in self._nk_rules()]

    def _dominance(
        self,
        col: str,
        stats: pd.DataFrame,
        count: np.ndarray,
        small: np.ndarray,
        group: tuple[str, ...],
        basis: str,
    ) -> None:
        p = self.policy.p_percent
        total = stats["sum"].to_numpy(dtype="float64")
        top1 = stats["top1"].to_numpy(dtype="float64")
        top2 = stats["top2"].to_numpy(dtype="float64")
        known = np.isfinite(total)
        who = "records" if basis == "records" else f"contributors (totals per {basis})"
        failed_rule: dict[int, str] = {}
        with np.errstate(invalid="ignore", divide="ignore"):
            # p% rule: the second largest contributor, subtracting its own value,
            # would estimate the largest within p percent.
            p_fail = known & (total - top1 - top2 < p * top1) & (top1 > 0) & ~small
            nk_fail = np.zeros(len(total), dtype=bool)
            for n, k in self._nk_rules():
                largest = top1 if n == 1 else top1 + top2
                hit = known & (largest > k * total) & (total > 0) & ~small & ~p_fail & ~nk_fail
                for r in np.flatnonzero(hit):
                    failed_rule[int(r)] = f"n = {n}, k = {k:.0%}"
                nk_fail |= hit
        self._cells_finding(
            p_fail,
            "table.dominance_p_percent",
            Verdict.FAIL,
            f"{{n}} cells of {col!r} fail the p% rule (p = {p:.0%}) on {who}: the rest "
            "of the cell, less the second largest contribution, is under p% of the largest",
            col,
            count,
            threshold=p,
            group=list(group),
            basis=basis,
            shares=self._shares(p_fail, top1, top2, total),
        )
        self._cells_finding(
            nk_fail,
            "table.dominance_nk",
            Verdict.FAIL,
            f"{{n}} cells of {col!r} fail the (n, k) rule on {who}: the largest "
            f"contributions exceed k% of the total ({self._nk_text()})",
            col,
            count,
            threshold=self._nk_threshold(),
            group=list(group),
            basis=basis,
            shares=self._shares(nk_fail, top1, top2, total),
            failed={str(r + 1): rule for r, rule in list(failed_rule.items())[:20]},
        )

    def _shares(
        self, mask: np.ndarray, top1: np.ndarray, top2: np.ndarray, total: np.ndarray
    ) -> list[dict[str, float]]:
        return self.cap(
            {
                "row": int(r) + 1,
                "largest_share": round(float(top1[r] / total[r]), 4) if total[r] else 1.0,
                "two_largest_share": (
                    round(float((top1[r] + top2[r]) / total[r]), 4) if total[r] else 1.0
                ),
            }
            for r in np.flatnonzero(mask)
        )

    def _cells_finding(
        self,
        mask: np.ndarray,
        rule: str,
        verdict: Verdict,
        message: str,
        col: str,
        count: np.ndarray,
        **evidence: Any,
    ) -> None:
        rows = np.flatnonzero(mask)
        if len(rows) == 0:
            return
        cells = self.cap(
            {
                "row": int(r) + 1,
                "label": self.row_label(int(r)),
                "column": col,
                "source_records": float(count[r]),
            }
            for r in rows
        )
        self.add(rule, verdict, message.format(n=len(rows)), cells=cells, **evidence)

    def check_statistics(self) -> None:
        """Residual degrees of freedom and extreme values."""
        threshold = self.policy.min_residual_dof
        low: list[dict[str, Any]] = []
        for c in self.numeric_cols:
            if _DOF.match(c):
                vals = pd.to_numeric(self.frame[c], errors="coerce").to_numpy(dtype="float64")
                low += [
                    {"row": int(i) + 1, "column": c, "value": float(vals[i])}
                    for i in np.flatnonzero(vals < threshold)
                ]
        # Model summaries are short; a long table's first column is data, not labels.
        for c in self.text_cols[:1] if len(self.frame) <= 1000 else []:
            labels = self.frame[c].astype("str").map(normalise_name)
            for i in np.flatnonzero(labels.str.match(_DOF.pattern).to_numpy()):
                for n in self.numeric_cols:
                    v = pd.to_numeric(pd.Series([self.frame.at[i, n]]), errors="coerce")[0]
                    if np.isfinite(v) and v < threshold:
                        low.append({"row": int(i) + 1, "column": n, "value": float(v)})
        if low:
            self.add(
                "statistics.residual_dof",
                Verdict.FAIL,
                f"residual degrees of freedom below {threshold}",
                cells=self.cap(low),
                threshold=threshold,
            )
        self.check_extremes()

    def check_extremes(self) -> None:
        """Minimum and maximum values that belong to single records."""
        # (output column, the source column it summarises if known, rows, values)
        groups: list[tuple[str, str | None, np.ndarray, np.ndarray]] = []
        for c in self.numeric_cols:
            if _EXTREME.match(c):
                base = re.sub(r"(^|_)(min|max|minimum|maximum)($|_)", "_", c).strip("_") or None
                vals = pd.to_numeric(self.frame[c], errors="coerce").to_numpy(dtype="float64")
                rows = np.flatnonzero(np.isfinite(vals))
                groups.append((c, base, rows, vals[rows]))
        if self.stat_label_col is not None:
            labels = self.frame[self.stat_label_col].astype("str").str.strip().str.lower()
            rows = np.flatnonzero(labels.isin(["min", "max"]).to_numpy())
            for c in self.numeric_cols:
                vals = pd.to_numeric(self.frame[c], errors="coerce").to_numpy(dtype="float64")
                ok = rows[np.isfinite(vals[rows])]
                groups.append((c, c, ok, vals[ok]))
        groups = [g for g in groups if len(g[2])]
        if not groups:
            return
        verdict = self.policy.extreme_value_verdict
        if not self.context.sources:
            cells = (
                {"row": int(r) + 1, "column": c, "value": float(v)}
                for c, _b, rows, vals in groups
                for r, v in zip(rows, vals, strict=True)
            )
            self.add(
                "statistics.extremes",
                verdict,
                f"{sum(len(g[2]) for g in groups)} minimum or maximum values shown; no source "
                "index to tell whether they are single records' values",
                cells=self.cap(cells),
            )
            return
        flagged: list[dict[str, Any]] = []
        for c, base, rows, vals in groups:
            for source in self.context.sources:
                column = base if base in source.numeric_columns() else None
                hits = source.rare_values(vals, column)
                if not hits:
                    continue
                for i in np.flatnonzero(np.logical_or.reduce(list(hits.values()))):
                    flagged.append(
                        {
                            "row": int(rows[i]) + 1,
                            "column": c,
                            "value": float(vals[i]),
                            "source_columns": [n for n, mask in hits.items() if mask[i]],
                        }
                    )
        if flagged:
            self.add(
                "statistics.extremes",
                verdict,
                f"{len(flagged)} minimum or maximum values equal a value that fewer than 10 "
                "source records hold",
                cells=self.cap(flagged),
            )


def check_frame(frame: pd.DataFrame, context: CheckContext, *, location: str = "") -> list[Finding]:
    """All table findings for one DataFrame (a pass finding when nothing is wrong)."""
    return _Table(frame, context, location).run()


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()


def cell_summary(
    frame: pd.DataFrame, context: CheckContext
) -> tuple[list[str], dict[str, dict[str, float]]] | None:
    """The key columns and count cells of an aggregate table (None for other tables):
    what the request-level differencing compares."""
    summary = table_summary(frame, context)
    if summary is None or not summary.counts:
        return None
    return summary.keys, summary.counts


@dataclass
class TableSummary:
    """An aggregate table's cells, by value column and cell label (its key values,
    normalised, joined with ``|``): counts, and sums of a source measure with the
    largest single record's contribution to each cell (from the index, where the
    table's grouping is one it holds)."""

    keys: list[str]
    counts: dict[str, dict[str, float]]
    sums: dict[str, dict[str, float]] = field(default_factory=dict)
    largest: dict[str, dict[str, float]] = field(default_factory=dict)


def table_summary(frame: pd.DataFrame, context: CheckContext) -> TableSummary | None:
    """The cells of an aggregate table that differencing compares (None for a table
    that is not one): count columns, and value columns that are a source measure's
    sums (by value, or by name when the table covers a subset of the records)."""
    table = _Table(frame, context, "")
    if not table.key_cols:
        return None
    table.resolve_source_cells()
    labels = [
        "|".join(_label(v) for v in row)
        for row in table.frame[table.key_cols].itertuples(index=False, name=None)
    ]

    def cells_of(column: str) -> dict[str, float]:
        values = pd.to_numeric(table.frame[column], errors="coerce").to_numpy(dtype="float64")
        return {k: float(v) for k, v in zip(labels, values, strict=True) if np.isfinite(v)}

    counts = {c: cells_of(c) for c in table.count_cols if c not in table.key_cols}
    sums: dict[str, dict[str, float]] = {}
    largest: dict[str, dict[str, float]] = {}
    for match in table.cell_matches:
        source = match.source
        named = {c: m for c, m, _dominance in table.measures(source)}
        for c in table.numeric_cols:
            if c in counts or c in table.key_cols or c in table.stat_cols or c in sums:
                continue
            kind, measure, t = match.values.get(c, ("", named.get(c, ""), None))
            # A mean is no total; a column named for a measure is its sum unless it
            # says otherwise (mean_kg, avg, median).
            if kind == "mean" or not measure or (kind == "" and not _sum_like(c, measure)):
                continue
            sums[c] = cells_of(c)
            stats = source.cell_stats(match.group, measure, match.keys, table=t)
            top = stats["top1"].to_numpy(dtype="float64")
            largest[c] = {k: float(v) for k, v in zip(labels, top, strict=True) if np.isfinite(v)}
    if not counts and not sums:
        return None
    return TableSummary(list(table.key_cols), counts, sums, largest)


def _sum_like(column: str, measure: str) -> bool:
    rest = column.replace(measure, "").strip("_")
    return not _has_word(rest, ("mean", "avg", "average", "median", "std", "sd", "min", "max"))
