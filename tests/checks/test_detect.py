"""Type detection by content, whatever the name says."""

from __future__ import annotations

import gzip
import io
import pickle
import zlib

import pandas as pd
import pytest
from cleanroom.checks import CheckContext, check_bytes
from cleanroom.checks.detect import detect

from tests.checks import builders


def _parquet() -> bytes:
    buf = io.BytesIO()
    pd.DataFrame({"a": [1]}).to_parquet(buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", "empty"),
        (b"a,b\n1,2\n3,4\n", "csv"),
        (b"a\tb\n1\t2\n3\t4\n", "tsv"),
        (b"a;b\n1;2\n3;4\n", "csv;"),
        (b"just a sentence.\n", "text"),
        (b'{"x": 1}', "json"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "svg"),
        (b"%PDF-1.7\n", "pdf"),
        (b"<html><body><table></table></body></html>", "html"),
        (builders.png(), "png"),
        (builders.jpeg(), "jpeg"),
        (pickle.dumps({"a": 1}), "pickle"),
        (pickle.dumps({"a": 1}, protocol=0), "pickle"),
        (builders.zip_of({"a.txt": b"x"}), "zip"),
        (builders.tar_of({"a.txt": b"x"}), "tar"),
        (gzip.compress(b"x"), "gzip"),
        (zlib.compress(b"x"), "zlib"),
        (builders.safetensors({"w": [2, 2]}), "safetensors"),
        (builders.onnx({"w": [2, 2]}), "onnx"),
        (builders.notebook([{"source": "1"}]), "notebook"),
        (bytes(range(256)), "binary"),
    ],
)
def test_detect(data: bytes, kind: str) -> None:
    assert detect(data) == kind


def test_excel_and_parquet_by_content() -> None:
    buf = io.BytesIO()
    pd.DataFrame({"a": [1]}).to_excel(buf)
    assert detect(buf.getvalue()) == "excel"
    assert detect(_parquet()) == "parquet"


def test_name_is_ignored(bare_context: CheckContext) -> None:
    report = check_bytes(pickle.dumps(print), "table.csv", bare_context)
    assert report.detected_type == "pickle"
    assert report.verdict.value == "fail"
