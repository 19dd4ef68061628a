"""A labelled corpus of outputs from the packaging dataset, in many formats.

Unlike ``corpus.py`` (the demo press line the checks were first written against),
these outputs come from a dataset of another shape (two tables, declared roles, a
dominating supplier) and exercise each class of issue #12: raw rows in JSON, JSON
Lines, Markdown and renamed columns; counts named like nouns; integer label columns;
p-values; dominance on a contributor; tree models; scatter plots; differencing; text
reports, model cards and notebooks that are safe.

Each unsafe sample names the rules any one of which is the right reason to stop it.
"""

from __future__ import annotations

import io
import json
import pickle
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from cleanroom.checks import Verdict
from sklearn.ensemble import RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

from tests.checks import builders

SOURCE_ROWS = "table.source_rows"
SMALL = ("table.small_counts", "table.small_source_cells")
DOMINANCE = ("table.dominance_nk", "table.dominance_p_percent")


@dataclass(frozen=True)
class Sample:
    """One labelled output (``rules``: the right reasons for an unsafe one)."""

    name: str
    data: bytes
    safe: bool
    rules: tuple[str, ...] = ()
    expect: Verdict = Verdict.FAIL


@dataclass(frozen=True)
class RequestCase:
    """A request of several files (and the project's earlier releases)."""

    name: str
    files: list[tuple[str, bytes]]
    safe: bool
    released: list[tuple[str, bytes]] = field(default_factory=list)
    rules: tuple[str, ...] = ()


def _csv(frame: pd.DataFrame | pd.Series, **kw: Any) -> bytes:
    return frame.to_csv(**kw).encode()


def _markdown(frame: pd.DataFrame) -> bytes:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.to_numpy()]
    return ("## Table\n\n" + "\n".join(lines) + "\n").encode()


def _xlsx(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_excel(buf, index=False)
    return buf.getvalue()


def _joblib(obj: object) -> bytes:
    import joblib

    buf = io.BytesIO()
    joblib.dump(obj, buf)
    return buf.getvalue()


def _figure(kind: str, fmt: str, packs: pd.DataFrame) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    if kind == "scatter":
        sample = packs.sample(1500, random_state=3)
        ax.scatter(sample["seal_temp_c"], sample["fill_weight_g"], s=6)
    elif kind == "bar":
        counts = packs["line_id"].value_counts().sort_index()
        ax.bar(counts.index, counts.to_numpy())
    else:
        hourly = packs.groupby(packs["packed_at"].dt.hour)["seal_temp_c"].mean()
        ax.plot(hourly.index, hourly.to_numpy(), marker="o")
    ax.set_xlabel("x")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    plt.close(fig)
    return buf.getvalue()


def _coefficients(packs: pd.DataFrame) -> pd.DataFrame:
    X = np.column_stack([np.ones(len(packs)), packs["seal_temp_c"], packs["seal_time_ms"]])
    y = packs["leak"].to_numpy(dtype=float)
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    sigma2 = resid @ resid / (len(y) - 3)
    se = np.sqrt(np.diag(sigma2 * np.linalg.inv(X.T @ X)))
    return pd.DataFrame(
        {
            "coef": beta.round(4),
            "std err": se.round(4),
            "t": (beta / se).round(3),
            "P>|t|": [0.000, 0.000, 0.412],
            "[0.025": (beta - 1.96 * se).round(4),
            "0.975]": (beta + 1.96 * se).round(4),
        },
        index=["const", "seal_temp_c", "seal_time_ms"],
    )


def build(packs: pd.DataFrame, deliveries: pd.DataFrame) -> list[Sample]:
    """Every single-file sample (deterministic)."""
    hour = packs["packed_at"].dt.hour.rename("hour")
    X = packs[["seal_temp_c", "seal_time_ms", "fill_weight_g"]].to_numpy()
    y = packs["leak"].to_numpy()
    by_line_shift = pd.crosstab(packs["line_id"], packs["shift"])
    hourly = packs.groupby(["line_id", hour]).size().rename("packs").reset_index()
    bins = pd.qcut(packs["fill_weight_g"][packs["product"] == "pasta-400"], 8)
    histogram = pd.DataFrame(
        {
            "bin": np.arange(1, 9),
            "lower_g": [round(i.left, 1) for i in bins.cat.categories],
            "upper_g": [round(i.right, 1) for i in bins.cat.categories],
            "packs": bins.value_counts(sort=False).to_numpy(),
        }
    )
    means = packs.groupby("product")[["fill_weight_g", "seal_temp_c"]].mean().round(2).reset_index()
    head_means = (
        packs.groupby("filler_head")
        .agg(packs=("pack_id", "count"), mean_fill_g=("fill_weight_g", "mean"))
        .round(2)
        .reset_index()
    )
    product_shift = packs.groupby(["product", "shift"]).size().rename("n").reset_index()
    line_counts = packs["line_id"].value_counts()
    other_films = deliveries[deliveries["film_type"] != "PET-AF"]
    weight_by_film = other_films.groupby("film_type")["weight_kg"].sum().round(1).reset_index()
    coefficients = _coefficients(packs)
    safe_notebook = builders.notebook(
        [
            {"markdown": "# Packs by line and shift"},
            {
                "source": "ct = pd.crosstab(packs.line_id, packs.shift)\nct",
                "outputs": [builders.html_output(by_line_shift.to_html())],
            },
            {
                "source": "print(means)",
                "outputs": [builders.stream_output(means.to_string())],
            },
            {
                "source": "plt.bar(...)",
                "outputs": [builders.image_output(_figure("bar", "png", packs))],
            },
        ]
    )
    report = (
        "Seal quality, March 2025\n\n"
        f"Across {len(packs)} packs the leak rate was {packs['leak'].mean():.1%}. "
        f"Mean seal temperature was {packs['seal_temp_c'].mean():.1f} C "
        f"(sd {packs['seal_temp_c'].std():.1f}). Line L1 ran the most packs.\n"
    ).encode()
    card = (
        b"# Model card: leak classifier\n\n"
        b"* Model: decision tree, depth 3, trained on 9,600 packs, tested on 2,400.\n"
        b"* Accuracy 0.97; AUC 0.61.\n"
        b"* Features: seal temperature, seal time, fill weight.\n"
    )
    metrics = json.dumps(
        {"model": "tree", "auc": 0.61, "accuracy": 0.97, "n_train": 9600, "n_test": 2400}
    ).encode()

    safe = [
        Sample("line_shift.csv", _csv(by_line_shift), True),
        Sample("line_shift.xlsx", _xlsx(by_line_shift.reset_index()), True),
        Sample("hourly_by_line.csv", _csv(hourly, index=False), True),
        Sample("fill_histogram.csv", _csv(histogram, index=False), True),
        Sample("means_by_product.csv", _csv(means, index=False), True),
        Sample("means_by_product.md", _markdown(means), True),
        Sample("head_means.csv", _csv(head_means, index=False), True),
        Sample("product_shift.json", product_shift.to_json(orient="records").encode(), True),
        Sample(
            "product_shift.jsonl",
            product_shift.to_json(orient="records", lines=True).encode(),
            True,
        ),
        Sample("line_counts.csv", _csv(line_counts), True),
        Sample("weight_by_film.csv", _csv(weight_by_film, index=False), True),
        Sample("regression.csv", _csv(coefficients), True),
        Sample("regression.txt", coefficients.to_string().encode(), True),
        Sample("report.txt", report, True),
        Sample("model_card.md", card, True),
        Sample("metrics.json", metrics, True),
        Sample("analysis.ipynb", safe_notebook, True),
        Sample("bar.png", _figure("bar", "png", packs), True),
        Sample("trend.svg", _figure("line", "svg", packs), True),
        Sample("bar.pdf", _figure("bar", "pdf", packs), True),
        Sample(
            "model_comparison.csv",
            b"model,n_features,folds,max_depth,auc,accuracy\n"
            b"tree,3,5,3,0.61,0.97\nforest,3,5,6,0.66,0.97\nlogistic,3,5,0,0.58,0.96\n",
            True,
        ),
        Sample(
            "tree.pkl",
            pickle.dumps(DecisionTreeClassifier(max_depth=3, min_samples_leaf=20).fit(X, y)),
            True,
        ),
        Sample(
            "forest.joblib",
            _joblib(RandomForestClassifier(8, min_samples_leaf=20, random_state=0).fit(X, y)),
            True,
        ),
        Sample("line_shift.html", by_line_shift.to_html().encode(), True),
        Sample(
            "results.zip",
            builders.zip_of(
                {"line_shift.csv": _csv(by_line_shift), "bar.png": _figure("bar", "png", packs)}
            ),
            True,
        ),
    ]

    rows = packs.sample(25, random_state=5)
    renamed = rows[["packed_at", "seal_temp_c", "fill_weight_g", "seal_time_ms"]].set_axis(
        ["when", "t_seal", "weight", "dwell"], axis=1
    )
    no_ids = rows.drop(columns=["operator_name", "operator_email", "pack_id"])
    reasons = (
        packs.groupby(["line_id", "reject_reason"]).agg(packs=("pack_id", "count")).reset_index()
    )
    deliveries_by = (
        deliveries.groupby(["film_type", "film_supplier"])
        .agg(deliveries=("delivery_id", "count"), kg=("weight_kg", "sum"))
        .round(1)
        .reset_index()
    )
    leaks_by_hour = packs[packs["leak"] == 1].groupby(["line_id", hour]).size().reset_index()
    dominated = deliveries.groupby("film_type")["weight_kg"].sum().round(1).reset_index()
    spend = deliveries.groupby("film_supplier")["price_eur"].sum().rename("spend").reset_index()
    mean_kg = deliveries.groupby("film_type").agg(avg_kg=("weight_kg", "mean")).round(2)
    by_operator = packs.groupby("operator_name").size().rename("packs")
    small_dof = coefficients.assign(df_resid=6)
    reject_counts = packs["reject_reason"].value_counts()
    unsafe = [
        Sample(
            "rows.jsonl",
            rows.head(20).to_json(orient="records", lines=True, date_format="iso").encode(),
            False,
            (SOURCE_ROWS,),
        ),
        Sample(
            "rows_renamed.json",
            renamed.to_json(orient="records", date_format="iso").encode(),
            False,
            (SOURCE_ROWS,),
        ),
        Sample(
            "deliveries_columnar.json",
            json.dumps(
                deliveries.sample(15, random_state=2)
                .drop(columns=["delivery_id"])
                .astype({"delivered_at": str})
                .to_dict(orient="list")
            ).encode(),
            False,
            (SOURCE_ROWS,),
        ),
        Sample("rows_renamed.csv", _csv(renamed, index=False), False, (SOURCE_ROWS,)),
        Sample("rows_no_ids.md", _markdown(no_ids.head(12)), False, (SOURCE_ROWS,)),
        Sample("rows_printed.txt", renamed.to_string().encode(), False, (SOURCE_ROWS,)),
        Sample("rows.html", no_ids.head(10).to_html().encode(), False, (SOURCE_ROWS,)),
        Sample(
            "rows_nested.json",
            json.dumps(
                {
                    "meta": {"n": 10},
                    # Timestamps as epoch milliseconds, as to_json writes them by default.
                    "rows": renamed.head(10)
                    .assign(when=lambda f: f["when"].astype("int64") // 10**6)
                    .to_dict(orient="records"),
                }
            ).encode(),
            False,
            (SOURCE_ROWS,),
        ),
        Sample(
            "sample.ipynb",
            builders.notebook(
                [
                    {
                        "source": "packs.sample(8)",
                        "outputs": [builders.html_output(no_ids.head(8).to_html())],
                    }
                ]
            ),
            False,
            (SOURCE_ROWS,),
        ),
        Sample("rejects_by_line.csv", _csv(reasons, index=False), False, SMALL),
        # Each cell is one supplier's total: dominated by a single contributor.
        Sample("deliveries_by_supplier.csv", _csv(deliveries_by, index=False), False, DOMINANCE),
        Sample("leaks_by_hour.csv", _csv(leaks_by_hour, index=False), False, SMALL),
        Sample("rejects.md", _markdown(reject_counts.reset_index()), False, SMALL),
        Sample("rejects_printed.txt", str(reject_counts).encode(), False, SMALL),
        Sample("rejects.json", reasons.to_json(orient="records").encode(), False, SMALL),
        Sample("rejects.xlsx", _xlsx(reasons), False, SMALL),
        Sample("weight_by_film_all.csv", _csv(dominated, index=False), False, DOMINANCE),
        Sample("spend_by_supplier.csv", _csv(spend, index=False), False, DOMINANCE),
        # Label and value renamed: the grouping and the measure are found by value.
        Sample(
            "weight_by_film_renamed.csv",
            _csv(dominated.set_axis(["film", "total"], axis=1), index=False),
            False,
            DOMINANCE,
        ),
        Sample("mean_kg_by_film.csv", _csv(mean_kg), False, DOMINANCE),
        Sample(
            "kg_pivot_by_supplier.csv",
            _csv(
                deliveries.pivot_table(
                    index="film_type", columns="film_supplier", values="weight_kg", aggfunc="sum"
                ).round(1)
            ),
            False,
            DOMINANCE,
        ),
        Sample(
            "packs_by_operator.csv",
            _csv(by_operator),
            False,
            ("identifiers.columns", "identifiers.source_values"),
        ),
        Sample(
            "contact.txt",
            f"Ask {packs['operator_email'].iloc[0]} about the night shift.\n".encode(),
            False,
            ("identifiers.personal",),
        ),
        Sample(
            "notes.txt",
            f"{packs['operator_name'].iloc[3]} had the most rejects on L6.\n".encode(),
            False,
            ("identifiers.source",),
        ),
        Sample(
            "small_note.txt",
            b"Only 3 packs had a foreign body; all on the night shift.\n",
            False,
            ("text.small_counts",),
        ),
        Sample("regression_small.csv", _csv(small_dof), False, ("statistics.residual_dof",)),
        Sample(
            "full_tree.pkl",
            pickle.dumps(DecisionTreeClassifier(random_state=0).fit(X, y)),
            False,
            ("model.leaf_size",),
        ),
        Sample(
            "forest_no_bootstrap.joblib",
            _joblib(
                RandomForestClassifier(5, bootstrap=False, min_samples_leaf=20).fit(
                    X[:3000], y[:3000]
                )
            ),
            False,
            ("model.forest_bootstrap",),
        ),
        Sample(
            "knn.joblib",
            _joblib(KNeighborsClassifier(5).fit(X[:500], y[:500])),
            False,
            ("model.training_rows",),
        ),
        Sample(
            "scatter.png",
            _figure("scatter", "png", packs),
            False,
            ("image.scatter_points",),
            Verdict.REVIEW,
        ),
        Sample(
            "scatter.svg",
            _figure("scatter", "svg", packs),
            False,
            ("image.scatter_points",),
            Verdict.REVIEW,
        ),
        Sample(
            "scatter.pdf",
            _figure("scatter", "pdf", packs),
            False,
            ("image.scatter_points",),
            Verdict.REVIEW,
        ),
        Sample(
            "nested.zip",
            builders.zip_of({"inner.zip": builders.zip_of({"a.csv": _csv(by_line_shift)})}),
            False,
            ("archive.nesting",),
        ),
        Sample(
            "emails.ipynb",
            builders.notebook(
                [
                    {
                        "source": "print(packs.operator_email.unique()[:3])",
                        "outputs": [
                            builders.stream_output(str(list(packs["operator_email"].unique()[:3])))
                        ],
                    }
                ]
            ),
            False,
            ("identifiers.personal", "identifiers.source"),
        ),
        Sample(
            "figure_note.png",
            builders.png(
                chunks=[(b"tEXt", f"Comment\x00{packs['operator_name'].iloc[0]}".encode())]
            ),
            False,
            ("image.metadata",),
        ),
    ]
    return safe + unsafe


def requests(packs: pd.DataFrame, deliveries: pd.DataFrame) -> list[RequestCase]:
    """Requests whose files are each safe but which disclose together (or do not)."""
    by_product = packs.groupby("product").size().rename("packs").reset_index()
    # All packs but the few with a foreign body or a label fault on line L6.
    few = packs[
        ~((packs["line_id"] == "L6") & packs["reject_reason"].isin(["label", "foreign_body"]))
    ]
    by_product_few = few.groupby("product").size().rename("packs").reset_index()
    # All packs but line L6: a large group, nothing small to subtract.
    big = packs[packs["line_id"] != "L6"].groupby("product").size().rename("packs").reset_index()
    morning = packs[packs["shift"] == "morning"].groupby("product").size().rename("packs")
    evening = packs[packs["shift"] == "evening"].groupby("product").size().rename("packs")
    return [
        RequestCase(
            "one request, small group",
            [
                ("all.csv", _csv(by_product, index=False)),
                ("most.csv", _csv(by_product_few, index=False)),
            ],
            False,
            rules=("request.differencing",),
        ),
        RequestCase(
            "against a release",
            [("most.json", by_product_few.to_json(orient="records").encode())],
            False,
            released=[("all.csv", _csv(by_product, index=False))],
            rules=("request.differencing",),
        ),
        RequestCase(
            "large group",
            [("all.csv", _csv(by_product, index=False)), ("no_l6.csv", _csv(big, index=False))],
            True,
        ),
        RequestCase(
            "two shifts",
            [("morning.csv", _csv(morning)), ("evening.csv", _csv(evening))],
            True,
        ),
    ]
