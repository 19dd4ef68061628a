"""Turning submitted bytes into something an officer can look at, safely.

Everything here treats a file as hostile. Tables and text are escaped by the templates;
notebooks are converted to static HTML by nbconvert (nothing is executed) and then
sanitised with nh3, which drops scripts, event handlers and ``javascript:`` links. The
pages that show the result also carry a strict Content-Security-Policy (see ``web``),
so even a sanitiser miss would not run.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import nh3

TABLE_TYPES = {
    "text/csv": ",",
    "text/tab-separated-values": "\t",
    "application/vnd.apache.parquet": None,
}
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
NOTEBOOK_TYPE = "application/x-ipynb+json"
TEXT_TYPES = {"text/plain", "application/json", "image/svg+xml"}
MAX_TEXT_CHARS = 1_000_000
PAGE_SIZE = 50


def kind_of(content_type: str) -> str:
    """How a file is previewed: table, image, notebook, text or none."""
    if content_type in TABLE_TYPES:
        return "table"
    if content_type in IMAGE_TYPES:
        return "image"
    if content_type == NOTEBOOK_TYPE:
        return "notebook"
    if content_type in TEXT_TYPES:
        return "text"
    return "none"


@dataclass
class TablePage:
    """One page of a table, sorted as asked."""

    columns: list[str]
    rows: list[list[str]]
    total_rows: int
    page: int
    pages: int
    sort: str | None
    descending: bool


def table_page(
    data: bytes,
    content_type: str,
    page: int = 1,
    sort: str | None = None,
    descending: bool = False,
    page_size: int = PAGE_SIZE,
) -> TablePage:
    """Read a CSV, TSV or Parquet file and return the requested page of it."""
    import pandas as pd

    if content_type == "application/vnd.apache.parquet":
        frame = pd.read_parquet(io.BytesIO(data))
    else:
        frame = pd.read_csv(io.BytesIO(data), sep=TABLE_TYPES[content_type], keep_default_na=False)
    frame.columns = [str(c) for c in frame.columns]
    if sort in frame.columns:
        frame = frame.sort_values(sort, ascending=not descending, kind="stable")
    else:
        sort = None
    total = len(frame)
    pages = max(1, math.ceil(total / page_size))
    page = min(max(1, page), pages)
    chunk = frame.iloc[(page - 1) * page_size : page * page_size]
    rows = [["" if v is None else str(v) for v in row] for row in chunk.itertuples(index=False)]
    return TablePage(list(frame.columns), rows, total, page, pages, sort, descending)


def text_preview(data: bytes, content_type: str) -> str:
    """The file as text (JSON pretty-printed), cut at ``MAX_TEXT_CHARS``."""
    text = data.decode("utf-8", errors="replace")
    if content_type == "application/json":
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS] + f"\n... cut: {len(text) - MAX_TEXT_CHARS} more characters"
    return text


_TAGS = set(nh3.ALLOWED_TAGS) | {
    "div",
    "span",
    "pre",
    "code",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "th",
    "td",
    "img",
    "figure",
    "figcaption",
    "details",
    "summary",
}
_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"class", "title"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align"},
}


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    # Inline images only from data: URLs; links never to data: (a navigable document).
    if attr in {"src", "href"}:
        lowered = value.strip().lower()
        if tag == "img" and attr == "src":
            return value if lowered.startswith("data:image/") else None
        if lowered.startswith("data:"):
            return None
    return value


def sanitise(html: str) -> str:
    """Strip everything that could run or load: scripts, handlers, frames, styles, forms."""
    return nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style", "iframe", "object", "embed", "template"},
        attributes=_ATTRIBUTES,
        attribute_filter=_attribute_filter,
        url_schemes={"http", "https", "data", "mailto"},
        url_relative="deny",
        link_rel="noopener noreferrer nofollow",
    )


_NOTEBOOK_CACHE: OrderedDict[str, str] = OrderedDict()
_NOTEBOOK_CACHE_SIZE = 32
_cache_lock = threading.Lock()


def notebook_html_cached(sha256: str, data: bytes) -> str:
    """``notebook_html``, remembered by content hash (the bytes behind a hash never change)."""
    with _cache_lock:
        if sha256 in _NOTEBOOK_CACHE:
            _NOTEBOOK_CACHE.move_to_end(sha256)
            return _NOTEBOOK_CACHE[sha256]
    html = notebook_html(data)
    with _cache_lock:
        _NOTEBOOK_CACHE[sha256] = html
        while len(_NOTEBOOK_CACHE) > _NOTEBOOK_CACHE_SIZE:
            _NOTEBOOK_CACHE.popitem(last=False)
    return html


def notebook_html(data: bytes) -> str:
    """A notebook as static, sanitised HTML; never executed.

    nbconvert's ``basic`` template gives the cells without page chrome; its output
    (which includes the notebook's own HTML outputs verbatim) then goes through
    ``sanitise``.
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    exporter = HTMLExporter(template_name="basic")
    body, _resources = exporter.from_notebook_node(nb)
    return sanitise(body)


@dataclass
class FindingRow:
    """One check finding, flattened for display."""

    rule: str
    verdict: str
    location: str
    message: str
    evidence: str


def finding_rows(checks: dict[str, Any]) -> list[FindingRow]:
    """The findings of a stored check report, whatever shape each one has."""
    rows = []
    for f in checks.get("findings") or []:
        if not isinstance(f, dict):
            rows.append(FindingRow("", "", "", str(f), ""))
            continue
        evidence = f.get("evidence")
        rows.append(
            FindingRow(
                rule=str(f.get("rule", "")),
                verdict=str(f.get("verdict", "")),
                location=str(f.get("location", "")),
                message=str(f.get("message", "")),
                evidence=json.dumps(evidence, ensure_ascii=False)[:2000] if evidence else "",
            )
        )
    return rows


def warm_up() -> None:
    """Load nbconvert and its templates now, so an officer's first notebook is quick."""
    import nbformat

    notebook_html(nbformat.writes(nbformat.v4.new_notebook()).encode())


def check_summary(checks: dict[str, Any]) -> str:
    """A one-word summary of a file's check result for the queue."""
    if checks.get("unavailable"):
        return "unavailable"
    return str(checks.get("verdict", "none"))
