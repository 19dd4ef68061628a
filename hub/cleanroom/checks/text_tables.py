"""Tables printed as text: ``print(df.head())``, ``value_counts()``, ``to_markdown()``,
``to_latex()``.

A frame printed to a notebook's output or saved with ``to_string`` is as disclosive as
the same frame saved as CSV, so blocks of text that line up in columns are parsed back
into tables and go through the table checks.
"""

from __future__ import annotations

import io
import itertools
import re
import warnings

import pandas as pd

from cleanroom.checks.tables import check_frame
from cleanroom.checks.types import CheckContext, Finding, Verdict

# pandas' footers: "Name: count, dtype: int64", "dtype: float64", "[5 rows x 6 columns]".
_FOOTER = re.compile(r"^\s*(Name: .*dtype: \S+|dtype: \S+|\[\d+ rows x \d+ columns\])\s*$")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(\.\d+)?(e[+-]?\d+)?(?![\w.])")
_MAX_TEXT = 5_000_000
_MAX_BLOCK_LINES = 200_000


def tables_in_text(text: str) -> list[pd.DataFrame]:
    """Blocks of ``text`` that parse as fixed-width tables with numbers in them."""
    if len(text) > _MAX_TEXT:
        text = text[:_MAX_TEXT]
    frames = []
    for found in _LATEX_TABLE.finditer(text):
        latex = _latex_table(found.group(1))
        if latex is not None:
            frames.append(latex)
    # What a LaTeX table held is read above; its lines are no fixed-width table.
    text = _LATEX_TABLE.sub("\n\n", text)
    for block in re.split(r"\n\s*\n", text):
        lines = [ln.rstrip() for ln in block.splitlines() if ln.strip() and not _FOOTER.match(ln)]
        if len(lines) < 2 or len(lines) > _MAX_BLOCK_LINES:
            continue
        if sum(ln.lstrip().startswith("|") for ln in lines) >= 0.8 * len(lines):
            markdown = _markdown_table(lines)
            if markdown is not None:
                frames.append(markdown)
            continue
        body = lines[1:]
        columnar = sum(len(ln.split()) >= 2 for ln in body)
        numeric = sum(bool(_NUMBER.search(ln)) for ln in body)
        if columnar < 0.8 * len(body) or numeric < 0.8 * len(body):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                frame = pd.read_fwf(io.StringIO("\n".join(lines)), infer_nrows=500)
        except Exception:  # read_fwf raises many kinds on text that is not a table
            continue
        frame = _join_datetimes(_fill_index_labels(frame.dropna(axis=1, how="all")))
        if frame.shape[1] >= 2 and len(frame):
            frames.append(frame)
    return frames


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")


def _join_datetimes(frame: pd.DataFrame) -> pd.DataFrame:
    """A printed timestamp ("2025-03-03 08:47:54") splits into a date and a time
    column at the space; join them back, under the header the pair had."""
    columns = list(frame.columns)
    for left, right in itertools.pairwise(columns):
        if left not in frame or right not in frame:
            continue
        a, b = frame[left].astype("str"), frame[right].astype("str")
        if a.str.match(_DATE.pattern).all() and b.str.match(_TIME.pattern).all():
            name = right if str(left).startswith("Unnamed") else left
            joined = a + " " + b
            frame = frame.drop(columns=[left, right]).assign(**{str(name): joined})
            frame = frame[[c for c in columns if c in frame.columns or c == name]]
    return frame


def _fill_index_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """A printed MultiIndex leaves a label blank where it repeats the one above: fill
    the leading label columns down, so that each row carries its whole key."""
    for column in list(frame.columns)[:-1]:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series.dtype):
            break
        if series.isna().any() and series.notna().iloc[:1].all():
            frame[column] = series.ffill()
    return frame


# A tabular environment (tabular, tabular*, tabularx, longtable), its body in group 1.
_LATEX_TABLE = re.compile(
    r"\\begin\{(?:tabular\*?|tabularx|longtable)\}(?:\{[^{}\n]{0,200}\}|\[[^\]\n]{0,50}\]){0,3}"
    r"(.{0,2000000}?)\\end\{(?:tabular\*?|tabularx|longtable)\}",
    re.DOTALL,
)
_LATEX_RULE = re.compile(
    r"\\(?:toprule|midrule|bottomrule|hline|endhead|endfirsthead|endfoot|endlastfoot)\b"
    r"|\\cline\{[^}]{0,20}\}|\\cmidrule(?:\([^)]{0,10}\))?\{[^}]{0,20}\}"
)
_LATEX_COMMAND = re.compile(r"\\(?:multicolumn|multirow)\{[^}]{0,20}\}\{[^}]{0,40}\}")
_LATEX_ESCAPE = re.compile(r"\\([_%&$#{}])")


def _latex_cell(cell: str) -> str:
    cell = _LATEX_COMMAND.sub("", cell)
    cell = re.sub(r"\\text\w{0,6}\{([^{}]{0,500})\}", r"\1", cell)
    cell = _LATEX_ESCAPE.sub(r"\1", cell).replace("{", "").replace("}", "")
    return cell.replace("\\textasciitilde", "~").strip()


def _latex_table(body: str) -> pd.DataFrame | None:
    """A LaTeX tabular (``df.to_latex()``) as a frame: rows end at ``\\``, cells
    split at unescaped ``&``; rules dropped; the row of the index's name (pandas
    writes it under the header) merged into the header; numbers converted."""
    body = _LATEX_RULE.sub("\n", body)
    rows = []
    for line in re.split(r"\\\\(?:\[[^\]]{0,20}\])?", body):
        if not line.strip():
            continue
        rows.append([_latex_cell(c) for c in re.split(r"(?<!\\)&", line)])
    if len(rows) < 2:
        return None
    width = max(len(r) for r in rows)
    header = rows[0] + [""] * (width - len(rows[0]))
    data = [r + [""] * (width - len(r)) for r in rows[1:] if len(r) >= 2]
    if data and data[0][0] and not any(data[0][1:]):
        header[0] = data[0][0]
        data = data[1:]
    if not data:
        return None
    columns = [h or f"column_{i}" for i, h in enumerate(header)]
    frame = pd.DataFrame(data, columns=columns).loc[:, lambda f: ~f.columns.duplicated()]
    for column in frame.columns:
        converted = pd.to_numeric(frame[column].str.replace(",", ""), errors="coerce")
        if converted.notna().all():
            frame[column] = converted
    return frame if frame.shape[1] >= 2 else None


def _markdown_table(lines: list[str]) -> pd.DataFrame | None:
    """A pipe table (``df.to_markdown()``) as a frame, numbers converted."""
    rows = [
        [cell.strip() for cell in ln.strip().strip("|").split("|")]
        for ln in lines
        if not re.fullmatch(r"[\s|:+-]*", ln)  # the |---|:--:| rule under the header
    ]
    if len(rows) < 2:
        return None
    width = len(rows[0])
    body = [r for r in rows[1:] if len(r) == width]
    header = [h or f"column_{i}" for i, h in enumerate(rows[0])]
    frame = pd.DataFrame(body, columns=header).loc[:, lambda f: ~f.columns.duplicated()]
    for column in frame.columns:
        converted = pd.to_numeric(frame[column].str.replace(",", ""), errors="coerce")
        if converted.notna().all():
            frame[column] = converted
    return frame if frame.shape[1] >= 2 else None


def text_table_findings(
    text: str, context: CheckContext, *, location: str = ""
) -> tuple[int, list[Finding]]:
    """How many tables ``text`` prints, and their findings (review and fail only)."""
    findings: list[Finding] = []
    frames = tables_in_text(text)
    for k, frame in enumerate(frames, start=1):
        where = f"{location} / text table {k}" if location else f"text table {k}"
        findings += [
            f for f in check_frame(frame, context, location=where) if f.verdict > Verdict.PASS
        ]
    return len(frames), findings


def check_text_tables(text: str, context: CheckContext, *, location: str = "") -> list[Finding]:
    """Table findings (review and fail only) for the tables printed in ``text``."""
    return text_table_findings(text, context, location=location)[1]
