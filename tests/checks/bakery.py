"""A third synthetic dataset, unlike the press line and the packaging plant: a bakery.

Its column names and shapes were chosen apart from the checks' code, so that the corpus
built from it (``bakery_corpus.py``) measures how the checks generalise:

* ``bakes``: one row per batch of dough baked (batch_no, baked_at, oven OV-101..OV-105,
  product, shift early/day/late, baker, baker_mail, baker_phone, dough_kg, proof_min,
  oven_temp, core_temp, loaves, scrapped loaves, fault);
* ``flour``: one row per flour delivery (lot, received, mill, grade, sacks, net_kg,
  invoice_eur): one mill delivers almost all of the rye, and one spelt delivery
  outweighs all the others of its grade (dominance by a record and by a contributor).

Its roles card declares the bakers' names, e-mails and phones as direct identifiers and
the mill as the contributor (a word the inference does not know). Deterministic for a seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

PRODUCTS = ("sourdough", "baguette", "rye-loaf", "croissant", "brioche", "focaccia")
OVENS = tuple(f"OV-{i}" for i in range(101, 106))
MILLS = ("Mühle Adler GmbH", "Molino Rossi SpA", "Fairhaven Mills", "Moulin Dubois SA")
GRADES = ("T55", "T65", "T80", "rye-997", "spelt-630")
FAULTS = ("none", "burnt", "under-proofed", "misshapen", "foreign-body")
GIVEN = ("Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen", "Yara")
FAMILY = ("Kowalski", "Moreau", "Okafor", "Lindqvist", "Bianchi", "Nakamura", "Duarte")

ROLES = {
    "batch_no": "label",
    "baked_at": "time",
    "oven": "label",
    "product": "label",
    "shift": "label",
    "baker": "direct_identifier",
    "baker_mail": "direct_identifier",
    "baker_phone": "direct_identifier",
    "dough_kg": "measure",
    "proof_min": "measure",
    "oven_temp": "measure",
    "core_temp": "measure",
    "loaves": "measure",
    "scrapped": "measure",
    "fault": "label",
    "lot": "label",
    "received": "time",
    "mill": "contributor",
    "grade": "label",
    "sacks": "measure",
    "net_kg": "measure",
    "invoice_eur": "measure",
}


def bakers() -> list[tuple[str, str, str]]:
    """(name, e-mail, phone) of the 21 bakers."""
    out = []
    for i in range(21):
        given, family = GIVEN[i % 10], FAMILY[(i * 2 + i // 10) % 7]
        mail = f"{given[0].lower()}.{family.lower()}@crumb-and-crust.example"
        phone = f"+44 7700 9{i:02d}{(i * 37) % 1000:03d}"
        out.append((f"{given} {family}", mail, phone))
    return out


def generate_bakes(rows: int = 9_000, seed: int = 21) -> pd.DataFrame:
    """The ``bakes`` table."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(300.0, rows) + 30
    baked_at = pd.Timestamp("2025-05-05 03:00") + pd.to_timedelta(np.cumsum(gaps), unit="s")
    hour = baked_at.hour.to_numpy()
    shift = np.where(
        hour < 3, "late", np.where(hour < 11, "early", np.where(hour < 19, "day", "late"))
    )
    staff = bakers()
    who = (
        np.where(shift == "early", 0, np.where(shift == "day", 7, 14)) + rng.integers(0, 7, rows)
    ).astype(int)
    product = rng.choice(len(PRODUCTS), rows, p=(0.25, 0.25, 0.15, 0.15, 0.1, 0.1))
    oven = rng.choice(len(OVENS), rows, p=(0.3, 0.25, 0.2, 0.15, 0.1))
    dough = np.round(rng.gamma(9.0, 4.0, rows) + 5, 2)
    loaves = np.maximum(1, (dough / np.take((0.8, 0.35, 0.9, 0.07, 0.5, 0.6), product)).astype(int))
    proof = rng.integers(35, 240, rows)
    oven_temp = np.round(rng.normal(225.0, 6.0, rows) - 12 * (product == 3), 1)
    core = np.round(rng.normal(96.0, 1.5, rows), 1)
    u = rng.random(rows)
    fault = np.where(u < 0.05, 1, np.where(u < 0.09, 2, np.where(u < 0.12, 3, 0)))
    fault = np.where(rng.random(rows) > 0.9993, 4, fault)
    scrapped = np.where(fault > 0, rng.integers(1, 30, rows), rng.integers(0, 2, rows))
    return pd.DataFrame(
        {
            "batch_no": np.arange(710_001, 710_001 + rows),
            "baked_at": baked_at.floor("s"),
            "oven": np.take(OVENS, oven),
            "product": np.take(PRODUCTS, product),
            "shift": shift,
            "baker": [staff[i][0] for i in who],
            "baker_mail": [staff[i][1] for i in who],
            "baker_phone": [staff[i][2] for i in who],
            "dough_kg": dough,
            "proof_min": proof,
            "oven_temp": oven_temp,
            "core_temp": core,
            "loaves": loaves,
            "scrapped": scrapped,
            "fault": np.take(FAULTS, fault),
        }
    )


def generate_flour(rows: int = 700, seed: int = 22) -> pd.DataFrame:
    """The ``flour`` table: rye from one mill; one spelt delivery outweighs the rest."""
    rng = np.random.default_rng(seed)
    grade = rng.choice(len(GRADES), rows, p=(0.35, 0.25, 0.2, 0.12, 0.08))
    mill = np.where(
        grade == 3,
        np.where(rng.random(rows) < 0.96, 0, 2),
        rng.choice(4, rows, p=(0.15, 0.35, 0.3, 0.2)),
    )
    sacks = rng.integers(10, 60, rows)
    net = np.round(sacks * rng.normal(25.0, 0.4, rows), 1)
    spelt = np.flatnonzero(grade == 4)
    # One bulk order of spelt: a single record holds most of its grade's weight.
    sacks[spelt[0]] = 4_000
    net[spelt[0]] = 100_020.5
    invoice = np.round(net * rng.normal(0.62, 0.05, rows), 2)
    received = pd.Timestamp("2025-01-06 06:00") + pd.to_timedelta(
        np.sort(rng.integers(0, 86400 * 200, rows)), unit="s"
    )
    return pd.DataFrame(
        {
            "lot": [f"FL{i:05d}-{chr(65 + i % 26)}" for i in rng.permutation(rows) + 30_000],
            "received": received,
            "mill": np.take(MILLS, mill),
            "grade": np.take(GRADES, grade),
            "sacks": sacks,
            "net_kg": net,
            "invoice_eur": invoice,
        }
    )


def write_bakery(folder: Path, rows: int = 9_000, seed: int = 21) -> list[Path]:
    """Both tables (bakes as Parquet, flour as CSV) and the roles card; the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    bakes, flour = generate_bakes(rows, seed), generate_flour(seed=seed + 1)
    bakes.to_parquet(folder / "bakes.parquet", index=False)
    flour.to_csv(folder / "flour.csv", index=False)
    (folder / "roles.yaml").write_text(yaml.safe_dump({"columns": ROLES}), encoding="utf-8")
    return [folder / "bakes.parquet", folder / "flour.csv"]
