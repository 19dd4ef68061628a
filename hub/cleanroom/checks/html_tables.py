"""Tables from HTML (notebook outputs of DataFrames), parsed without running anything.

Only the structure is read (``html.parser``); scripts and styles are skipped, never run.
"""

from __future__ import annotations

import itertools
from html.parser import HTMLParser

import pandas as pd

_MAX_TABLES = 200
_MAX_CELLS = 2_000_000


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[tuple[list[list[str]], list[list[str]]]] = []
        self.text: list[str] = []
        self._stack: list[tuple[list[list[str]], list[list[str]]]] = []
        # Per open table: cells a rowspan carries down (column -> (text, rows left)).
        self._spans: list[dict[int, tuple[str, int]]] = []
        self._row: list[str] | None = None
        self._span = (1, 1)
        self._cell: list[str] | None = None
        self._in_head = False
        self._skip = 0
        self._cells = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "table" and len(self.tables) + len(self._stack) < _MAX_TABLES:
            self._stack.append(([], []))
            self._spans.append({})
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr" and self._stack:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
            found = dict(attrs)
            self._span = (_span(found.get("rowspan")), _span(found.get("colspan")))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            text = " ".join("".join(self._cell).split())
            spans = self._spans[-1] if self._spans else {}
            rows, cols = self._span
            for _ in range(cols):
                self._carry(spans)
                if rows > 1:
                    spans[len(self._row)] = (text, rows - 1)
                self._row.append(text)
            self._cell = None
            self._cells += 1
        elif tag == "tr" and self._row is not None and self._stack:
            self._carry(self._spans[-1] if self._spans else {})
            head, body = self._stack[-1]
            (head if self._in_head else body).append(self._row)
            self._row = None
        elif tag == "thead":
            self._in_head = False
        elif tag == "table" and self._stack:
            self.tables.append(self._stack.pop())
            self._spans.pop()

    def _carry(self, spans: dict[int, tuple[str, int]]) -> None:
        # A label with rowspan (pandas' MultiIndex rows) stands in every row it spans.
        assert self._row is not None
        while len(self._row) in spans:
            text, left = spans.pop(len(self._row))
            if left > 1:
                spans[len(self._row)] = (text, left - 1)
            self._row.append(text)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._cell is not None and self._cells < _MAX_CELLS:
            self._cell.append(data)
        self.text.append(data)


def _span(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 1000))
    except ValueError:
        return 1


def _to_numeric(column: pd.Series) -> pd.Series:
    # pandas' HTML shows "..." for elided rows; those cells are missing, not text.
    cleaned = column.replace({"...": None, "…": None, "": None, "NaN": None})
    converted = pd.to_numeric(cleaned.str.replace(",", "", regex=False), errors="coerce")
    if converted.notna().sum() == cleaned.notna().sum() and cleaned.notna().any():
        return converted
    return column


def parse_html(html: str) -> tuple[list[pd.DataFrame], str]:
    """The tables in ``html`` as DataFrames of text (numbers converted), and its text."""
    parser = _TableParser()
    parser.feed(html)
    parser.close()
    frames = []
    for head, body in parser.tables:
        rows = [r for r in body if r]
        if not rows and not head:
            continue
        header = head[0] if head else (rows.pop(0) if rows else [])
        # pandas writes the index names in a second header row: ["shift", "fault", "",
        # ...]: leading names, then blanks.
        if len(head) > 1 and head[1] and head[1][0]:
            names = len(head[1]) - len(list(itertools.dropwhile(bool, head[1])))
            if not any(head[1][names:]):
                header = [*head[1][:names], *header[names:]]
        width = max([len(header), *(len(r) for r in rows)], default=0)
        header = [h or f"column_{i}" for i, h in enumerate(header + [""] * (width - len(header)))]
        data = [r + [""] * (width - len(r)) for r in rows]
        frame = pd.DataFrame(data, columns=range(width), dtype="str")
        frame.columns = header
        frame = frame.loc[:, ~pd.Index(header).duplicated()]
        for c in frame.columns:
            frame[c] = _to_numeric(frame[c])
        frames.append(frame)
    return frames, " ".join(parser.text)
