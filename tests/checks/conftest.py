"""Fixtures for the disclosure checks: a small demo source, its index, a context."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from cleanroom.checks import (
    CheckContext,
    DisclosurePolicy,
    SourceIndex,
    build_source_index,
    load_source_index,
)
from cleanroom.demo.press_line import IDENTIFIER_COLUMNS, write_press_line

SOURCE_ROWS = 20_000


@pytest.fixture(scope="session")
def source_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo press line (20,000 rows) as CSV and Parquet."""
    folder = tmp_path_factory.mktemp("press_line")
    write_press_line(folder, rows=SOURCE_ROWS, seed=7)
    return folder


@pytest.fixture(scope="session")
def source_frame(source_dir: Path) -> pd.DataFrame:
    """The demo source as the researcher sees it (read from Parquet)."""
    return pd.read_parquet(source_dir / "press_line.parquet")


@pytest.fixture(scope="session")
def index_dir(source_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The source index of the demo data set, built as registration would."""
    out = tmp_path_factory.mktemp("index")
    build_source_index(
        [source_dir / "press_line.csv", source_dir / "press_line.parquet"],
        out,
        identifier_columns=IDENTIFIER_COLUMNS,
    )
    return out


@pytest.fixture(scope="session")
def source_index(index_dir: Path) -> SourceIndex:
    """The loaded index."""
    return load_source_index(index_dir)


@pytest.fixture(scope="session")
def policy() -> DisclosurePolicy:
    """The repository's disclosure policy."""
    return DisclosurePolicy.load()


@pytest.fixture(scope="session")
def context(policy: DisclosurePolicy, source_index: SourceIndex) -> CheckContext:
    """A check context with the demo data set's index."""
    return CheckContext(policy=policy, sources=[source_index])


@pytest.fixture(scope="session")
def bare_context(policy: DisclosurePolicy) -> CheckContext:
    """A check context without any source index."""
    return CheckContext(policy=policy)


@pytest.fixture(scope="session")
def packaging_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The second dataset (food packaging: packs and film deliveries) with its roles card."""
    from tests.checks.packaging import write_packaging

    folder = tmp_path_factory.mktemp("packaging")
    write_packaging(folder)
    return folder


@pytest.fixture(scope="session")
def packaging_frames(packaging_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables as a researcher reads them."""
    packs = pd.read_csv(packaging_dir / "packs.csv", parse_dates=["packed_at"])
    deliveries = pd.read_csv(packaging_dir / "film_deliveries.csv", parse_dates=["delivered_at"])
    return packs, deliveries


@pytest.fixture(scope="session")
def packaging_context(
    packaging_dir: Path, policy: DisclosurePolicy, tmp_path_factory: pytest.TempPathFactory
) -> CheckContext:
    """A check context with the packaging dataset's index (roles from its card)."""
    out = tmp_path_factory.mktemp("packaging_index")
    build_source_index(
        [packaging_dir / "packs.csv", packaging_dir / "film_deliveries.csv"], out, name="packaging"
    )
    return CheckContext(policy=policy, sources=[load_source_index(out)])


@pytest.fixture(scope="session")
def bakery_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The third dataset (a bakery: bakes and flour deliveries) with its roles card."""
    from tests.checks.bakery import write_bakery

    folder = tmp_path_factory.mktemp("bakery")
    write_bakery(folder)
    return folder


@pytest.fixture(scope="session")
def bakery_frames(bakery_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables as a researcher reads them."""
    bakes = pd.read_parquet(bakery_dir / "bakes.parquet")
    flour = pd.read_csv(bakery_dir / "flour.csv", parse_dates=["received"])
    return bakes, flour


@pytest.fixture(scope="session")
def bakery_context(
    bakery_dir: Path, policy: DisclosurePolicy, tmp_path_factory: pytest.TempPathFactory
) -> CheckContext:
    """A check context with the bakery's index (roles from its card)."""
    out = tmp_path_factory.mktemp("bakery_index")
    build_source_index([bakery_dir / "bakes.parquet", bakery_dir / "flour.csv"], out, name="bakery")
    return CheckContext(policy=policy, sources=[load_source_index(out)])
