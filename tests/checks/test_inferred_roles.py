"""Roles inferred when a provider declared none: a third shape of plant (injection
moulding: cycles and resin deliveries), registered without a roles card.

Machine and mould ids are labels, operators' names and e-mails are direct
identifiers, the resin supplier is a contributor; outputs grouped by machines and
moulds pass, outputs naming operators or dominated by one supplier do not.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cleanroom.checks import (
    CheckContext,
    DisclosurePolicy,
    Verdict,
    build_source_index,
    check_bytes,
    load_source_index,
)
from cleanroom.checks.roles import RolesError, infer_roles, parse_role_assignments, validate_roles


def _cycles(rows: int = 8_000, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2025-06-02 06:00")
    started = start + pd.to_timedelta(np.cumsum(rng.exponential(4.0, rows)), unit="s")
    names = [f"Op{i} Person{i}" for i in range(12)]
    op = rng.integers(0, 12, rows)
    return pd.DataFrame(
        {
            "cycle_id": np.arange(900_000, 900_000 + rows),
            "started_at": started.floor("s"),
            "machine_id": np.take([f"IMM-{i:02d}" for i in range(1, 9)], rng.integers(0, 8, rows)),
            "mould_id": np.take(
                [f"MLD-{i}" for i in (101, 117, 123, 140, 152)], rng.integers(0, 5, rows)
            ),
            "operator_name": np.take(names, op),
            "operator_email": [f"op{i}@moulder.example" for i in op],
            "resin_grade": np.take(["PP-H", "ABS-2", "PA6-GF"], rng.integers(0, 3, rows)),
            "cycle_time_s": np.round(rng.normal(31.0, 1.5, rows), 2),
            "melt_temp_c": np.round(rng.normal(232.0, 4.0, rows), 1),
            "part_weight_g": np.round(rng.normal(48.0, 0.6, rows), 2),
            "scrap": (rng.random(rows) < 0.03).astype(int),
        }
    )


def _deliveries(rows: int = 400, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    grade = rng.integers(0, 3, rows)
    supplier = np.where(
        grade == 2, np.where(rng.random(rows) < 0.96, 0, 1), rng.integers(0, 4, rows)
    )
    return pd.DataFrame(
        {
            "delivery_no": [f"RD-{i:05d}" for i in range(rows)],
            "received_on": pd.Timestamp("2025-01-01")
            + pd.to_timedelta(rng.integers(0, 150, rows), unit="D"),
            "supplier": np.take(["Polymera", "Resinco", "Granuplast", "Nordpoly"], supplier),
            "resin_grade": np.take(["PP-H", "ABS-2", "PA6-GF"], grade),
            "kg": np.round(rng.normal(1000, 150, rows), 1),
        }
    )


@pytest.fixture(scope="module")
def moulding(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[pd.DataFrame, pd.DataFrame, CheckContext]:
    folder = tmp_path_factory.mktemp("moulding")
    cycles, deliveries = _cycles(), _deliveries()
    cycles.to_parquet(folder / "cycles.parquet")
    deliveries.to_csv(folder / "resin_deliveries.csv", index=False)
    out = folder / "index"
    build_source_index([folder / "cycles.parquet", folder / "resin_deliveries.csv"], out)
    return cycles, deliveries, CheckContext(DisclosurePolicy.load(), [load_source_index(out)])


def test_inferred_roles(moulding: tuple[pd.DataFrame, pd.DataFrame, CheckContext]) -> None:
    _cycles_frame, deliveries, context = moulding
    roles = context.sources[0].roles
    assert roles["machine_id"] == roles["mould_id"] == "label"
    assert roles["operator_name"] == roles["operator_email"] == "direct_identifier"
    assert roles["supplier"] == "contributor"
    assert roles["started_at"] == "time" and roles["cycle_time_s"] == "measure"
    assert infer_roles(deliveries)["kg"] == "measure"
    assert context.sources[0].identifier_columns == {"operator_name", "operator_email"}


def _verdict(data: bytes, context: CheckContext) -> tuple[Verdict, set[str]]:
    report = check_bytes(data, "out", context)
    return report.verdict, {f.rule for f in report.findings if f.verdict > Verdict.PASS}


def test_machine_and_mould_tables_pass(
    moulding: tuple[pd.DataFrame, pd.DataFrame, CheckContext],
) -> None:
    cycles, deliveries, context = moulding
    hour = cycles["started_at"].dt.hour.rename("hour")
    outputs = {
        "by mould and resin": pd.crosstab(cycles["mould_id"], cycles["resin_grade"]).to_csv(),
        "by machine and hour": cycles.groupby(["machine_id", hour])
        .size()
        .reset_index()
        .to_csv(index=False),
        "mean cycle time by machine": cycles.groupby("machine_id")
        .agg(cycles=("cycle_id", "count"), mean_cycle_s=("cycle_time_s", "mean"))
        .round(2)
        .to_csv(),
        "deliveries by grade (no dominant supplier)": deliveries[
            deliveries["resin_grade"] != "PA6-GF"
        ]
        .groupby("resin_grade")
        .agg(deliveries=("delivery_no", "count"), kg=("kg", "sum"))
        .round(1)
        .to_json(orient="index"),
    }
    for name, text in outputs.items():
        verdict, rules = _verdict(text.encode(), context)
        assert verdict is Verdict.PASS, (name, rules)


def test_operators_and_a_dominant_supplier_do_not_pass(
    moulding: tuple[pd.DataFrame, pd.DataFrame, CheckContext],
) -> None:
    cycles, deliveries, context = moulding
    by_operator = cycles.groupby("operator_name").size().rename("cycles").to_csv()
    assert "identifiers.source_values" in _verdict(by_operator.encode(), context)[1]
    kg = deliveries.groupby("resin_grade")["kg"].sum().round(1).to_csv()
    verdict, rules = _verdict(kg.encode(), context)
    assert verdict is Verdict.FAIL and rules & {"table.dominance_nk", "table.dominance_p_percent"}
    rows = cycles.sample(12, random_state=1)[["started_at", "cycle_time_s", "melt_temp_c"]]
    jsonl = rows.set_axis(["t", "ct", "melt"], axis=1).to_json(
        orient="records", lines=True, date_format="iso"
    )
    assert "table.source_rows" in _verdict(jsonl.encode(), context)[1]
    scrap = (
        cycles[cycles["scrap"] == 1]
        .groupby(["machine_id", "mould_id"])
        .agg(scrapped=("cycle_id", "count"))
    )
    assert "table.small_counts" in _verdict(scrap.to_csv().encode(), context)[1]


def test_declared_roles_are_validated(tmp_path: Path) -> None:
    assert validate_roles({"Supplier ": "contributor"}) == {"supplier": "contributor"}
    with pytest.raises(RolesError, match="unknown role 'owner'"):
        validate_roles({"supplier": "owner"})
    with pytest.raises(RolesError, match="has no such column"):
        validate_roles({"resin": "label"}, columns={"supplier"})
    with pytest.raises(RolesError, match="COLUMN=ROLE"):
        parse_role_assignments(["supplier"])
    frame = pd.DataFrame({"machine": ["a", "b"] * 50, "kg": np.arange(100.0)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "roles.yaml").write_text(json.dumps({"columns": {"machine": "contributor"}}))
    build_source_index([tmp_path / "t.csv"], tmp_path / "idx")
    assert load_source_index(tmp_path / "idx").roles["machine"] == "contributor"
    (tmp_path / "roles.yaml").write_text(json.dumps({"columns": {"machine": "boss"}}))
    from cleanroom.checks import CheckInputError

    with pytest.raises(CheckInputError, match="unknown role 'boss'"):
        build_source_index([tmp_path / "t.csv"], tmp_path / "idx2")
