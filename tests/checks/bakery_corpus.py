"""A labelled corpus of outputs from the bakery dataset (``bakery.py``), written apart
from the checks to measure how they generalise (issue #12).

Labels follow the SDC rules, not the checks' code: frequency and magnitude cells of
fewer than 10 records; dominance by a record or by a declared contributor (p% and
(n, k)); raw records in any container (renamed columns, JSON in every orient, JSON
Lines, Parquet, Feather, Excel, LaTeX, NumPy arrays, pickles of frames or of plain
records, notebooks with outputs, archives); differencing of counts, of sums and of
margins between the files of a request and against earlier releases; identifiers
(names, e-mails, phone numbers) in free text; models that memorise training records
(instance-based models, tensors holding rows) or whose trees have leaves of fewer than
5 records, in every format researchers save (pickle, joblib, skops, XGBoost JSON and
UBJ, LightGBM text, safetensors, ONNX).

Each unsafe sample names the rules any one of which is the right reason to stop it;
``expect`` is the least verdict that stops it.
"""

from __future__ import annotations

import io
import json
import pickle
from typing import Any

import numpy as np
import pandas as pd
from cleanroom.checks import Verdict
from sklearn.linear_model import LinearRegression
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from tests.checks import builders
from tests.checks.packaging_corpus import RequestCase, Sample

ROWS = ("table.source_rows",)
SMALL = ("table.small_counts", "table.small_source_cells")
DOMINANCE = ("table.dominance_nk", "table.dominance_p_percent")
LEAVES = ("model.leaf_size",)
MEMORY = ("model.training_rows", "table.source_rows", "model.tensor_rows")
DIFFERENCING = ("request.differencing",)
FEATURES = ["dough_kg", "proof_min", "oven_temp", "core_temp"]


def _csv(frame: pd.DataFrame | pd.Series, **kw: Any) -> bytes:
    return frame.to_csv(**kw).encode()


def _xlsx(frame: pd.DataFrame, **kw: Any) -> bytes:
    buf = io.BytesIO()
    frame.to_excel(buf, **kw)
    return buf.getvalue()


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf)
    return buf.getvalue()


def _feather(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.reset_index(drop=True).to_feather(buf)
    return buf.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _joblib(obj: object) -> bytes:
    import joblib

    buf = io.BytesIO()
    joblib.dump(obj, buf)
    return buf.getvalue()


def _skops(obj: object) -> bytes:
    import skops.io

    return skops.io.dumps(obj)


def _xgb(model: Any, fmt: str) -> bytes:
    # save_raw writes the same bytes as save_model("x.json" / "x.ubj").
    return bytes(model.get_booster().save_raw(raw_format=fmt))


def _onnx(model: Any, features: int) -> bytes:
    from skl2onnx import to_onnx

    return to_onnx(
        model, np.zeros((1, features), dtype=np.float32), target_opset=17
    ).SerializeToString()


def _safetensors(tensors: dict[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save

    return save({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()})


def _latex(frame: pd.DataFrame, **kw: Any) -> bytes:
    return frame.to_latex(**kw).encode()


def _markdown(frame: pd.DataFrame, title: str = "Table") -> bytes:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.to_numpy()]
    return (f"# {title}\n\n" + "\n".join(lines) + "\n").encode()


def _figure(kind: str, fmt: str, bakes: pd.DataFrame) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    if kind == "scatter":
        points = bakes.sample(900, random_state=8)
        ax.scatter(points["dough_kg"], points["oven_temp"], s=5, c="tab:brown")
    elif kind == "bar":
        counts = bakes["product"].value_counts().sort_index()
        ax.barh(counts.index, counts.to_numpy())
    else:
        weekly = bakes.groupby(bakes["baked_at"].dt.isocalendar().week)["core_temp"].mean()
        ax.plot(weekly.index.to_numpy(), weekly.to_numpy())
    ax.set_title("bakery")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    plt.close(fig)
    return buf.getvalue()


def _ols_text(bakes: pd.DataFrame, rows: int | None = None) -> bytes:
    """A statsmodels-style summary (without statsmodels): coefficients, p-values, df."""
    data = bakes if rows is None else bakes.head(rows)
    X = np.column_stack([np.ones(len(data)), data["dough_kg"], data["proof_min"]])
    y = data["scrapped"].to_numpy(dtype=float)
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    dof = len(y) - 3
    se = np.sqrt(np.diag(resid @ resid / dof * np.linalg.inv(X.T @ X)))
    lines = [
        "                            OLS Regression Results",
        "==============================================================================",
        f"Dep. Variable:               scrapped   No. Observations:          {len(y):>8}",
        f"Model:                            OLS   Df Residuals:              {dof:>8}",
        "Method:                 Least Squares   Df Model:                         2",
        "==============================================================================",
        "                 coef    std err          t      P>|t|      [0.025      0.975]",
        "------------------------------------------------------------------------------",
    ]
    for name, b, s in zip(["const", "dough_kg", "proof_min"], beta, se, strict=True):
        lines.append(
            f"{name:<10} {b:>10.4f} {s:>10.3f} {b / s:>10.3f} {0.0:>10.3f} "
            f"{b - 1.96 * s:>10.3f} {b + 1.96 * s:>10.3f}"
        )
    return ("\n".join(lines) + "\n").encode()


def build(bakes: pd.DataFrame, flour: pd.DataFrame) -> list[Sample]:
    """Every single-file sample (deterministic)."""
    import lightgbm
    import xgboost

    X = bakes[FEATURES].to_numpy(dtype=float)
    y_scrap = (bakes["scrapped"] > 2).astype(int).to_numpy()
    y_loaves = bakes["loaves"].to_numpy(dtype=float)
    hour = bakes["baked_at"].dt.hour.rename("hour")
    week = bakes["baked_at"].dt.isocalendar().week.astype(int).rename("week")
    oven_shift = pd.crosstab(bakes["oven"], bakes["shift"])
    by_hour = bakes.groupby(["oven", hour]).size().rename("batches").reset_index()
    by_week = (
        bakes.groupby(week).agg(batches=("batch_no", "count"), kg=("dough_kg", "sum")).round(1)
    )
    edges = np.quantile(bakes["dough_kg"], np.linspace(0, 1, 11))
    bins = pd.cut(bakes["dough_kg"], edges, include_lowest=True)
    histogram = pd.DataFrame(
        {
            "bin": np.arange(10),
            "from_kg": np.round(edges[:-1], 1),
            "to_kg": np.round(edges[1:], 1),
            "batches": bins.value_counts(sort=False).to_numpy(),
        }
    )
    temps = bakes.groupby("product")[["oven_temp", "core_temp"]].mean().round(1)
    per_oven = (
        bakes.groupby("oven")
        .agg(batches=("batch_no", "count"), mean_kg=("dough_kg", "mean"), loaves=("loaves", "sum"))
        .round(2)
        .reset_index()
    )
    product_shift = bakes.groupby(["product", "shift"]).size().rename("batches").reset_index()
    shares = (pd.crosstab(bakes["product"], bakes["shift"], normalize="index") * 100).round(1)
    common = flour[flour["grade"].isin(["T55", "T65", "T80"])]
    kg_common = common.groupby("grade")["net_kg"].sum().round(1).reset_index()
    tree_ok = DecisionTreeClassifier(max_depth=4, min_samples_leaf=40, random_state=0).fit(
        X, y_scrap
    )
    xgb_ok = xgboost.XGBRegressor(
        n_estimators=15, max_depth=3, min_child_weight=40, tree_method="hist", random_state=0
    ).fit(X, y_loaves)
    xgb_clf_ok = xgboost.XGBClassifier(
        n_estimators=10, max_depth=3, min_child_weight=30, tree_method="hist", random_state=0
    ).fit(X, y_scrap)
    lgb_ok = lightgbm.LGBMRegressor(
        n_estimators=10, num_leaves=8, min_child_samples=60, verbose=-1, random_state=0
    ).fit(X, y_loaves)
    rng = np.random.default_rng(4)
    mlp = {
        "layer1.weight": rng.normal(size=(16, 4)),
        "layer1.bias": rng.normal(size=16),
        "layer2.weight": rng.normal(size=(1, 16)),
        "layer2.bias": rng.normal(size=1),
    }
    linear = LinearRegression().fit(X.astype(np.float32), y_loaves)
    notebook = builders.notebook(
        [
            {"markdown": "# Ovens and shifts"},
            {
                "source": "pd.crosstab(bakes.oven, bakes.shift)",
                "outputs": [builders.html_output(oven_shift.to_html(), str(oven_shift))],
            },
            {"source": "print(temps)", "outputs": [builders.stream_output(temps.to_string())]},
            {
                "source": "ax = counts.plot.barh()",
                "outputs": [builders.image_output(_figure("bar", "png", bakes))],
            },
        ]
    )
    report = (
        "Bake quality, summer 2025\n\n"
        f"We baked {len(bakes)} batches ({int(bakes['loaves'].sum())} loaves). "
        f"{(bakes['fault'] != 'none').mean():.1%} of batches had a fault; the most common "
        f"was burning ({int((bakes['fault'] == 'burnt').sum())} batches). Mean core "
        f"temperature was {bakes['core_temp'].mean():.1f} C. Oven OV-101 ran "
        f"{int((bakes['oven'] == 'OV-101').sum())} batches, more than any other.\n"
    ).encode()
    md_report = (
        b"# Ovens\n\nBatches per oven and shift over 18 weeks.\n\n"
        + _markdown(oven_shift.reset_index(), "Batches")
        + b"\nNo oven stood out.\n"
    )
    card = (
        b"# Model card: scrap predictor\n\n"
        b"- Gradient boosted trees (XGBoost), 15 trees of depth 3, min_child_weight 40.\n"
        b"- Trained on 7,200 batches, evaluated on 1,800; RMSE 12.4 loaves.\n"
        b"- Inputs: dough weight, proofing time, oven and core temperature.\n"
    )
    metrics = json.dumps(
        {"model": "xgboost", "rmse": 12.4, "r2": 0.91, "train_batches": 7200, "folds": 5}
    ).encode()
    safe = [
        Sample("oven_shift.csv", _csv(oven_shift), True),
        Sample("oven_shift.parquet", _parquet(oven_shift), True),
        Sample("oven_shift.xlsx", _xlsx(oven_shift), True),
        Sample("oven_hour.csv", _csv(by_hour, index=False), True),
        Sample("weekly.csv", _csv(by_week), True),
        Sample("dough_histogram.csv", _csv(histogram, index=False), True),
        Sample("temps_by_product.csv", _csv(temps), True),
        Sample("temps_by_product.tex", _latex(temps), True),
        Sample("per_oven.csv", _csv(per_oven, index=False), True),
        Sample("per_oven.md", _markdown(per_oven), True),
        Sample("product_shift.json", product_shift.to_json(orient="records").encode(), True),
        Sample(
            "product_shift.jsonl",
            product_shift.to_json(orient="records", lines=True).encode(),
            True,
        ),
        Sample("product_shift_split.json", product_shift.to_json(orient="split").encode(), True),
        Sample("shift_shares.csv", _csv(shares), True),
        Sample("products.csv", _csv(bakes["product"].value_counts()), True),
        Sample("flour_common.csv", _csv(kg_common, index=False), True),
        Sample("ols.txt", _ols_text(bakes), True),
        Sample("report.txt", report, True),
        Sample("report.md", md_report, True),
        Sample("model_card.md", card, True),
        Sample("metrics.json", metrics, True),
        Sample("analysis.ipynb", notebook, True),
        Sample("products.png", _figure("bar", "png", bakes), True),
        Sample("weekly.svg", _figure("line", "svg", bakes), True),
        Sample("tree.pkl", pickle.dumps(tree_ok), True),
        Sample("tree.skops", _skops(tree_ok), True),
        Sample("xgb.json", _xgb(xgb_ok, "json"), True),
        Sample("xgb.ubj", _xgb(xgb_ok, "ubj"), True),
        Sample("xgb_classifier.json", _xgb(xgb_clf_ok, "json"), True),
        Sample("lgbm.txt", lgb_ok.booster_.model_to_string().encode(), True),
        Sample("lgbm_dump.json", json.dumps(lgb_ok.booster_.dump_model()).encode(), True),
        Sample(
            "settings.json",
            json.dumps({"n_train": 7200, "n_test": 1800, "folds": 5}).encode(),
            True,
        ),
        Sample("mlp.safetensors", _safetensors(mlp), True),
        Sample("linear.onnx", _onnx(linear, 4), True),
        Sample(
            "outputs.zip",
            builders.zip_of({"oven_shift.csv": _csv(oven_shift), "temps.csv": _csv(temps)}),
            True,
        ),
    ]

    rows = bakes.sample(30, random_state=6)
    no_ids = rows.drop(columns=["baker", "baker_mail", "baker_phone", "batch_no"])
    # Timestamps as epoch milliseconds, as to_json wrote them by default.
    epoch_ms = no_ids.assign(baked_at=(no_ids["baked_at"] - pd.Timestamp(0)) // pd.Timedelta("1ms"))
    renamed = no_ids.set_axis([f"c{i}" for i in range(no_ids.shape[1])], axis=1)
    measures = rows[FEATURES].set_axis(["w", "p", "t1", "t2"], axis=1)
    flour_rows = flour.sample(20, random_state=3).drop(columns=["lot"])
    flour_renamed = flour_rows.set_axis(["date", "from", "kind", "n", "kg", "eur"], axis=1)
    faults = bakes.groupby(["oven", "fault"]).agg(batches=("batch_no", "count")).reset_index()
    fault_shift = pd.crosstab(bakes["fault"], bakes["shift"], margins=True)
    scrap_sum = bakes.groupby(["fault", "shift"])["scrapped"].sum().reset_index()
    dough_mean = bakes.groupby(["product", "fault"])["dough_kg"].mean().round(2).reset_index()
    fault_counts = bakes["fault"].value_counts()
    product_fault = bakes.groupby("product")["fault"].value_counts().rename("n").reset_index()
    kg_by_grade = flour.groupby("grade")["net_kg"].sum().round(1).reset_index()
    invoice_by_mill = flour.groupby("mill")["invoice_eur"].sum().round(2).reset_index()
    pivot = flour.pivot_table(index="grade", columns="mill", values="net_kg", aggfunc="sum").round(
        1
    )
    mean_by_grade = flour.groupby("grade")["net_kg"].mean().round(1).reset_index()
    sacks_by_grade = flour.groupby("grade")["sacks"].sum().reset_index()
    by_baker = bakes.groupby("baker")["loaves"].sum()
    first = bakes.iloc[17]
    # Models of the core temperature from the other readings.
    Xc = bakes[["dough_kg", "proof_min", "oven_temp"]].to_numpy(dtype=float)
    core = bakes["core_temp"].to_numpy()
    tree_full = DecisionTreeRegressor(random_state=0).fit(Xc[:4000], core[:4000])
    clf_full = DecisionTreeClassifier(random_state=0).fit(X, y_scrap)
    knn = KNeighborsRegressor(3).fit(X[:400], y_loaves[:400])
    xgb_deep = xgboost.XGBRegressor(
        n_estimators=4,
        max_depth=12,
        min_child_weight=0,
        reg_lambda=0,
        tree_method="exact",
        random_state=0,
    ).fit(Xc[:3000], core[:3000])
    lgb_deep = lightgbm.LGBMRegressor(
        n_estimators=4,
        num_leaves=1024,
        min_child_samples=1,
        min_child_weight=0,
        min_split_gain=0,
        verbose=-1,
        random_state=0,
    ).fit(Xc[:3000], core[:3000])
    memory = {
        "prototypes": X[:500],
        "head.weight": np.random.default_rng(1).normal(size=(1, 4)),
    }
    encoder = OrdinalEncoder().fit(bakes[["baker"]])
    xgb_clf_deep = xgboost.XGBClassifier(
        n_estimators=3, max_depth=12, min_child_weight=0, reg_lambda=0, random_state=0
    ).fit(Xc[:3000], y_scrap[:3000])
    fault_series = bakes.groupby(["shift", "fault"]).size()
    raw_md = _markdown(rows.drop(columns=["baker", "baker_mail", "baker_phone"]).head(10)).decode()
    unsafe = [
        Sample("rows.parquet", _parquet(no_ids), False, ROWS),
        Sample("rows_renamed.parquet", _parquet(renamed), False, ROWS),
        Sample("rows_renamed.xlsx", _xlsx(renamed, index=False), False, ROWS),
        Sample(
            "rows.jsonl",
            epoch_ms.to_json(orient="records", lines=True).encode(),
            False,
            ROWS,
        ),
        Sample(
            "rows_split.json",
            renamed.to_json(orient="split", date_format="iso").encode(),
            False,
            ROWS,
        ),
        Sample(
            "rows_index.json",
            epoch_ms.to_json(orient="index").encode(),
            False,
            ROWS,
        ),
        Sample("rows_table.json", no_ids.to_json(orient="table").encode(), False, ROWS),
        Sample("rows_values.json", json.dumps(measures.to_numpy().tolist()).encode(), False, ROWS),
        Sample("rows.feather", _feather(renamed), False, ROWS),
        Sample("rows.tex", _latex(measures, index=False), False, ROWS),
        Sample("rows.npy", _npy(measures.to_numpy()), False, ROWS),
        Sample("frame.pkl", pickle.dumps(no_ids), False, (*ROWS, "pickle.globals")),
        Sample("records.pkl", pickle.dumps(measures.to_dict(orient="records")), False, ROWS),
        Sample("measures.csv", _csv(measures, index=False), False, ROWS),
        Sample("flour_rows.tsv", _csv(flour_renamed, sep="\t", index=False), False, ROWS),
        Sample(
            "peek.ipynb",
            builders.notebook(
                [
                    {
                        "source": "print(df.iloc[100:115])",
                        "outputs": [builders.stream_output(renamed.head(15).to_string())],
                    }
                ]
            ),
            False,
            ROWS,
        ),
        Sample(
            "flour_peek.ipynb",
            builders.notebook(
                [
                    {
                        "source": "deliveries[deliveries.kind == 'T80']",
                        "outputs": [builders.html_output(flour_renamed.head(10).to_html())],
                    }
                ]
            ),
            False,
            ROWS,
        ),
        Sample(
            "rows.tar.gz",
            _targz({"out/rows.csv": _csv(renamed, index=False)}),
            False,
            ROWS,
        ),
        Sample("faults_by_oven.csv", _csv(faults, index=False), False, SMALL),
        Sample("fault_shift_margins.csv", _csv(fault_shift), False, SMALL),
        Sample("scrapped_by_fault.csv", _csv(scrap_sum, index=False), False, SMALL),
        Sample("dough_by_product_fault.csv", _csv(dough_mean, index=False), False, SMALL),
        Sample("faults.txt", str(fault_counts).encode(), False, SMALL),
        Sample("faults.md", _markdown(fault_shift.reset_index()), False, SMALL),
        Sample(
            "faults_nested.json",
            json.dumps(
                {"by_fault": pd.crosstab(bakes["fault"], bakes["shift"]).T.to_dict()}
            ).encode(),
            False,
            SMALL,
        ),
        Sample("faults.tex", _latex(pd.crosstab(bakes["fault"], bakes["oven"])), False, SMALL),
        Sample("faults.xlsx", _xlsx(faults, index=False), False, SMALL),
        Sample("product_fault.parquet", _parquet(product_fault), False, SMALL),
        Sample(
            "faults.ipynb",
            builders.notebook(
                [
                    {
                        "source": "bakes.fault.value_counts()",
                        "outputs": [
                            {
                                "output_type": "execute_result",
                                "execution_count": 3,
                                "metadata": {},
                                "data": {"text/plain": str(fault_counts)},
                            }
                        ],
                    }
                ]
            ),
            False,
            SMALL,
        ),
        Sample("fault_series.json", fault_series.to_json().encode(), False, SMALL),
        Sample(
            "fault_series.ipynb",
            builders.notebook(
                [
                    {
                        "source": "bakes.groupby(['shift', 'fault']).size().to_frame('n')",
                        "outputs": [builders.html_output(fault_series.to_frame("n").to_html())],
                    }
                ]
            ),
            False,
            SMALL,
        ),
        Sample(
            "markdown_output.ipynb",
            builders.notebook(
                [
                    {
                        "source": "display(Markdown(md))",
                        "outputs": [
                            {
                                "output_type": "display_data",
                                "metadata": {},
                                "data": {"text/markdown": raw_md, "text/plain": "<Markdown>"},
                            }
                        ],
                    }
                ]
            ),
            False,
            ROWS,
        ),
        Sample("kg_by_grade.csv", _csv(kg_by_grade, index=False), False, DOMINANCE),
        Sample("invoice_by_mill.csv", _csv(invoice_by_mill, index=False), False, DOMINANCE),
        Sample("kg_pivot.csv", _csv(pivot), False, DOMINANCE),
        Sample(
            "mean_by_grade_renamed.csv",
            _csv(mean_by_grade.set_axis(["flour", "avg"], axis=1), index=False),
            False,
            DOMINANCE,
        ),
        Sample("sacks_by_grade.md", _markdown(sacks_by_grade), False, DOMINANCE),
        Sample(
            "kg_by_grade.json", kg_by_grade.to_json(orient="records").encode(), False, DOMINANCE
        ),
        Sample(
            "loaves_by_baker.csv",
            _csv(by_baker),
            False,
            ("identifiers.columns", "identifiers.source_values"),
        ),
        Sample(
            "call.txt",
            f"If the proofer jams again, call the early lead on {first['baker_phone']}.\n".encode(),
            False,
            ("identifiers.personal",),
        ),
        Sample(
            "rep.md",
            b"# Flour\n\nThe mill's rep (0161 496 0783) confirmed the rye recall.\n",
            False,
            ("identifiers.personal",),
        ),
        Sample(
            "rota.txt",
            f"Late shift lead: {first['baker'].split()[1]}, {first['baker'].split()[0]}\n".encode(),
            False,
            ("identifiers.source",),
        ),
        Sample(
            "praise.txt",
            f"Thanks to {first['baker']} for covering the late shift in June.\n".encode(),
            False,
            ("identifiers.source",),
        ),
        Sample(
            "contacts.md",
            f"# Contacts\n\nQuestions about the rye trial: {first['baker_mail']}\n".encode(),
            False,
            ("identifiers.personal", "identifiers.source"),
        ),
        Sample(
            "best.json",
            json.dumps({"best_baker": str(first["baker"]), "loaves": 18_204}).encode(),
            False,
            ("identifiers.source", "identifiers.source_values"),
        ),
        Sample(
            "phones.ipynb",
            builders.notebook(
                [
                    {
                        "source": "bakes.baker_phone.unique()[:4]",
                        "outputs": [
                            builders.stream_output(str(list(bakes["baker_phone"].unique()[:4])))
                        ],
                    }
                ]
            ),
            False,
            ("identifiers.personal", "identifiers.source"),
        ),
        Sample(
            "chart.png",
            builders.png(chunks=[(b"tEXt", f"Author\x00{first['baker']}".encode())]),
            False,
            ("image.metadata",),
        ),
        Sample("full_tree.pkl", pickle.dumps(tree_full), False, LEAVES),
        Sample("full_tree.skops", _skops(clf_full), False, LEAVES),
        Sample(
            "pipeline.joblib",
            _joblib(
                make_pipeline(StandardScaler(), DecisionTreeRegressor(random_state=0)).fit(
                    Xc[:2000], core[:2000]
                )
            ),
            False,
            LEAVES,
        ),
        Sample("knn.skops", _skops(knn), False, MEMORY),
        Sample(
            "lgbm_deep_dump.json",
            json.dumps(lgb_deep.booster_.dump_model()).encode(),
            False,
            LEAVES,
        ),
        # Hessian sums under a logistic loss only bound the records from below.
        Sample("xgb_clf_deep.json", _xgb(xgb_clf_deep, "json"), False, LEAVES, Verdict.REVIEW),
        Sample("xgb_deep.json", _xgb(xgb_deep, "json"), False, LEAVES),
        Sample("xgb_deep.ubj", _xgb(xgb_deep, "ubj"), False, LEAVES),
        Sample("lgbm_deep.txt", lgb_deep.booster_.model_to_string().encode(), False, LEAVES),
        Sample("memory.safetensors", _safetensors(memory), False, MEMORY),
        Sample("knn.onnx", _onnx(knn, 4), False, MEMORY),
        Sample("full_tree.onnx", _onnx(tree_full, 3), False, LEAVES),
        Sample(
            "encoder.pkl",
            pickle.dumps(encoder),
            False,
            ("identifiers.source", "identifiers.source_values"),
        ),
        Sample("ols_small.txt", _ols_text(bakes, rows=9), False, ("statistics.residual_dof",)),
        Sample(
            "scatter.png",
            _figure("scatter", "png", bakes),
            False,
            ("image.scatter_points",),
            Verdict.REVIEW,
        ),
    ]
    return safe + unsafe


def _targz(members: dict[str, bytes]) -> bytes:
    import gzip
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def requests(bakes: pd.DataFrame, flour: pd.DataFrame) -> list[RequestCase]:
    """Requests whose files are each safe but which disclose together (or do not)."""
    by_product = bakes.groupby("product").size().rename("batches").reset_index()
    # Everything but the few foreign-body batches: the difference is a small group.
    clean = bakes[bakes["fault"] != "foreign-body"]
    by_product_clean = clean.groupby("product").size().rename("batches").reset_index()
    loaves = bakes.groupby("product")["loaves"].sum().reset_index()
    loaves_clean = clean.groupby("product")["loaves"].sum().reset_index()
    # A cross-table without its rarest column: its row margins against the totals.
    table = pd.crosstab(bakes["product"], bakes["fault"]).drop(columns=["foreign-body"])
    early = bakes[bakes["shift"] == "early"].groupby("product").size().rename("batches")
    day = bakes[bakes["shift"] == "day"].groupby("product").size().rename("batches")
    not_late = bakes[bakes["shift"] != "late"].groupby("product").size().rename("batches")
    full = pd.crosstab(bakes["product"], bakes["shift"])
    return [
        RequestCase(
            "counts, one request",
            [
                ("all.csv", _csv(by_product, index=False)),
                ("clean.csv", _csv(by_product_clean, index=False)),
            ],
            False,
            rules=DIFFERENCING,
        ),
        RequestCase(
            "sums, one request",
            [
                ("loaves.csv", _csv(loaves, index=False)),
                ("loaves_clean.csv", _csv(loaves_clean, index=False)),
            ],
            False,
            rules=DIFFERENCING,
        ),
        RequestCase(
            "margins of a cross-table",
            [("all.csv", _csv(by_product, index=False)), ("faults.csv", _csv(table))],
            False,
            rules=DIFFERENCING,
        ),
        RequestCase(
            "sums against a release",
            [("loaves_clean.json", loaves_clean.to_json(orient="records").encode())],
            False,
            released=[("loaves.csv", _csv(loaves, index=False))],
            rules=DIFFERENCING,
        ),
        RequestCase(
            "two shifts",
            [("early.csv", _csv(early)), ("day.csv", _csv(day))],
            True,
        ),
        RequestCase(
            "a large group left out",
            [("all.csv", _csv(by_product, index=False)), ("not_late.csv", _csv(not_late))],
            True,
        ),
        RequestCase(
            "a cross-table and its margins",
            [("all.csv", _csv(by_product, index=False)), ("product_shift.csv", _csv(full))],
            True,
        ),
    ]
