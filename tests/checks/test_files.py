"""Images, pickles, models, archives and notebooks, including hostile ones."""

from __future__ import annotations

import bz2
import gzip
import lzma
import pickle
import pickletools
import zipfile

import pandas as pd
import pytest
from cleanroom.checks import CheckContext, DisclosurePolicy, Verdict, check_bytes
from cleanroom.checks.pickles import pickle_globals

from tests.checks import builders


def rules(report) -> dict[str, Verdict]:
    out: dict[str, Verdict] = {}
    for f in report.findings:
        out[f.rule] = max(out.get(f.rule, Verdict.PASS), f.verdict)
    return out


# -- images ------------------------------------------------------------------------


def test_png_pass_and_dimensions(bare_context: CheckContext) -> None:
    report = check_bytes(builders.png(7, 5), "p.png", bare_context)
    assert report.verdict is Verdict.PASS
    assert report.findings[0].evidence["width"] == 7


@pytest.mark.parametrize("kind", [b"tEXt", b"zTXt", b"iTXt", b"eXIf"])
def test_png_metadata_fails(kind: bytes, bare_context: CheckContext) -> None:
    report = check_bytes(builders.png(chunks=[(kind, b"k\x00v")]), "p.png", bare_context)
    assert rules(report)["image.metadata"] is Verdict.FAIL


def test_png_trailing_and_truncated(bare_context: CheckContext) -> None:
    trailing = check_bytes(builders.png(trailing=b"secret"), "p.png", bare_context)
    assert trailing.findings[0].evidence["bytes"] == 6
    for cut in (20, 40, len(builders.png()) - 3):
        report = check_bytes(builders.png()[:cut], "p.png", bare_context)
        assert rules(report)["image.malformed"] is Verdict.FAIL


def test_png_bad_crc(bare_context: CheckContext) -> None:
    data = bytearray(builders.png())
    data[30] ^= 0xFF
    assert rules(check_bytes(bytes(data), "p.png", bare_context))["image.malformed"] is Verdict.FAIL


def test_jpeg_variants(bare_context: CheckContext) -> None:
    assert check_bytes(builders.jpeg(), "j.jpg", bare_context).verdict is Verdict.PASS
    assert (
        rules(check_bytes(builders.jpeg(exif=True), "j.jpg", bare_context))["image.metadata"]
        is Verdict.FAIL
    )
    assert (
        rules(check_bytes(builders.jpeg(trailing=b"PK.."), "j.jpg", bare_context))[
            "image.trailing_bytes"
        ]
        is Verdict.FAIL
    )
    truncated = builders.jpeg()[:-2]
    assert rules(check_bytes(truncated, "j.jpg", bare_context))["image.malformed"] is Verdict.FAIL


def test_svg_read_and_pdf_reviewed(bare_context: CheckContext) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><text>ok</text></svg>'
    assert check_bytes(svg, "f.svg", bare_context).verdict is Verdict.PASS
    handler = b'<svg xmlns="http://www.w3.org/2000/svg" onload="fetch(1)"></svg>'
    assert rules(check_bytes(handler, "f.svg", bare_context))["image.active_content"] is (
        Verdict.FAIL
    )
    linked = b'<svg xmlns="http://www.w3.org/2000/svg"><image href="https://x.example/a"/></svg>'
    assert rules(check_bytes(linked, "f.svg", bare_context))["image.external_content"] is (
        Verdict.REVIEW
    )
    svg_mail = b'<svg xmlns="http://www.w3.org/2000/svg"><text>a@b.example.com</text></svg>'
    assert check_bytes(svg_mail, "f.svg", bare_context).verdict is Verdict.FAIL
    assert check_bytes(b"%PDF-1.4\n%%EOF", "f.pdf", bare_context).verdict is Verdict.REVIEW
    script = b"%PDF-1.4\n1 0 obj<</Type /Page /AA <</O <</JS (app.alert(1))>>>>>>endobj\n%%EOF\n"
    assert rules(check_bytes(script, "f.pdf", bare_context))["image.active_content"] is (
        Verdict.FAIL
    )


def test_pdf_figures_are_read(bare_context: CheckContext) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.bar(["a", "b"], [3, 4])
    buf = io.BytesIO()
    fig.savefig(buf, format="pdf")
    plt.close(fig)
    pdf = buf.getvalue()
    assert check_bytes(pdf, "f.pdf", bare_context).verdict is Verdict.PASS
    appended = pdf + builders.zip_of({"rows.csv": b"a,b\n1,2\n"})
    assert rules(check_bytes(appended, "f.pdf", bare_context))["image.trailing_bytes"] is (
        Verdict.FAIL
    )


# -- pickles -----------------------------------------------------------------------


class Local:
    """A class outside the allowlist."""


def test_pickle_globals_listed_without_unpickling() -> None:
    found, _payload, error = pickle_globals(pickle.dumps(Local()))
    assert error is None
    assert found == ["tests.checks.test_files.Local"]


def test_hostile_pickles_fail(bare_context: CheckContext) -> None:
    reduce_os = b"cos\nsystem\n(S'touch /tmp/pwned'\ntR."
    report = check_bytes(reduce_os, "m.pkl", bare_context)
    assert report.verdict is Verdict.FAIL
    assert "os.system" in report.findings[0].evidence["denied"]
    # STACK_GLOBAL fed from the memo.
    data = pickle.dumps(pd.DataFrame.from_dict, protocol=4)
    assert "pandas" in str(check_bytes(data, "m.pkl", bare_context).to_dict())
    # Truncated and garbage streams.
    truncated = pickle.dumps(list(range(1000)))[:-50]
    assert rules(check_bytes(truncated, "m.pkl", bare_context))["pickle.malformed"] is Verdict.FAIL
    assert check_bytes(b"\x80\x04\xff\xff\xff", "m.pkl", bare_context).verdict is Verdict.FAIL


def test_unresolvable_stack_global_fails(bare_context: CheckContext) -> None:
    # module name pushed, then an int: STACK_GLOBAL's arguments cannot be followed.
    data = b"\x80\x04\x8c\x02os\x94K\x01\x93."
    list(pickletools.genops(data))  # well formed
    report = check_bytes(data, "m.pkl", bare_context)
    assert "<unknown>" in report.findings[0].evidence["denied"]


def test_models_that_keep_rows(source_frame: pd.DataFrame, bare_context: CheckContext) -> None:
    from sklearn.linear_model import LinearRegression
    from sklearn.neighbors import KNeighborsRegressor

    X = source_frame[["temperature_c", "vibration_rms"]].to_numpy()[:500]
    y = source_frame["force_kn"].to_numpy()[:500]
    knn = check_bytes(pickle.dumps(KNeighborsRegressor().fit(X, y)), "k.pkl", bare_context)
    assert rules(knn)["model.training_rows"] is Verdict.FAIL
    lin = check_bytes(pickle.dumps(LinearRegression().fit(X, y)), "l.pkl", bare_context)
    assert lin.verdict is Verdict.PASS


# -- tensors -----------------------------------------------------------------------


def test_tensor_sizes_against_training_rows(
    context: CheckContext, bare_context: CheckContext
) -> None:
    small = builders.safetensors({"w": [4, 4]})
    assert check_bytes(small, "m.safetensors", context).verdict is Verdict.PASS
    assert check_bytes(small, "m.safetensors", bare_context).verdict is Verdict.REVIEW
    big = builders.onnx({"emb": [15_000, 8]})
    report = check_bytes(big, "m.onnx", context)
    assert report.verdict is Verdict.REVIEW
    assert report.findings[-1].evidence["large_tensors"] == {"emb": [15_000, 8]}


def test_tensor_files_malformed(bare_context: CheckContext) -> None:
    bad = builders.safetensors({"w": [100, 100]})[:200]
    assert rules(check_bytes(bad, "m.safetensors", bare_context))["model.malformed"] is Verdict.FAIL
    meta = builders.safetensors({"w": [2]}, metadata={"author": "ops@example.com"})
    assert (
        rules(check_bytes(meta, "m.safetensors", bare_context))["identifiers.personal"]
        is Verdict.FAIL
    )


# -- archives ----------------------------------------------------------------------


def test_archive_members_are_checked(source_frame: pd.DataFrame, context: CheckContext) -> None:
    data = builders.zip_of(
        {"ok.png": builders.png(), "deep/raw.csv": source_frame.head().to_csv().encode()}
    )
    report = check_bytes(data, "out.zip", context)
    assert report.verdict is Verdict.FAIL
    failing = {f.location.split(" / ")[0] for f in report.findings if f.verdict is Verdict.FAIL}
    assert failing == {"deep/raw.csv"}


def test_zip_bomb_refused_without_expanding(bare_context: CheckContext) -> None:
    data = builders.zip_of({"z": b"\x00" * 200_000_000})
    assert len(data) < 500_000
    report = check_bytes(data, "b.zip", bare_context)
    assert rules(report)["archive.expansion"] is Verdict.FAIL


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_stream_bombs(compress, bare_context: CheckContext) -> None:
    report = check_bytes(compress(b"\x00" * 150_000_000), "b.gz", bare_context)
    assert rules(report)["archive.expansion"] is Verdict.FAIL


def test_nesting_member_count_links_and_paths(bare_context: CheckContext) -> None:
    inner = builders.zip_of({"a.txt": b"hello"})
    nested = check_bytes(builders.zip_of({"in.zip": inner}), "n.zip", bare_context)
    assert rules(nested)["archive.nesting"] is Verdict.FAIL
    many = builders.zip_of({f"f{i}.txt": b"x" for i in range(1001)}, compression=zipfile.ZIP_STORED)
    assert rules(check_bytes(many, "m.zip", bare_context))["archive.members"] is Verdict.FAIL
    link = builders.tar_of({"a.txt": b"x"}, symlink="l")
    assert rules(check_bytes(link, "l.tar", bare_context))["archive.special_member"] is Verdict.FAIL
    slip = builders.zip_of({"../../etc/cron.d/x": b"x"})
    assert rules(check_bytes(slip, "s.zip", bare_context))["archive.path"] is Verdict.FAIL


def test_tar_gz_is_one_level(bare_context: CheckContext) -> None:
    tgz = gzip.compress(builders.tar_of({"p.png": builders.png()}))
    report = check_bytes(tgz, "r.tar.gz", bare_context)
    assert report.verdict is Verdict.PASS, [f.to_dict() for f in report.findings]


def test_gzip_quine_like_layers_stop(bare_context: CheckContext) -> None:
    data = b"a,n\nx,20\n"
    for _ in range(8):
        data = gzip.compress(data)
    assert rules(check_bytes(data, "x.gz", bare_context))["archive.nesting"] is Verdict.FAIL


def test_truncated_archives(bare_context: CheckContext) -> None:
    z = builders.zip_of({"a.csv": b"a,b\n1,2\n" * 100})
    assert check_bytes(z[: len(z) // 2], "t.zip", bare_context).verdict is Verdict.FAIL
    g = gzip.compress(b"hello world" * 100)
    assert rules(check_bytes(g[:-12], "t.gz", bare_context))["archive.malformed"] is Verdict.FAIL


# -- notebooks ---------------------------------------------------------------------


def test_notebook_outputs_and_raw_display(
    source_frame: pd.DataFrame, context: CheckContext
) -> None:
    ct = pd.crosstab(source_frame["shift"], source_frame["defect_type"])
    nb = builders.notebook([{"source": "ct", "outputs": [builders.html_output(ct.to_html())]}])
    report = check_bytes(nb, "a.ipynb", context)
    # Its only output is a safe table, checked like a file: the notebook passes.
    assert report.verdict is Verdict.PASS, [f.to_dict() for f in report.findings]
    assert rules(report)["notebook.outputs"] is Verdict.PASS
    assert rules(report)["table.checked"] is Verdict.PASS
    strict = DisclosurePolicy.from_mapping({"notebooks": {"outputs_verdict": "review"}})
    again = check_bytes(nb, "a.ipynb", CheckContext(strict, context.sources))
    assert rules(again)["notebook.outputs"] is Verdict.REVIEW
    # Code that picks rows of what may be record-level data sends the notebook to an
    # officer, with the code shown; the head of a table of aggregates does not.
    summary = builders.notebook(
        [{"source": "ct.head(3)", "outputs": [builders.html_output(ct.to_html())]}]
    )
    assert check_bytes(summary, "s.ipynb", context).verdict is Verdict.PASS
    rows = pd.DataFrame({"x": [0.11, 0.52, 0.93], "y": [1.7, 2.4, 3.1]})
    head = builders.notebook(
        [{"source": "df.head(3)", "outputs": [builders.html_output(rows.to_html())]}]
    )
    shown = next(
        f
        for f in check_bytes(head, "h.ipynb", context).findings
        if f.rule == ("notebook.raw_display")
    )
    assert shown.verdict is Verdict.REVIEW and shown.evidence["cells"][0]["code"] == ["df.head(3)"]


def test_notebook_head_output_fails_with_location(
    source_frame: pd.DataFrame, context: CheckContext
) -> None:
    nb = builders.notebook(
        [
            {"markdown": "intro"},
            {
                "source": "df.sample(3)",
                "outputs": [builders.html_output(source_frame.sample(3, random_state=2).to_html())],
            },
        ]
    )
    report = check_bytes(nb, "a.ipynb", context)
    hit = next(f for f in report.findings if f.rule == "table.source_rows")
    assert hit.location == "cell 2 output 1 table 1"


def test_notebook_without_outputs_passes(bare_context: CheckContext) -> None:
    nb = builders.notebook([{"source": "x = 1"}])
    assert check_bytes(nb, "a.ipynb", bare_context).verdict is Verdict.PASS


def test_notebook_malformed(bare_context: CheckContext) -> None:
    bad = b'{"cells": [{"cell_type": "code"}], "nbformat": 4, "nbformat_minor": 5, "metadata": {}'
    report = check_bytes(bad, "a.ipynb", bare_context)
    assert rules(report)["text.malformed_json"] is Verdict.REVIEW
    broken = b'{"cells": 5, "nbformat": 4, "nbformat_minor": 5, "metadata": {}}'
    assert rules(check_bytes(broken, "a.ipynb", bare_context))["notebook.malformed"] is Verdict.FAIL


def test_notebook_image_output_checked(bare_context: CheckContext) -> None:
    nb = builders.notebook(
        [{"source": "plot()", "outputs": [builders.image_output(builders.png(trailing=b"x"))]}]
    )
    report = check_bytes(nb, "a.ipynb", bare_context)
    hit = next(f for f in report.findings if f.rule == "image.trailing_bytes")
    assert hit.location.startswith("cell 1 output 1")


# -- everything else ---------------------------------------------------------------


def test_unknown_is_reviewed_and_clean_text_passes_with_a_reason(
    bare_context: CheckContext,
) -> None:
    assert check_bytes(bytes(range(256)), "x.bin", bare_context).verdict is Verdict.REVIEW
    note = check_bytes(b"a plain note\n", "x.txt", bare_context)
    assert rules(note)["text.checked"] is Verdict.PASS
    assert note.verdict is Verdict.PASS
    # A report that states a small count does not pass.
    small = check_bytes(b"Only 3 operators worked the night shift.\n", "r.txt", bare_context)
    assert rules(small)["text.small_counts"] is Verdict.FAIL
    assert check_bytes(b"GIF89a" + b"\x00" * 20, "x.gif", bare_context).verdict is Verdict.REVIEW


def test_pathological_text_is_linear(bare_context: CheckContext) -> None:
    import time

    data = b"a" * 5_000_000 + b"@" + b"b" * 5_000_000
    start = time.monotonic()
    report = check_bytes(data, "x.txt", bare_context)
    assert report.verdict is Verdict.REVIEW
    assert time.monotonic() - start < 30


def test_excel_comments_and_hidden_sheets(bare_context: CheckContext) -> None:
    import io

    from openpyxl import Workbook
    from openpyxl.comments import Comment

    wb = Workbook()
    ws = wb.active
    ws.append(["grade", "n"])
    ws.append(["a", 40])
    ws["B2"].comment = Comment("ask jo.bloggs@example.com", "analyst")
    hidden = wb.create_sheet("scratch")
    hidden.append(["grade", "n"])
    hidden.append(["b", 50])
    hidden.sheet_state = "hidden"
    buf = io.BytesIO()
    wb.save(buf)
    report = check_bytes(buf.getvalue(), "book.xlsx", bare_context)
    found = rules(report)
    assert found["identifiers.personal"] is Verdict.FAIL
    assert found["table.hidden_sheets"] is Verdict.REVIEW
    assert {f.location for f in report.findings if f.rule == "table.checked"} == {
        "sheet Sheet",
        "sheet scratch",
    }


def test_parquet_custom_metadata(bare_context: CheckContext) -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"grade": ["a"], "n": [40]}).replace_schema_metadata(
        {"note": "from +44 20 7946 0958"}
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    report = check_bytes(buf.getvalue(), "t.parquet", bare_context)
    hit = next(f for f in report.findings if f.rule == "identifiers.personal")
    assert hit.location == "parquet metadata"


def test_joblib_files_are_walked(bare_context: CheckContext) -> None:
    import io

    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LinearRegression
    from sklearn.svm import SVC

    X = np.random.default_rng(0).random((60, 3))
    y = (X[:, 0] > 0.5).astype(int)

    def dump(obj: object, **kw: object) -> bytes:
        buf = io.BytesIO()
        joblib.dump(obj, buf, **kw)
        return buf.getvalue()

    # Raw arrays between the opcodes (plain and structured dtypes) are stepped over.
    forest = RandomForestClassifier(3, max_depth=3, min_samples_leaf=5).fit(X, y)
    for model in (LinearRegression().fit(X, y), forest):
        for kw in ({}, {"protocol": 2}, {"compress": 3}):
            report = check_bytes(dump(model, **kw), "m.joblib", bare_context)
            assert report.verdict is Verdict.PASS, (
                model,
                kw,
                [f.to_dict() for f in report.findings],
            )
    assert (
        rules(check_bytes(dump(SVC().fit(X, y)), "m.joblib", bare_context))["model.training_rows"]
        is Verdict.FAIL
    )
    # An object array is a whole pickle inside joblib's stream; a global hidden in it is found.
    hidden = dump({"a": np.arange(3), "b": np.array([print], dtype=object)})
    report = check_bytes(hidden, "m.joblib", bare_context)
    assert "builtins.print" in report.findings[0].evidence["denied"]
    # Data after the final STOP is refused: a loader reading on would see it.
    assert (
        rules(check_bytes(dump(np.arange(3)) + b"tail", "m.joblib", bare_context))[
            "pickle.malformed"
        ]
        is Verdict.FAIL
    )


@pytest.mark.parametrize("shape_op", [b"K\xff", b"J\x00\x00\x00\xf0", b"J\xff\xff\xff\xff"])
def test_joblib_hostile_shapes(shape_op: bytes, bare_context: CheckContext) -> None:
    import io

    import joblib
    import numpy as np

    buf = io.BytesIO()
    joblib.dump(np.arange(3), buf)
    data = buf.getvalue()
    at = data.index(b"K\x03", data.index(b"shape"))
    report = check_bytes(data[:at] + shape_op + data[at + 2 :], "x.joblib", bare_context)
    assert rules(report)["pickle.malformed"] is Verdict.FAIL
