"""The readers behind the bakery corpus's model and table formats, on their own and on
hostile bytes: each bad file gets a clear finding, never a crash or a pass."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from cleanroom.checks import CheckContext, Verdict, check_bytes
from cleanroom.checks.boosters import ubjson_loads
from cleanroom.checks.request import TableCells, margins
from cleanroom.checks.text_tables import tables_in_text


@pytest.fixture(scope="module")
def booster() -> object:
    import xgboost

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    return xgboost.XGBRegressor(n_estimators=3, max_depth=4, min_child_weight=0).fit(X, X[:, 0])


def test_ubjson_reads_what_xgboost_writes(booster: object) -> None:
    raw = bytes(booster.get_booster().save_raw(raw_format="ubj"))  # type: ignore[attr-defined]
    text = json.loads(bytes(booster.get_booster().save_raw(raw_format="json")))  # type: ignore[attr-defined]
    doc = ubjson_loads(raw)
    trees = doc["learner"]["gradient_booster"]["model"]["trees"]
    expected = text["learner"]["gradient_booster"]["model"]["trees"]
    assert len(trees) == len(expected) == 3
    for got, want in zip(trees, expected, strict=True):
        assert list(got["left_children"]) == want["left_children"]
        assert np.allclose(got["sum_hessian"], want["sum_hessian"])


@pytest.mark.parametrize(
    "data",
    [
        b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner{",  # truncated
        b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner[$d#L\x7f\xff\xff\xff\xff\xff\xff\xff",
        b"{L\x00\x00\x00\x00\x00\x00\x00\x07learnerQ",  # unknown marker
    ],
)
def test_hostile_ubjson_fails_as_malformed(data: bytes, bakery_context: CheckContext) -> None:
    report = check_bytes(data, "m.ubj", bakery_context)
    assert report.detected_type == "xgboost-ubj"
    assert [f.rule for f in report.findings] == ["model.malformed"]
    assert report.verdict is Verdict.FAIL


def test_unreadable_lightgbm_fails(bakery_context: CheckContext) -> None:
    data = b"tree\nversion=v4\n\nTree=0\nnum_leaves=3\nleaf_count=4 x 9\n"
    report = check_bytes(data, "m.txt", bakery_context)
    assert report.detected_type == "lightgbm"
    assert report.findings[0].rule == "model.malformed"
    assert report.verdict is Verdict.FAIL


def test_lightgbm_counts_decide(bakery_context: CheckContext) -> None:
    model = "tree\nversion=v4\n\nTree=0\nnum_leaves={n}\nleaf_count={counts}\n\nend of trees\n"
    small = check_bytes(model.format(n=2, counts="3 900").encode(), "m.txt", bakery_context)
    large = check_bytes(model.format(n=2, counts="30 900").encode(), "m.txt", bakery_context)
    assert small.verdict is Verdict.FAIL
    assert small.findings[-1].evidence["smallest_leaf"] == 3
    assert large.verdict is Verdict.PASS


def test_skops_class_outside_the_allowlist_goes_to_review(bakery_context: CheckContext) -> None:
    import skops.io
    from sklearn.linear_model import LinearRegression

    data = skops.io.dumps(LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0]))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    schema = json.loads(members["schema.json"])
    schema["__module__"] = "mypackage.models"
    members["schema.json"] = json.dumps(schema).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    clean = check_bytes(data, "m.skops", bakery_context)
    edited = check_bytes(buf.getvalue(), "m.skops", bakery_context)
    assert clean.verdict is Verdict.PASS, [f.to_dict() for f in clean.findings]
    rules = {f.rule: f for f in edited.findings}
    assert rules["skops.types"].verdict is Verdict.REVIEW
    assert "mypackage.models.LinearRegression" in rules["skops.types"].evidence["untrusted"]


def test_onnx_tree_without_a_source_goes_to_review(bare_context: CheckContext) -> None:
    from skl2onnx import to_onnx
    from sklearn.tree import DecisionTreeRegressor

    X = np.arange(60, dtype=np.float32).reshape(-1, 1)
    model = DecisionTreeRegressor(max_depth=2).fit(X, X[:, 0])
    data = to_onnx(model, X[:1], target_opset=17).SerializeToString()
    report = check_bytes(data, "tree.onnx", bare_context)
    leaf = next(f for f in report.findings if f.rule == "model.leaf_size")
    assert leaf.verdict is Verdict.REVIEW
    assert leaf.evidence["most_leaves_in_a_tree"] == 4


def test_object_arrays_are_not_loaded(bakery_context: CheckContext) -> None:
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    report = check_bytes(buf.getvalue(), "x.npy", bakery_context)
    assert report.detected_type == "npy"
    assert [f.rule for f in report.findings] == ["table.malformed"]


def test_latex_cross_table_is_read() -> None:
    table = pd.crosstab(
        pd.Series(["a", "b", "a", "a"], name="fault"), pd.Series(["x", "y", "y", "x"], name="oven")
    )
    (frame,) = tables_in_text("Faults:\n\n" + table.to_latex() + "\nend\n")
    assert list(frame.columns) == ["fault", "x", "y"]
    assert frame.to_dict("list") == {"fault": ["a", "b"], "x": [2, 0], "y": [1, 1]}


def test_margins_leave_printed_totals_out() -> None:
    cells = TableCells(
        "t.csv",
        "",
        ["product"],
        {
            "burnt": {"rye": 3.0, "bun": 4.0, "all": 7.0},
            "none": {"rye": 30.0, "bun": 40.0, "all": 70.0},
            "All": {"rye": 33.0, "bun": 44.0, "all": 77.0},
        },
    )
    rows, columns = margins(cells)
    assert rows.counts == {"(row total)": {"rye": 33.0, "bun": 44.0}}
    assert columns.counts == {"(column total)": {"burnt": 7.0, "none": 70.0}}
