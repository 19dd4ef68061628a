"""A labelled corpus of outputs made from the demo data set, as a researcher would.

Each sample is "safe" (an output an officer would release) or "unsafe" (one that
discloses), with the least verdict the checks must give an unsafe one: most must fail,
a few (shapes that need a person's judgement) must at least go to review.
"""

from __future__ import annotations

import gzip
import io
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from cleanroom.checks import Verdict
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from tests.checks import builders


@dataclass(frozen=True)
class Sample:
    """One labelled output file."""

    name: str
    data: bytes
    safe: bool
    expect: Verdict = Verdict.FAIL  # for unsafe samples: the least verdict required


def _csv(frame: pd.DataFrame | pd.Series, **kw: Any) -> bytes:
    return frame.to_csv(**kw).encode("utf-8")


def _xlsx(frames: dict[str, pd.DataFrame], index: bool = True) -> bytes:
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as writer:
        for name, frame in frames.items():
            frame.to_excel(writer, sheet_name=name, index=index)
    return buf.getvalue()


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf)
    return buf.getvalue()


def _statsmodels_like(dof: int) -> bytes:
    return (
        "                            OLS Regression Results\n"
        "==============================================================================\n"
        "Dep. Variable:          temperature_c   R-squared:                       0.412\n"
        f"No. Observations:     {dof + 3:>10}   F-statistic:                     12.3\n"
        f"Df Residuals:         {dof:>10}   Prob (F-statistic):           1.2e-05\n"
        "Df Model:                        2\n"
    ).encode()


def _joblib(obj: object, **kw: Any) -> bytes:
    import joblib

    buf = io.BytesIO()
    joblib.dump(obj, buf, **kw)
    return buf.getvalue()


def build_corpus(df: pd.DataFrame) -> list[Sample]:
    """Every sample, generated from the demo frame ``df`` (deterministic)."""
    rng = np.random.default_rng(3)
    sensors = ["force_kn", "stroke_mm", "temperature_c", "vibration_rms", "oil_pressure_bar"]
    crosstab = pd.crosstab(df["shift"], df["defect_type"])
    by_shift = df.groupby("shift")[["force_kn", "temperature_c", "vibration_rms"]].mean().round(2)
    counts = df.groupby(["shift", "material_grade"]).size().rename("n").reset_index()
    sums = df.groupby("shift")["force_kn"].sum().rename("force_kn_sum").reset_index()
    defect_rate = df.groupby("material_grade")["defect"].mean().rename("defect_rate")
    X = df[["temperature_c", "vibration_rms", "sheet_thickness_mm"]].to_numpy()
    y = df["defect"].to_numpy()
    linreg = LinearRegression().fit(X, df["force_kn"].to_numpy())
    logit = LogisticRegression(max_iter=200).fit(X, y)
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    coef_table = pd.DataFrame(
        {
            "term": ["intercept", "temperature_c", "vibration_rms"],
            "estimate": [1.2, 0.09, 0.8],
            "std_err": [0.1, 0.01, 0.05],
            "df_resid": [len(df) - 3] * 3,
        }
    )
    plot = builders.png(64, 48)
    safe = [
        Sample("crosstab.csv", _csv(crosstab), True),
        Sample("crosstab.tsv", _csv(crosstab, sep="\t"), True),
        Sample("crosstab.xlsx", _xlsx({"defects": crosstab}), True),
        Sample("crosstab.parquet", _parquet(crosstab), True),
        Sample("means_by_shift.csv", _csv(by_shift), True),
        Sample("counts_long.csv", _csv(counts, index=False), True),
        Sample("force_sum_by_shift.csv", _csv(sums, index=False), True),
        Sample("defect_rate.csv", _csv(defect_rate), True),
        Sample("coefficients.csv", _csv(coef_table, index=False), True),
        Sample("model_summary.txt", _statsmodels_like(len(df) - 3), True),
        Sample("plot.png", plot, True),
        Sample("photo.jpg", builders.jpeg(), True),
        Sample("crosstab_printed.txt", str(crosstab).encode(), True),
        Sample("tree.joblib", _joblib(tree), True),
        Sample("logit.joblib.z", _joblib(logit, compress=3), True),
        Sample("linreg.pkl", pickle.dumps(linreg), True),
        Sample("logit.pkl", pickle.dumps(logit, protocol=2), True),
        Sample("tree.pkl", pickle.dumps(tree), True),
        Sample(
            "results.zip", builders.zip_of({"crosstab.csv": _csv(crosstab), "plot.png": plot}), True
        ),
        Sample("results.tar", builders.tar_of({"means.csv": _csv(by_shift)}), True),
        Sample("crosstab.csv.gz", gzip.compress(_csv(crosstab)), True),
        Sample(
            "analysis.ipynb",
            builders.notebook(
                [
                    {"markdown": "# Defects by shift"},
                    {
                        "source": "ct = pd.crosstab(df['shift'], df['defect_type'])\n"
                        "ct.to_csv('ct.csv')"
                    },
                ]
            ),
            True,
        ),
        Sample(
            "small_net.safetensors",
            builders.safetensors({"w1": [3, 16], "b1": [16], "w2": [16, 1]}),
            True,
        ),
        Sample("small_net.onnx", builders.onnx({"w1": [3, 16], "w2": [16, 1]}), True),
    ]
    head = df.head()
    sample20 = df.sample(20, random_state=1)
    unsafe = [
        Sample("head.csv", _csv(head, index=False), False),
        Sample("head_index.csv", _csv(head), False),
        Sample("sensors_sample.csv", _csv(sample20[sensors], index=False), False),
        Sample(
            "sensors_sample_timestamp.csv",
            _csv(sample20[["timestamp", "vibration_rms"]], index=False),
            False,
        ),
        Sample("head.tsv", _csv(head, sep="\t", index=False), False),
        Sample("head.xlsx", _xlsx({"Sheet1": head}, index=False), False),
        Sample("second_sheet.xlsx", _xlsx({"summary": crosstab, "raw": sample20[sensors]}), False),
        Sample("head.parquet", _parquet(head), False),
        Sample("head_disguised.png", _csv(head, index=False), False),
        Sample("head.csv.gz", gzip.compress(_csv(head, index=False)), False),
        Sample(
            "one_row.csv",
            _csv(df.iloc[[1234]][["timestamp", "force_kn", "shift"]], index=False),
            False,
        ),
        Sample(
            "crosstab_machine.csv", _csv(pd.crosstab(df["machine_id"], df["defect_type"])), False
        ),
        Sample(
            "crosstab_grade.csv", _csv(pd.crosstab(df["material_grade"], df["defect_type"])), False
        ),
        Sample("operator_counts.csv", _csv(df["operator_id"].value_counts()), False),
        Sample("company_means.csv", _csv(df.groupby("company")["force_kn"].mean()), False),
        Sample(
            "press_renamed.csv",
            _csv(
                df.groupby("machine_id")
                .size()
                .rename("n")
                .reset_index()
                .rename(columns={"machine_id": "press"}),
                index=False,
            ),
            False,
        ),
        Sample(
            "small_counts_long.csv",
            _csv(
                df.groupby(["material_grade", "defect_type"]).size().rename("count").reset_index(),
                index=False,
            ),
            False,
        ),
        Sample(
            "small_mean_cells.csv",
            _csv(
                df.groupby(["material_grade", "defect_type"])["force_kn"].mean().reset_index(),
                index=False,
            ),
            False,
        ),
        Sample(
            "rework_sum.csv",
            _csv(
                df.groupby(["shift", "defect_type"])["rework_cost_eur"].sum().reset_index(),
                index=False,
            ),
            False,
        ),
        Sample(
            "contacts.csv",
            b"team,contact\nquality,anna.berg@example.com\nmaintenance,+44 20 7946 0958\n",
            False,
        ),
        Sample("notes.txt", b"Spoke to the operator OP-117 about the night shift.\n", False),
        Sample("ols_small.txt", _statsmodels_like(6), False),
        Sample("coef_small.csv", _csv(coef_table.assign(df_resid=6), index=False), False),
        Sample("describe.csv", _csv(df[sensors].describe()), False, Verdict.REVIEW),
        Sample(
            "synthetic_rows.csv",
            _csv(pd.DataFrame(rng.normal(size=(500, 4)), columns=list("abcd")), index=False),
            False,
            Verdict.REVIEW,
        ),
        Sample("png_text.png", builders.png(chunks=[(b"tEXt", b"Comment\x00OP-117")]), False),
        Sample("png_trailing.png", builders.png(trailing=_csv(head)), False),
        Sample("jpeg_exif.jpg", builders.jpeg(exif=True), False),
        Sample("jpeg_comment.jpg", builders.jpeg(comment=b"lot LOT-24-00003"), False),
        Sample(
            "jpeg_trailing.jpg",
            builders.jpeg(trailing=builders.zip_of({"x.csv": _csv(head)})),
            False,
        ),
        Sample(
            "figure.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            False,
        ),
        # Issue #12: a plain SVG is read, not sent to review unread.
        Sample(
            "figure_plain.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><text>42</text></svg>',
            True,
        ),
        Sample(
            "report.pdf",
            b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
            False,
            Verdict.REVIEW,
        ),
        Sample("knn.pkl", pickle.dumps(KNeighborsClassifier(3).fit(X[:200], y[:200])), False),
        Sample("svm.pkl", pickle.dumps(SVC().fit(X[:200], y[:200])), False),
        Sample("frame.pkl", pickle.dumps(head), False),
        Sample("knn.joblib", _joblib(KNeighborsClassifier(3).fit(X[:200], y[:200])), False),
        Sample("evil.pkl", b"cos\nsystem\n(S'echo pwned'\ntR.", False),
        Sample(
            "evil_stack_global.pkl",
            pickle.dumps(print, protocol=4).replace(b"print", b"exec\x00")[:-1] + b".",
            False,
        ),
        Sample("raw.zip", builders.zip_of({"out/head.csv": _csv(head, index=False)}), False),
        Sample(
            "nested.zip",
            builders.zip_of({"inner.zip": builders.zip_of({"a.csv": _csv(crosstab)})}),
            False,
        ),
        Sample("bomb.zip", builders.zip_of({"zeros.csv": b"0" * 300_000_000}), False),
        Sample("bomb.gz", gzip.compress(b"0" * 300_000_000), False),
        Sample("link.tar", builders.tar_of({"a.csv": _csv(crosstab)}, symlink="passwd"), False),
        Sample(
            "head.ipynb",
            builders.notebook(
                [
                    {"source": "df.head()", "outputs": [builders.html_output(head.to_html())]},
                ]
            ),
            False,
        ),
        Sample(
            "print_ids.ipynb",
            builders.notebook(
                [
                    {
                        "source": "print(df.operator_id.unique()[:3])",
                        "outputs": [builders.stream_output(str(list(df.operator_id.unique()[:3])))],
                    },
                ]
            ),
            False,
        ),
        Sample(
            "figure.ipynb",
            builders.notebook(
                [
                    {
                        "source": "plot()",
                        "outputs": [
                            builders.image_output(builders.png(chunks=[(b"tEXt", b"a\x00b")]))
                        ],
                    },
                ]
            ),
            False,
        ),
        # Issue #12: a notebook whose only output is a safe table passes.
        Sample(
            "outputs.ipynb",
            builders.notebook(
                [{"source": "ct", "outputs": [builders.html_output(crosstab.to_html())]}]
            ),
            True,
        ),
        Sample(
            "big_tensor.safetensors",
            builders.safetensors({"memory": [len(df), 3]}),
            False,
            Verdict.REVIEW,
        ),
        Sample("big_tensor.onnx", builders.onnx({"memory": [len(df), 3]}), False, Verdict.REVIEW),
        Sample("unknown.bin", bytes(range(256)) * 4, False, Verdict.REVIEW),
        Sample("to_string.txt", sample20[sensors].to_string().encode(), False),
        Sample(
            "grade_counts.txt",
            str(df.groupby(["material_grade", "defect_type"]).size().rename("n")).encode(),
            False,
        ),
        Sample(
            "print_head.ipynb",
            builders.notebook(
                [
                    {
                        "source": "print(df[sensors].head())",
                        "outputs": [builders.stream_output(str(head[sensors]))],
                    }
                ]
            ),
            False,
        ),
    ]
    return safe + unsafe
