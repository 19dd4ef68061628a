"""Whether the suite runs under CI, and the one way a test gives up for a missing part.

``CI`` counts when it holds a true value (``1``, ``true``, ``yes``, ``on``, any case):
``CI=false`` or ``CI=0``, as some shells and runners set it, is not CI.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def is_ci(value: str | None) -> bool:
    """Whether a value of ``CI`` means CI."""
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


IN_CI = is_ci(os.environ.get("CI"))


def skip_or_fail(reason: str) -> NoReturn:
    """Skip with ``reason``, or, under CI, fail with it: under CI every test must run."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}: this test must run, not skip", pytrace=False)
    pytest.skip(reason)
