"""The server process refuses tracing by same-user code (kernels)."""

from __future__ import annotations

import sys

import pytest
from cleanroom_workspace.process import PR_GET_DUMPABLE, _prctl, forbid_tracing


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_forbid_tracing_clears_the_dumpable_flag() -> None:
    assert forbid_tracing() is True
    assert _prctl(PR_GET_DUMPABLE) == 0
