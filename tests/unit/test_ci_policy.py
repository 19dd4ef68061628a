"""The suite's reading of ``CI``: only a true value is CI (``CI=false`` is not)."""

from __future__ import annotations

import pytest

from tests.ci import is_ci


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "on", " true "])
def test_true_values_are_ci(value: str) -> None:
    assert is_ci(value)


@pytest.mark.parametrize("value", [None, "", "0", "false", "False", "no", "off"])
def test_false_values_are_not_ci(value: str | None) -> None:
    assert not is_ci(value)
