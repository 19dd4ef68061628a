"""Types come from the bytes, not the name."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from cleanroom.airlock.content import detect_type


def _parquet() -> bytes:
    buf = io.BytesIO()
    pd.DataFrame({"a": [1, 2]}).to_parquet(buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "path", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n....", "fig.csv", "image/png"),
        (b"\xff\xd8\xff\xe0....", "a.txt", "image/jpeg"),
        (b"a,b\n1,2\n3,4\n", "t.csv", "text/csv"),
        (b"a\tb\n1\t2\n", "t.tsv", "text/tab-separated-values"),
        (b"hello world", "notes.txt", "text/plain"),
        (json.dumps({"cells": [], "nbformat": 4}).encode(), "x.csv", "application/x-ipynb+json"),
        (b'{"a": 1}', "a.txt", "application/json"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "x.png", "image/svg+xml"),
        (b"\x00\x01\x02", "x.csv", "application/octet-stream"),
    ],
)
def test_detect_type(data: bytes, path: str, expected: str) -> None:
    assert detect_type(data, path) == expected


def test_parquet_is_recognised() -> None:
    assert detect_type(_parquet(), "renamed.csv") == "application/vnd.apache.parquet"


def test_table_page_sorts_and_pages() -> None:
    from cleanroom.airlock.render import table_page

    data = b"name,n\n" + b"".join(f"r{i},{i % 7}\n".encode() for i in range(20))
    page = table_page(data, "text/csv", page=2, sort="n", descending=True, page_size=8)
    assert (page.total_rows, page.pages, page.page) == (20, 3, 2)
    assert [int(r[1]) for r in page.rows] == sorted((int(r[1]) for r in page.rows), reverse=True)
    last = table_page(data, "text/csv", page=99, sort="nope", page_size=8)
    assert (last.page, last.sort, len(last.rows)) == (3, None, 4)


def test_parquet_table_page() -> None:
    from cleanroom.airlock.render import table_page

    page = table_page(_parquet(), "application/vnd.apache.parquet")
    assert page.columns == ["a"] and page.rows == [["1"], ["2"]]
