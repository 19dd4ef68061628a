"""A synthetic press line: one row per press stroke in a sheet-metal stamping plant.

The data are invented but shaped like the real thing so that analyses, disclosure
checks and benchmarks behave realistically: machines differ in force and wear, lots
of coil come from a few supplier companies with their own thickness spread, die
temperature follows the day, and defects are likelier when the die runs hot, the press
vibrates or the sheet is off-gauge. Everything is deterministic for a seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: Columns that identify a machine, a lot, a person or a company (never released).
IDENTIFIER_COLUMNS = ("machine_id", "lot_id", "operator_id", "company")

_COMPANIES = ("Nordstahl GmbH", "Acme Coil Ltd", "Ferro Lusitana SA", "Kaizen Sheet KK")
_COMPANY_WEIGHTS = (0.45, 0.30, 0.17, 0.08)
_COMPANY_THICKNESS_SD = (0.010, 0.018, 0.025, 0.012)  # mm: suppliers differ in gauge control
_GRADES = ("DC01", "DC04", "DX51D", "S355MC")
_GRADE_FORCE = (1.00, 0.92, 1.05, 1.45)  # tonnage needed relative to DC01
_NOMINAL_MM = (0.8, 1.0, 1.2, 1.5, 2.0)
_DEFECT_TYPES = ("crack", "wrinkle", "burr", "springback", "scratch")
_SHIFTS = ("early", "late", "night")
_MACHINES = 12
_OPERATORS_PER_SHIFT = 14


def generate_press_line(rows: int = 300_000, seed: int = 7) -> pd.DataFrame:
    """The press-line data set: ``rows`` strokes, deterministic for ``seed``.

    Columns: stroke_id, timestamp, machine_id, lot_id, operator_id, shift, company,
    material_grade, sheet_thickness_mm, force_kn, stroke_mm, speed_spm, temperature_c,
    vibration_rms, oil_pressure_bar, defect (0/1), defect_type ("none" when no
    defect) and rework_cost_eur (0 unless a defect; heavy-tailed).
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    rng = np.random.default_rng(seed)

    # Time: strokes arrive along the line every few seconds, from 1 Jan 2024 06:00.
    gaps_ms = rng.exponential(8_000.0, rows).astype(np.int64) + 1
    start = np.datetime64("2024-01-01T06:00:00", "ms")
    timestamp = start + np.cumsum(gaps_ms).astype("timedelta64[ms]")
    hour = ((np.cumsum(gaps_ms) // 3_600_000) + 6) % 24
    shift_idx = np.where(hour < 6, 2, np.where(hour < 14, 0, np.where(hour < 22, 1, 2)))

    # Machines: each has a base force, a nominal speed and its own wear (vibration).
    machine = rng.choice(_MACHINES, rows, p=_weights(_MACHINES, rng))
    machine_force = rng.normal(1.0, 0.06, _MACHINES)
    machine_speed = rng.integers(18, 42, _MACHINES)
    machine_wear = rng.gamma(2.0, 0.25, _MACHINES)
    machine_temp = rng.normal(0.0, 3.0, _MACHINES)

    # Lots: consecutive runs of a few hundred strokes from one coil of one supplier.
    lot_sizes = rng.integers(150, 900, rows // 150 + 2)
    lot = np.repeat(np.arange(lot_sizes.size), lot_sizes)[:rows]
    n_lots = int(lot.max()) + 1
    lot_company = rng.choice(len(_COMPANIES), n_lots, p=_COMPANY_WEIGHTS)
    lot_grade = rng.choice(len(_GRADES), n_lots, p=(0.35, 0.30, 0.25, 0.10))
    lot_nominal = rng.choice(_NOMINAL_MM, n_lots)
    lot_offset = rng.normal(0.0, np.take(_COMPANY_THICKNESS_SD, lot_company))
    company = lot_company[lot]
    grade = lot_grade[lot]
    nominal = lot_nominal[lot]
    thickness = np.round(nominal + lot_offset[lot] + rng.normal(0, 0.006, rows), 3)

    # Operators work one shift each.
    operator = shift_idx * _OPERATORS_PER_SHIFT + rng.integers(0, _OPERATORS_PER_SHIFT, rows)

    # Sensors.
    force = (420.0 + 610.0 * thickness) * np.take(_GRADE_FORCE, grade) * machine_force[
        machine
    ] + rng.normal(0, 14.0, rows)
    day_phase = np.sin((hour - 9) / 24.0 * 2 * np.pi)
    drift = np.cumsum(rng.normal(0, 0.02, rows))  # slow drift of the hall's cooling
    temperature = 41.0 + 7.5 * day_phase + machine_temp[machine] + 0.004 * force / 10
    temperature = temperature + np.clip(drift - drift.mean(), -6, 6) + rng.normal(0, 1.1, rows)
    vibration = rng.lognormal(np.log(0.9 + machine_wear[machine]), 0.28, rows)
    stroke = rng.normal(120.0, 0.35, rows) - 0.8 * (thickness - nominal)
    speed = machine_speed[machine] + rng.integers(-2, 3, rows)
    oil = rng.normal(212.0, 4.0, rows) - 0.6 * (temperature - 41.0)

    # Defects: a logistic model of heat, vibration, gauge error and grade.
    gauge_error = np.abs(thickness - nominal) / nominal
    logit = (
        -3.9
        + 0.09 * (temperature - 41.0)
        + 0.85 * (vibration - 1.4)
        + 22.0 * gauge_error
        + 0.55 * (grade == 3)
        + 0.25 * (shift_idx == 2)
    )
    defect = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))
    # The kind of defect follows its cause: thin sheet cracks, thick wrinkles, worn
    # presses leave burrs, high-strength steel springs back.
    scores = np.stack(
        [
            1.0 + 30.0 * np.clip(nominal - thickness, 0, None) + 0.05 * (temperature - 41),
            1.0 + 30.0 * np.clip(thickness - nominal, 0, None),
            0.8 + 1.2 * vibration,
            0.5 + 2.5 * (grade == 3),
            0.9 * np.ones(rows),
        ],
        axis=1,
    )
    scores = scores / scores.sum(axis=1, keepdims=True)
    pick = (rng.random(rows)[:, None] > np.cumsum(scores, axis=1)).sum(axis=1)
    defect_type = np.where(defect, np.take(_DEFECT_TYPES, np.minimum(pick, 4)), "none")
    rework = np.where(defect, rng.lognormal(3.2, 1.1, rows), 0.0)
    # Rarely the die crashes: the part cracks and the repair dwarfs every other cost.
    # These few records dominate any sum of rework costs they fall into.
    crash = rng.random(rows) < 0.0004
    defect = defect | crash
    defect_type = np.where(crash, "crack", defect_type)
    rework = np.where(crash, np.round(rng.uniform(15_000, 60_000, rows), 2), rework)

    frame = pd.DataFrame(
        {
            "stroke_id": np.arange(1, rows + 1, dtype=np.int64),
            "timestamp": timestamp,
            "machine_id": pd.Series(machine).map(lambda m: f"PR-{m + 1:02d}"),
            "lot_id": pd.Series(lot).map(lambda n: f"LOT-24-{n + 1:05d}"),
            "operator_id": pd.Series(operator).map(lambda o: f"OP-{o + 101:03d}"),
            "shift": np.take(_SHIFTS, shift_idx),
            "company": np.take(_COMPANIES, company),
            "material_grade": np.take(_GRADES, grade),
            "sheet_thickness_mm": thickness,
            "force_kn": np.round(force, 1),
            "stroke_mm": np.round(stroke, 2),
            "speed_spm": speed.astype(np.int64),
            "temperature_c": np.round(temperature, 1),
            "vibration_rms": np.round(vibration, 3),
            "oil_pressure_bar": np.round(oil, 1),
            "defect": defect.astype(np.int64),
            "defect_type": defect_type,
            "rework_cost_eur": np.round(rework, 2),
        }
    )
    return frame


def write_press_line(directory: Path, rows: int = 300_000, seed: int = 7) -> list[Path]:
    """Write ``press_line.csv`` and ``press_line.parquet`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    frame = generate_press_line(rows, seed)
    csv_path = directory / "press_line.csv"
    parquet_path = directory / "press_line.parquet"
    frame.to_csv(csv_path, index=False, date_format="%Y-%m-%d %H:%M:%S.%f")
    frame.to_parquet(parquet_path, index=False)
    return [csv_path, parquet_path]


def _weights(n: int, rng: np.random.Generator) -> np.ndarray:
    # Some presses run more than others; a Dirichlet draw keeps every share positive.
    return rng.dirichlet(np.full(n, 6.0))
