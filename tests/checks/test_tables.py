"""Table rules one by one, with the evidence an officer reads."""

from __future__ import annotations

import pandas as pd
from cleanroom.checks import CheckContext, DisclosurePolicy, Verdict, check_bytes
from cleanroom.checks.tables import check_frame


def rules(findings: list) -> dict[str, Verdict]:
    out: dict[str, Verdict] = {}
    for f in findings:
        out[f.rule] = max(out.get(f.rule, Verdict.PASS), f.verdict)
    return out


def test_small_counts_name_the_cells(bare_context: CheckContext) -> None:
    table = pd.DataFrame({"grade": ["a", "b", "c"], "n": [25, 4, 0]})
    found = check_frame(table, bare_context)
    small = next(f for f in found if f.rule == "table.small_counts")
    assert small.verdict is Verdict.FAIL
    assert small.evidence["cells"] == [{"row": 2, "label": "b", "column": "n", "value": 4.0}]
    assert small.evidence["threshold"] == 10
    assert rules(found)["table.zero_counts"] is Verdict.REVIEW


def test_crosstab_cells_are_counts(bare_context: CheckContext) -> None:
    table = pd.DataFrame({"shift": ["early", "late"], "burr": [30, 12], "crack": [11, 3]})
    found = check_frame(table, bare_context)
    small = next(f for f in found if f.rule == "table.small_counts")
    assert small.evidence["crosstab"] is True
    assert [c["column"] for c in small.evidence["cells"]] == ["crack"]


def test_dataset_override_raises_threshold(tmp_path, bare_context: CheckContext) -> None:
    policy = DisclosurePolicy.from_mapping(
        {"datasets": {"strict": {"tables": {"min_cell_count": 30}}}}, datasets=["strict"]
    )
    table = pd.DataFrame({"grade": ["a", "b"], "n": [25, 40]})
    assert rules(check_frame(table, bare_context))["table.checked"] is Verdict.PASS
    strict = CheckContext(policy=policy)
    assert rules(check_frame(table, strict))["table.small_counts"] is Verdict.FAIL


def test_personal_identifiers_in_cells_and_columns(bare_context: CheckContext) -> None:
    table = pd.DataFrame({"who": ["x@example.org", "b"], "email": ["c", "d"], "n": [20, 30]})
    found = rules(check_frame(table, bare_context))
    assert found["identifiers.personal"] is Verdict.FAIL
    assert found["identifiers.columns"] is Verdict.FAIL


def test_source_identifier_values_under_another_name(
    source_frame: pd.DataFrame, context: CheckContext
) -> None:
    counts = source_frame.groupby("lot_id").size().rename("n").reset_index()
    counts = counts.rename(columns={"lot_id": "batch"})
    found = check_frame(counts, context)
    hit = next(f for f in found if f.rule == "identifiers.source_values")
    assert hit.evidence["column"] == "batch"
    assert hit.evidence["values"][0].startswith("LOT-")


def test_row_level_shape_without_source(bare_context: CheckContext) -> None:
    table = pd.DataFrame({"a": range(200), "b": [1.5] * 200})
    assert rules(check_frame(table, bare_context))["table.row_level"] is Verdict.REVIEW
    agg = pd.DataFrame({"a": range(200), "mean_b": [1.5] * 200})
    assert "table.row_level" not in rules(check_frame(agg, bare_context))


def test_row_level_share_of_source(source_frame: pd.DataFrame, context: CheckContext) -> None:
    # 5% of 20,000 rows, aggregated-looking names so only the share rule speaks.
    table = pd.DataFrame({"bin": range(1000), "mean_force": [1.0] * 1000, "n": [50] * 1000})
    found = rules(check_frame(table, context))
    assert found["table.row_level_source"] is Verdict.REVIEW


def test_source_rows_survive_reordering_and_case(
    source_frame: pd.DataFrame, context: CheckContext
) -> None:
    rows = source_frame.iloc[[10, 500, 7000]][["vibration_rms", "force_kn", "sheet_thickness_mm"]]
    rows = rows.rename(columns=str.upper)
    found = check_frame(rows, context)
    hit = next(f for f in found if f.rule == "table.source_rows")
    assert hit.evidence["rows"] == [1, 2, 3]
    assert hit.evidence["source_rows"] == [11, 501, 7001]


def test_aggregates_do_not_match_source_rows(
    source_frame: pd.DataFrame, context: CheckContext
) -> None:
    means = source_frame.groupby(["shift", "material_grade"])[
        ["force_kn", "vibration_rms", "sheet_thickness_mm"]
    ].mean()
    assert "table.source_rows" not in rules(check_frame(means, context))


def test_dominance_from_source_contributions(
    source_frame: pd.DataFrame, context: CheckContext
) -> None:
    sums = source_frame.groupby(["shift", "defect_type"])["rework_cost_eur"].sum().reset_index()
    found = [f for f in check_frame(sums, context) if f.rule.startswith("table.dominance")]
    assert found, "the die-crash costs should dominate some cells"
    labels = {c["label"] for f in found for c in f.evidence["cells"]}
    assert all("crack" in label for label in labels)
    # Force is spread evenly: no dominance.
    force = source_frame.groupby("shift")["force_kn"].sum().rename("force_kn_sum").reset_index()
    assert not [f for f in check_frame(force, context) if f.rule.startswith("table.dominance")]


def test_small_source_cells_behind_means(source_frame: pd.DataFrame, context: CheckContext) -> None:
    means = source_frame.groupby(["material_grade", "defect_type"])["force_kn"].mean().reset_index()
    found = rules(check_frame(means, context))
    assert found["table.small_source_cells"] is Verdict.FAIL
    two = source_frame.groupby(["material_grade", "defect_type"])[["force_kn", "temperature_c"]]
    cells = [f for f in check_frame(two.mean(), context) if f.rule == "table.small_source_cells"]
    assert {f.evidence["cells"][0]["column"] for f in cells} == {"force_kn", "temperature_c"}


def test_residual_dof(bare_context: CheckContext) -> None:
    table = pd.DataFrame({"term": ["x"], "estimate": [0.3], "df_resid": [7]})
    assert rules(check_frame(table, bare_context))["statistics.residual_dof"] is Verdict.FAIL
    ok = table.assign(df_resid=70)
    assert "statistics.residual_dof" not in rules(check_frame(ok, bare_context))


def test_min_max_against_source(source_frame: pd.DataFrame, context: CheckContext) -> None:
    table = source_frame.groupby("shift")["rework_cost_eur"].agg(["mean", "max"]).reset_index()
    found = check_frame(table, context)
    hit = next(f for f in found if f.rule == "statistics.extremes")
    assert hit.verdict is Verdict.REVIEW
    assert hit.evidence["cells"][0]["column"] == "max"


def test_huge_cell_fails_fast(bare_context: CheckContext) -> None:
    data = b"a,n\n" + b"x" * 300_000 + b",12\n"
    report = check_bytes(data, "big.csv", bare_context)
    assert "table.huge_cell" in rules(report.findings)
    assert report.verdict is Verdict.FAIL


def test_ragged_csv_falls_back_to_text(bare_context: CheckContext) -> None:
    data = b'a,b\n1,2\n3,4,5,6\n"unterminated,7\n'
    report = check_bytes(data, "r.csv", bare_context)
    assert rules(report.findings)["text.unparsed_rows"] is Verdict.REVIEW


def test_printed_frames_are_tables(source_frame: pd.DataFrame, context: CheckContext) -> None:
    from cleanroom.checks.text_tables import tables_in_text

    printed = str(source_frame[["force_kn", "temperature_c", "oil_pressure_bar"]].head(8))
    frames = tables_in_text("Some words first.\n\n" + printed + "\n\nand after.")
    assert len(frames) == 1 and len(frames[0]) == 8
    report = check_bytes(printed.encode(), "out.txt", context)
    assert rules(report.findings)["table.source_rows"] is Verdict.FAIL
    prose = b"The press ran for 12 hours on 3 shifts.\nNothing else to report today.\n"
    assert tables_in_text(prose.decode()) == []


def _untimed_combo(context: CheckContext) -> list[str]:
    table = context.sources[0].tables[0]
    return next(c for c, _h, _r in table.combos if "timestamp" not in c and "stroke_id" not in c)


def test_json_and_markdown_tables(source_frame: pd.DataFrame, context: CheckContext) -> None:
    cols = _untimed_combo(context)
    head = source_frame[cols].head(4)
    for orient in ("records", "columns", "split", "index"):
        report = check_bytes(head.to_json(orient=orient).encode(), "h.json", context)
        assert rules(report.findings).get("table.source_rows") is Verdict.FAIL, orient
    lines = ["| | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += [f"| {i} | " + " | ".join(str(v) for v in row) + " |" for i, row in head.iterrows()]
    report = check_bytes("\n".join(lines).encode(), "h.md", context)
    assert report.detected_type == "text"
    assert rules(report.findings)["table.source_rows"] is Verdict.FAIL
    crosstab = pd.crosstab(source_frame["shift"], source_frame["defect_type"])
    # A safe cross-tabulation in JSON passes: JSON is parsed, not sent to review unread.
    assert check_bytes(crosstab.to_json().encode(), "c.json", context).verdict is Verdict.PASS
