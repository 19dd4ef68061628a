"""The gateway runs on uvloop (cleanroom.gateway.app): its tests' event loops are uvloop's."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import uvloop

_HERE = Path(__file__).parent


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], Any]] | None:
    if _HERE in Path(item.path).parents:
        return {"uvloop": uvloop.new_event_loop}
    return None
