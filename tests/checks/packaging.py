"""A second synthetic dataset, unlike the demo press line: a food packaging plant.

Two tables, so that checks must find which table a grouping and a measure come from:

* ``packs``: one row per filled and sealed tray (pack_id, packed_at, line_id L1..L6,
  filler_head 1..12, operator_name, operator_email, shift, product, film_type,
  fill_weight_g, seal_temp_c, seal_time_ms, leak 0/1, reject_reason);
* ``film_deliveries``: one row per delivery of sealing film (delivery_id,
  delivered_at, film_supplier, film_type, rolls, weight_kg, price_eur): one supplier
  delivers almost all of the PET-AF film, so totals by film type are dominated by one
  contributor although each cell holds many deliveries.

Its roles card (``roles.yaml``) declares the operators' names and e-mails as direct
identifiers and the film supplier as the contributor; lines and filler heads are
labels. Both tables have ``film_type``; only the deliveries have the film's weight.
Everything is deterministic for a seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

SUPPLIERS = ("Filmtech BV", "Polysack Oy", "Klar Folien AG", "Sealwell Ltd")
FILM_TYPES = ("PET-AF", "PP-CLR", "PE-BAR", "APET-MAP")
PRODUCTS = ("salad-200", "pasta-400", "soup-500", "dessert-150", "curry-350")
LINES = tuple(f"L{i}" for i in range(1, 7))
FIRST = ("Ana", "Björn", "Chloé", "Dmitri", "Eva", "Farid", "Greta", "Hiro", "Ines", "Jonas")
LAST = ("Silva", "Lund", "Martin", "Petrov", "Novak", "Haddad", "Berg", "Sato", "Ruiz", "Weber")

ROLES = {
    "pack_id": "label",
    "packed_at": "time",
    "line_id": "label",
    "filler_head": "label",
    "operator_name": "direct_identifier",
    "operator_email": "direct_identifier",
    "shift": "label",
    "product": "label",
    "film_supplier": "contributor",
    "fill_weight_g": "measure",
    "seal_temp_c": "measure",
    "seal_time_ms": "measure",
    "leak": "label",
    "reject_reason": "label",
    "delivery_id": "label",
    "delivered_at": "time",
    "film_type": "label",
    "rolls": "measure",
    "weight_kg": "measure",
    "price_eur": "measure",
}


def operators() -> list[tuple[str, str]]:
    """(name, e-mail) of the 30 operators."""
    out = []
    for i in range(30):
        first, last = FIRST[i % 10], LAST[(i * 3 + i // 10) % 10]
        out.append((f"{first} {last}", f"{first.lower()}.{last.lower()}{i}@packco.example"))
    return out


def generate_packs(rows: int = 12_000, seed: int = 11) -> pd.DataFrame:
    """The ``packs`` table."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(2.5, rows) + 0.2
    packed_at = pd.Timestamp("2025-03-03 05:00") + pd.to_timedelta(np.cumsum(gaps), unit="s")
    hour = packed_at.hour.to_numpy()
    shift = np.where(
        hour < 6, "night", np.where(hour < 14, "morning", np.where(hour < 22, "evening", "night"))
    )
    line = rng.choice(len(LINES), rows, p=(0.25, 0.2, 0.2, 0.15, 0.12, 0.08))
    head = rng.integers(1, 13, rows)
    ops = operators()
    op = (
        np.where(shift == "morning", 0, np.where(shift == "evening", 10, 20))
        + rng.integers(0, 10, rows)
    ).astype(int)
    product = rng.choice(len(PRODUCTS), rows, p=(0.3, 0.25, 0.2, 0.15, 0.1))
    film = rng.choice(len(FILM_TYPES), rows, p=(0.4, 0.3, 0.2, 0.1))
    nominal = np.take((200, 400, 500, 150, 350), product)
    fill = np.round(nominal * rng.normal(1.01, 0.006, rows) + 0.3 * (head - 6.5), 1)
    seal_temp = np.round(rng.normal(172.0, 2.2, rows) + 0.8 * line, 2)
    seal_time = rng.integers(380, 720, rows)
    p_leak = 0.01 + 0.03 * (seal_temp < 169) + 0.02 * (film == 3)
    leak = (rng.random(rows) < p_leak).astype(int)
    reasons = np.array(["none", "leak", "underfill", "label", "foreign_body"])
    reason = np.where(leak == 1, 1, np.where(fill < nominal * 0.995, 2, 0))
    rare = rng.random(rows)
    reason = np.where(rare < 0.004, 3, np.where(rare > 0.9995, 4, reason))
    return pd.DataFrame(
        {
            "pack_id": np.arange(5_000_001, 5_000_001 + rows),
            "packed_at": packed_at.floor("s"),
            "line_id": np.take(LINES, line),
            "filler_head": head,
            "operator_name": [ops[i][0] for i in op],
            "operator_email": [ops[i][1] for i in op],
            "shift": shift,
            "product": np.take(PRODUCTS, product),
            "film_type": np.take(FILM_TYPES, film),
            "fill_weight_g": fill,
            "seal_temp_c": seal_temp,
            "seal_time_ms": seal_time,
            "leak": leak,
            "reject_reason": reasons[reason],
        }
    )


def generate_deliveries(rows: int = 900, seed: int = 12) -> pd.DataFrame:
    """The ``film_deliveries`` table: PET-AF comes almost only from Filmtech BV."""
    rng = np.random.default_rng(seed)
    film = rng.choice(len(FILM_TYPES), rows, p=(0.35, 0.25, 0.25, 0.15))
    supplier = np.where(
        film == 0,
        np.where(rng.random(rows) < 0.97, 0, 1),
        rng.choice([1, 2, 3, 0], rows, p=(0.4, 0.3, 0.2, 0.1)),
    )
    rolls = rng.integers(4, 40, rows)
    weight = np.round(rolls * rng.normal(38.0, 3.0, rows), 1)
    price = np.round(weight * rng.normal(4.2, 0.4, rows), 2)
    at = pd.Timestamp("2025-01-02 07:00") + pd.to_timedelta(
        np.sort(rng.integers(0, 86400 * 180, rows)), unit="s"
    )
    return pd.DataFrame(
        {
            "delivery_id": [f"DLV-{i:06d}" for i in rng.permutation(rows) + 100_000],
            "delivered_at": at,
            "film_supplier": np.take(SUPPLIERS, supplier),
            "film_type": np.take(FILM_TYPES, film),
            "rolls": rolls,
            "weight_kg": weight,
            "price_eur": price,
        }
    )


def write_packaging(folder: Path, rows: int = 12_000, seed: int = 11) -> list[Path]:
    """Both tables as CSV, and the roles card beside them; the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    packs, deliveries = generate_packs(rows, seed), generate_deliveries(seed=seed + 1)
    packs.to_csv(folder / "packs.csv", index=False)
    deliveries.to_csv(folder / "film_deliveries.csv", index=False)
    (folder / "roles.yaml").write_text(yaml.safe_dump({"columns": ROLES}), encoding="utf-8")
    return [folder / "packs.csv", folder / "film_deliveries.csv"]
